"""Backward masks for HYPE_time: phase-scrambled noise made from a study's own images.

A mask keeps its source image's amplitude spectrum (so its colours, contrast energy and texture
scale) and gets random phases (so no object survives). numpy only; randomness comes in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

ValueRange = Literal["rescale", "clip"]


def _require_rgb_uint8(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 array, got {getattr(image, 'dtype', type(image))}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"expected an (H, W, 3) image of at least 2x2, got {image.shape}")


def random_phase_field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Random phases for an (H, W) spectrum: the phases of the FFT of real white noise.

    Such a field is odd-symmetric, phi(-k) = -phi(k), as the phases of any real image are;
    adding it to an image's phases keeps the spectrum Hermitian, so the inverse FFT is real.
    The DC phase is set to 0 so that each channel keeps its mean (white noise would flip the
    sign of the mean half of the time).
    """
    phase = np.angle(np.fft.fft2(rng.standard_normal(shape)))
    phase[0, 0] = 0.0
    return phase


def amplitude_spectrum(image: np.ndarray) -> np.ndarray:
    """|FFT| of each channel of an (H, W, C) image, as float64."""
    return np.abs(np.fft.fft2(np.asarray(image, dtype=np.float64), axes=(0, 1)))


def scramble_unbounded(image: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """The exact phase scramble, as float: every channel's phases shifted by the same field.

    One field for all three channels keeps the phase differences between channels, and with
    them the colour correlations (the cross-spectra are unchanged). The values may leave 0-255.
    """
    spectrum = np.fft.fft2(np.asarray(image, dtype=np.float64), axes=(0, 1))
    scrambled = np.fft.ifft2(spectrum * np.exp(1j * phase)[:, :, None], axes=(0, 1))
    # The imaginary part is rounding noise (~1e-13) because the product stays Hermitian.
    return scrambled.real


@dataclass(frozen=True)
class PhaseScramble:
    """A mask and what fitting it into 0-255 cost.

    contrast: the factor the deviations from each channel's mean were multiplied by so that
    every value fits (1.0: untouched); it scales the amplitude spectrum uniformly and leaves
    its shape alone. clipped: the share of values that were clipped instead (value_range="clip").
    """

    pixels: np.ndarray
    contrast: float
    clipped: float


def phase_scramble_full(
    image: np.ndarray, rng: np.random.Generator, *, value_range: ValueRange = "rescale"
) -> PhaseScramble:
    """Phase-scramble an (H, W, 3) uint8 image into a uint8 mask of the same shape.

    value_range="rescale" (the default) shrinks the deviations from each channel's mean by one
    common factor until every value fits in 0-255: the amplitude spectrum keeps its shape
    exactly (up to rounding to integers) and only loses contrast. "clip" keeps the contrast
    and clips the values outside 0-255, which adds energy at other frequencies.
    """
    _require_rgb_uint8(image)
    if value_range not in ("rescale", "clip"):
        raise ValueError(f"value_range must be 'rescale' or 'clip', got {value_range!r}")
    scrambled = scramble_unbounded(image, random_phase_field(image.shape[:2], rng))
    mean = scrambled.mean(axis=(0, 1))
    deviation = scrambled - mean
    contrast = 1.0
    if value_range == "rescale":
        # The largest factor that keeps mean + factor * deviation inside [0, 255] for every
        # channel; one factor for all channels so that colour balance is kept too.
        highest = deviation.max(axis=(0, 1))
        lowest = deviation.min(axis=(0, 1))
        limits = [1.0]
        limits += [(255.0 - m) / h for m, h in zip(mean, highest, strict=True) if h > 0]
        limits += [m / -lo for m, lo in zip(mean, lowest, strict=True) if lo < 0]
        contrast = max(0.0, min(limits))
        scrambled = mean + contrast * deviation
    outside = (scrambled < -0.5) | (scrambled > 255.5)
    pixels = np.clip(np.rint(scrambled), 0, 255).astype(np.uint8)
    return PhaseScramble(pixels=pixels, contrast=float(contrast), clipped=float(outside.mean()))


def phase_scramble(
    image: np.ndarray, rng: np.random.Generator, *, value_range: ValueRange = "rescale"
) -> np.ndarray:
    """A backward mask made from `image`: its amplitude spectrum, random phases (uint8)."""
    return phase_scramble_full(image, rng, value_range=value_range).pixels


def spectrum_shape_error(source: np.ndarray, mask: np.ndarray) -> float:
    """How far the mask's amplitude spectrum is from a scaled copy of the source's.

    The relative L2 distance over all non-DC coefficients, after the one scale factor that
    fits best (so a uniform contrast change costs nothing, a changed shape does).
    """
    a = amplitude_spectrum(source)
    b = amplitude_spectrum(mask)
    a[0, 0, :] = 0.0
    b[0, 0, :] = 0.0
    norm_b = float(np.sum(b * b))
    if norm_b == 0.0:
        return 0.0 if not a.any() else 1.0
    scale = float(np.sum(a * b)) / norm_b
    return float(np.linalg.norm(scale * b - a) / np.linalg.norm(a))
