"""Phase-scrambled backward masks: the source's amplitude spectrum, random phases, real output."""

import numpy as np
import pytest

from hype.science.masks import (
    amplitude_spectrum,
    phase_scramble,
    phase_scramble_full,
    random_phase_field,
    scramble_unbounded,
    spectrum_shape_error,
)

# Odd height, even width: both kinds of FFT symmetry (with and without a Nyquist row) occur.
SHAPE = (63, 80)


def textured_image(*, seed: int = 0, contrast: float = 40.0) -> np.ndarray:
    """A colourful test picture: pinkish noise shared by the channels (so they correlate),
    a little noise of each channel's own, and a bright disc (an object with sharp edges)."""
    rng = np.random.default_rng(seed)
    h, w = SHAPE
    frequency = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    frequency[0, 0] = 1.0
    shared = np.fft.ifft2(np.fft.fft2(rng.standard_normal(SHAPE)) / frequency**0.6).real
    shared /= shared.std()
    image = 120 + contrast * shared[:, :, None] * np.array([1.0, 0.7, 0.3])
    image = image + 12 * rng.standard_normal((h, w, 3))
    yy, xx = np.mgrid[:h, :w]
    image[(yy - 30) ** 2 + (xx - 50) ** 2 < 100] += np.array([90.0, 60.0, -30.0])
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def ac_amplitude(image: np.ndarray) -> np.ndarray:
    spectrum = amplitude_spectrum(image)
    spectrum[0, 0, :] = 0.0
    return spectrum


def channel_correlation(a: np.ndarray, b: np.ndarray, channel: int) -> float:
    return float(np.corrcoef(a[..., channel].ravel(), b[..., channel].ravel())[0, 1])


def test_a_mask_is_a_uint8_image_of_its_sources_shape():
    source = textured_image()
    mask = phase_scramble(source, np.random.default_rng(1))
    assert mask.dtype == np.uint8 and mask.shape == source.shape


def test_a_mask_keeps_its_sources_amplitude_spectrum_up_to_its_contrast_factor():
    source = textured_image()
    result = phase_scramble_full(source, np.random.default_rng(1))
    # Tolerance, proved rather than fitted: away from DC the mask's spectrum is
    # contrast * |F(source)| + F(rounding error). The rounding error is at most 0.5 per value,
    # so by the triangle inequality and Parseval the relative error is at most
    # 0.5 / (contrast * RMS over channels of the source's standard deviation): 1.8% here,
    # and the error measured is 0.8%.
    expected = result.contrast * ac_amplitude(source)
    error = np.linalg.norm(ac_amplitude(result.pixels) - expected) / np.linalg.norm(expected)
    source_sd = np.sqrt(np.mean(source.var(axis=(0, 1))))
    bound = 0.5 / (result.contrast * source_sd)
    assert 0 < result.contrast <= 1 and result.clipped == 0
    assert error <= bound < 0.02


def test_clipping_instead_of_rescaling_keeps_the_contrast_but_bends_the_spectrum():
    source = textured_image(contrast=80.0)
    rescaled = phase_scramble_full(source, np.random.default_rng(1))
    clipped = phase_scramble_full(source, np.random.default_rng(1), value_range="clip")
    assert rescaled.contrast < 1 and clipped.contrast == 1 and clipped.clipped > 0.01
    # Measured on this picture: rescaling (contrast 0.46) leaves the spectrum's shape within
    # rounding error (0.8%); clipping 3.4% of the values instead moves it by 8.6%.
    assert spectrum_shape_error(source, rescaled.pixels) < 0.01
    assert spectrum_shape_error(source, clipped.pixels) > 3 * spectrum_shape_error(
        source, rescaled.pixels
    )


