"""Images of more than 8 bits per value are brought to 8 bits strip by strip, so that a large
one never takes a float64 copy of itself: the pixels are the same as converting the whole
image at once, across strip boundaries and for every kind of deep image."""

import numpy as np
import pytest
from PIL import Image

from experiments.services.imports import normalise


def whole_image(values: np.ndarray, *, offset=0.0, divisor=1.0, factor=1.0) -> np.ndarray:
    scaled = (values.astype(np.float64) - offset) / divisor * factor
    return np.clip(np.rint(np.nan_to_num(scaled)), 0, 255).astype(np.uint8)


@pytest.fixture
def small_strips(monkeypatch):
    monkeypatch.setattr(normalise, "STRIP_ROWS", 7)  # 50 rows: 8 strips, the last one short


def test_16_bit_values_are_scaled_the_same_in_strips_as_whole(small_strips):
    values = np.random.default_rng(0).integers(0, 65536, size=(50, 31)).astype(np.uint16)
    gray, how = normalise._to_8bit_gray(Image.fromarray(values))
    assert how == "16-bit values scaled to 8 bits"
    assert np.array_equal(np.asarray(gray), whole_image(values, divisor=257.0))


def test_32_bit_values_beyond_16_bits_are_stretched_over_the_whole_images_range(small_strips):
    values = np.random.default_rng(1).integers(-70_000, 90_000, size=(50, 31)).astype(np.int32)
    values[49, 30], values[0, 0] = 90_000, -70_000  # the extremes in the first and last strip
    gray, how = normalise._to_8bit_gray(Image.fromarray(values, "I"))
    assert how == "values -70000..90000 stretched to 0-255"
    expected = whole_image(values, offset=-70_000, divisor=160_000, factor=255.0)
    assert np.array_equal(np.asarray(gray), expected)


def test_floats_from_0_to_1_with_nan_are_scaled_and_nan_is_black(small_strips):
    values = np.random.default_rng(2).random((50, 31)).astype(np.float32)
    values[20, 5] = np.nan
    gray, how = normalise._to_8bit_gray(Image.fromarray(values, "F"))
    assert how == "values 0-1 scaled to 0-255"
    assert np.asarray(gray)[20, 5] == 0
    assert np.array_equal(np.asarray(gray), whole_image(values, factor=255.0))


def test_a_constant_deep_image_is_black():
    values = np.full((10, 10), -5, dtype=np.int32)
    gray, how = normalise._to_8bit_gray(Image.fromarray(values, "I"))
    assert how == "constant value -5 set to 0"
    assert not np.asarray(gray).any()
