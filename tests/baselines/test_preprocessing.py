"""The TF1 preprocessing of the FID network's input, checked without torch: resize
coordinates, an unchanged 299 input, and the (x - 128) / 128 normalisation."""

import numpy as np
import pytest

from hype.features import network_input, normalise, tf1_resize


def ramp(h, w):
    rows = np.arange(h, dtype=np.float32)[:, None, None] * 1000
    cols = np.arange(w, dtype=np.float32)[None, :, None]
    return np.broadcast_to(rows + cols, (h, w, 3)).astype(np.float32)


def test_output_pixel_zero_is_input_pixel_zero():
    image = np.random.default_rng(0).integers(0, 256, (64, 48, 3)).astype(np.uint8)
    assert (tf1_resize(image)[0, 0] == image[0, 0]).all()


def test_a_299_input_is_unchanged():
    image = np.random.default_rng(1).integers(0, 256, (299, 299, 3)).astype(np.uint8)
    assert (tf1_resize(image) == image.astype(np.float32)).all()


def test_output_pixel_j_samples_the_input_at_j_times_in_over_out():
    # On a ramp, bilinear interpolation returns the source coordinate itself.
    image = ramp(100, 50)
    resized = tf1_resize(image)
    j = np.arange(299)
    rows = np.minimum(j * 100 / 299, 99)
    cols = np.minimum(j * 50 / 299, 49)
    assert resized[:, 0, 0] == pytest.approx(rows * 1000, abs=1e-2)
    assert resized[0, :, 0] == pytest.approx(cols, abs=1e-4)


def test_the_last_rows_clamp_to_the_edge_instead_of_reading_past_it():
    # Upsampling 2 -> 299: sources beyond the last pixel's coordinate repeat it.
    image = np.array([[[0, 0, 0], [0, 0, 0]], [[200, 200, 200], [200, 200, 200]]], np.uint8)
    resized = tf1_resize(image)
    assert resized[-1, 0, 0] == 200.0 and resized[0, 0, 0] == 0.0
    # Row 150 samples 150 * 2 / 299 = 1.003: past the last pixel, so it is the last pixel.
    assert resized[150, 0, 0] == 200.0
    # Row 100 samples 0.669, between the two rows.
    assert resized[100, 0, 0] == pytest.approx(200.0 * 100 * 2 / 299, rel=1e-5)


def test_normalisation_maps_0_to_minus_1_and_255_to_0_9921875():
    assert normalise(np.array([0, 128, 255])).tolist() == [-1.0, 0.0, 0.9921875]


def test_the_network_input_is_channels_first_299_and_refuses_other_images():
    image = np.zeros((32, 32, 3), np.uint8)
    assert network_input(image).shape == (3, 299, 299)
    assert network_input(image).dtype == np.float32
    with pytest.raises(ValueError, match="uint8 RGB"):
        network_input(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB"):
        network_input(np.zeros((32, 32, 3), np.float32))