def test_a_masks_phases_are_unrelated_to_its_sources_so_no_object_survives():
    source = textured_image()
    amplitude = ac_amplitude(source)
    for channel in range(3):
        power = amplitude[..., channel] ** 2
        # With independent uniform phases, r = sum(A^2 cos(phi)) / sum(A^2), whose standard
        # deviation is sqrt(sum A^4) / sum A^2: small when the energy is spread over many
        # frequencies, as in this picture. A single mask must lie within 4 of them.
        sd = float(np.sqrt(np.sum(power**2)) / np.sum(power))
        assert sd < 0.1
        r = channel_correlation(source, phase_scramble(source, np.random.default_rng(1)), channel)
        assert abs(r) < 4 * sd


def test_over_many_seeds_the_correlation_with_the_source_averages_to_zero():
    source = textured_image()
    rs = [
        channel_correlation(source, phase_scramble(source, np.random.default_rng(seed)), 0)
        for seed in range(100)
    ]
    amplitude = ac_amplitude(source)[..., 0] ** 2
    sd = float(np.sqrt(np.sum(amplitude**2)) / np.sum(amplitude))
    # The mean of 100 independent correlations has a standard deviation of sd / 10.
    assert abs(np.mean(rs)) < 4 * sd / 10


def test_different_seeds_give_different_masks_and_one_seed_the_same_mask():
    source = textured_image()
    first = phase_scramble(source, np.random.default_rng(1))
    again = phase_scramble(source, np.random.default_rng(1))
    other = phase_scramble(source, np.random.default_rng(2))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert abs(channel_correlation(first, other, 0)) < 0.3


def test_the_random_phase_field_is_odd_symmetric_so_the_scrambled_image_is_real():
    phase = random_phase_field(SHAPE, np.random.default_rng(3))
    mirrored = np.roll(np.flip(phase, axis=(0, 1)), 1, axis=(0, 1))  # phase at -k
    assert np.allclose(np.exp(1j * mirrored), np.exp(-1j * phase))
    assert phase[0, 0] == 0.0
    source = textured_image().astype(np.float64)
    spectrum = np.fft.fft2(source, axes=(0, 1)) * np.exp(1j * phase)[:, :, None]
    complex_result = np.fft.ifft2(spectrum, axes=(0, 1))
    assert np.abs(complex_result.imag).max() < 1e-9 * np.abs(complex_result.real).max()
    assert np.allclose(scramble_unbounded(source, phase), complex_result.real)


def test_each_channel_keeps_its_mean_and_the_channels_keep_their_correlations():
    source = textured_image()
    mask = phase_scramble(source, np.random.default_rng(1))
    # The mean: DC is untouched; rounding to integers moves it by at most 0.5.
    assert np.allclose(mask.mean(axis=(0, 1)), source.mean(axis=(0, 1)), atol=0.5)
    # One phase field for all channels keeps every cross-spectrum, hence the correlations
    # between channels, exactly before rounding; rounding noise (variance <= 1/12 a value)
    # against channel variances of 100s moves them by well under 0.02.
    before = np.corrcoef(source.reshape(-1, 3).T)
    after = np.corrcoef(mask.reshape(-1, 3).T)
    assert np.allclose(before, after, atol=0.02)


def test_a_flat_picture_gives_the_same_flat_mask():
    source = np.full((8, 10, 3), (10, 200, 90), dtype=np.uint8)
    result = phase_scramble_full(source, np.random.default_rng(0))
    assert np.array_equal(result.pixels, source) and result.contrast == 1.0


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((8, 8), dtype=np.uint8),
        np.zeros((8, 8, 4), dtype=np.uint8),
        np.zeros((8, 8, 3), dtype=np.float64),
        np.zeros((1, 8, 3), dtype=np.uint8),
    ],
)
def test_it_refuses_anything_but_an_rgb_uint8_picture(bad):
    with pytest.raises(ValueError, match="expected"):
        phase_scramble(bad, np.random.default_rng(0))


def test_it_refuses_an_unknown_value_range_rule():
    with pytest.raises(ValueError, match="value_range"):
        phase_scramble(textured_image(), np.random.default_rng(0), value_range="wrap")
