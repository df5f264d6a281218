"""Two small generative models of handwritten digits for the demo study, trained on the spot
from scikit-learn's 8x8 digits: a Gaussian mixture in a PCA space (samples look like digits)
and independent per-pixel Gaussians (blobs of noise). Plus writing them out as PNG folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

GOOD_MODEL = "gmm-sampler"
POOR_MODEL = "pixel-noise"
MODEL_NAMES = (GOOD_MODEL, POOR_MODEL)
# load_digits counts ink in 17 grey levels, 0 (paper) to 16 (ink), on an 8x8 grid.
LEVELS = 16
SIDE = 8
# Fits in well under a second on 2 cores and gives samples a 1-nearest-neighbour test can
# barely tell from held-out digits (tests/science/test_demo_models.py).
PCA_COMPONENTS = 30
MIXTURE_COMPONENTS = 20


def digits_load() -> np.ndarray:
    """The 1,797 digits as rows of 64 grey levels in [0, 16] (shipped with scikit-learn)."""
    return load_digits().data.astype(float)


def _on_grid(pixels: np.ndarray) -> np.ndarray:
    # Real digits are whole grey levels in [0, 16]; fakes are brought to the same grid so a
    # rater cannot tell them apart by a grey level that never occurs in a real digit.
    return np.clip(np.rint(pixels), 0, LEVELS)


@dataclass(frozen=True)
class GaussianMixtureSampler:
    """A Gaussian mixture over the leading principal components of the digits: draw a
    component, draw its Gaussian, map back to pixels."""

    pixel_mean: np.ndarray  # (64,)
    components: np.ndarray  # (k, 64): principal axes, rows
    weights: np.ndarray  # (c,)
    means: np.ndarray  # (c, k)
    cholesky: np.ndarray  # (c, k, k): lower Cholesky factors of the covariances

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """n digits as rows of 64 grey levels on the 0-16 grid."""
        which = rng.choice(self.weights.size, size=n, p=self.weights)
        noise = rng.standard_normal((n, self.means.shape[1]))
        coords = self.means[which] + np.einsum("nij,nj->ni", self.cholesky[which], noise)
        return _on_grid(self.pixel_mean + coords @ self.components)


@dataclass(frozen=True)
class PixelNoiseSampler:
    """Every pixel an independent Gaussian with the digits' per-pixel mean and spread: right
    on average, with none of the strokes' structure."""

    pixel_mean: np.ndarray  # (64,)
    pixel_sd: np.ndarray  # (64,)

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        return _on_grid(self.pixel_mean + self.pixel_sd * rng.standard_normal((n, SIDE * SIDE)))


def gmm_sampler_fit(
    digits: np.ndarray,
    *,
    rng: np.random.Generator,
    pca_components: int = PCA_COMPONENTS,
    mixture_components: int = MIXTURE_COMPONENTS,
) -> GaussianMixtureSampler:
    """The good model: a full-covariance Gaussian mixture in a PCA space of the digits."""
    pca = PCA(n_components=pca_components, svd_solver="full").fit(digits)
    mixture = GaussianMixture(
        n_components=mixture_components,
        covariance_type="full",
        reg_covar=1e-3,
        random_state=int(rng.integers(2**31 - 1)),
    ).fit(pca.transform(digits))
    return GaussianMixtureSampler(
        pixel_mean=pca.mean_.copy(),
        components=pca.components_.copy(),
        weights=mixture.weights_ / mixture.weights_.sum(),
        means=mixture.means_.copy(),
        cholesky=np.linalg.cholesky(mixture.covariances_),
    )


def pixel_noise_fit(digits: np.ndarray) -> PixelNoiseSampler:
    """The poor model: independent per-pixel Gaussians."""
    return PixelNoiseSampler(pixel_mean=digits.mean(axis=0), pixel_sd=digits.std(axis=0))


def digit_picture(pixels: np.ndarray, *, size: int = 64) -> PILImage.Image:
    """One digit as a size x size greyscale picture, dark ink on white, smoothly upscaled.
    Real and fake digits go through this same function, so only the strokes differ."""
    grey = 255 - np.rint(np.asarray(pixels, dtype=float).reshape(SIDE, SIDE) * 255 / LEVELS)
    small = PILImage.fromarray(grey.astype(np.uint8))
    return small.resize((size, size), PILImage.Resampling.BICUBIC)


@dataclass(frozen=True)
class DemoImages:
    """Where demo_images_write put the pictures: real digits and one folder per model."""

    real_dir: Path
    model_dirs: dict[str, Path]


def _write(rows: np.ndarray, folder: Path, *, prefix: str, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, pixels in enumerate(rows):
        # RGB, as the platform stores every image; grey stays grey.
        picture = digit_picture(pixels, size=size).convert("RGB")
        picture.save(folder / f"{prefix}_{i:04d}.png", format="PNG")


def demo_images_write(
    *, folder: Path, n: int, rng: np.random.Generator, size: int = 64
) -> DemoImages:
    """Train both models and write n real digits and n samples of each model as PNG files.

    The real digits shown are held out: the models are trained on the other digits, so a
    model cannot score well by copying the very images it is compared with.
    """
    digits = digits_load()
    if not 1 <= n <= digits.shape[0] // 2:
        raise ValueError(f"n must be between 1 and {digits.shape[0] // 2}, got {n}")
    order = rng.permutation(digits.shape[0])
    shown, training = digits[order[:n]], digits[order[n:]]
    samplers = {
        GOOD_MODEL: gmm_sampler_fit(training, rng=rng),
        POOR_MODEL: pixel_noise_fit(training),
    }
    real_dir = folder / "real"
    _write(shown, real_dir, prefix="real", size=size)
    model_dirs = {}
    for name, sampler in samplers.items():
        model_dirs[name] = folder / name
        _write(sampler.sample(n, rng=rng), model_dirs[name], prefix=name, size=size)
    return DemoImages(real_dir=real_dir, model_dirs=model_dirs)
