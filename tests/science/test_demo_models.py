"""The demo's two generative models: the Gaussian mixture's digits are hard to tell from real
ones, the per-pixel noise is easy, and both are reproducible from a seed.

The measure is the 1-nearest-neighbour two-sample test (Lopez-Paz & Oquab 2017; Xu et al.
2018 recommend it for judging generative models): pool real and generated digits and count
how often an image's nearest neighbour (leaving itself out) has the same label. About 0.5
when the two samples come from one distribution; 1.0 when every fake sits among fakes.
"""

import numpy as np
import pytest
from PIL import Image as PILImage

from hype.science.demo_models import (
    GOOD_MODEL,
    POOR_MODEL,
    demo_images_write,
    digits_load,
    gmm_sampler_fit,
    pixel_noise_fit,
)

N = 400


def nearest_neighbour_accuracy(real: np.ndarray, fake: np.ndarray) -> float:
    pooled = np.vstack([real, fake])
    labels = np.r_[np.ones(len(real), bool), np.zeros(len(fake), bool)]
    squared = (pooled**2).sum(axis=1)
    distances = squared[:, None] + squared[None, :] - 2 * pooled @ pooled.T
    np.fill_diagonal(distances, np.inf)
    return float((labels[distances.argmin(axis=1)] == labels).mean())


@pytest.fixture(scope="module")
def held_out_split():
    digits = digits_load()
    order = np.random.default_rng(7).permutation(len(digits))
    return digits[order[:N]], digits[order[N:]]


@pytest.fixture(scope="module")
def gmm_sampler(held_out_split):
    _, training = held_out_split
    return gmm_sampler_fit(training, rng=np.random.default_rng(1))


def test_the_gaussian_mixture_digits_are_hard_to_tell_from_held_out_real_digits(
    held_out_split, gmm_sampler
):
    held_out, _ = held_out_split
    fakes = gmm_sampler.sample(N, rng=np.random.default_rng(1))
    assert nearest_neighbour_accuracy(held_out, fakes) < 0.78


def test_the_pixel_noise_is_told_from_real_digits_almost_every_time(held_out_split):
    held_out, training = held_out_split
    fakes = pixel_noise_fit(training).sample(N, rng=np.random.default_rng(1))
    assert nearest_neighbour_accuracy(held_out, fakes) > 0.92


def test_two_real_samples_score_near_chance_which_calibrates_the_measure(held_out_split):
    held_out, training = held_out_split
    assert nearest_neighbour_accuracy(held_out, training[:N]) < 0.6


def test_both_models_make_whole_grey_levels_from_0_to_16_like_the_real_digits(
    held_out_split, gmm_sampler
):
    _, training = held_out_split
    rng = np.random.default_rng(2)
    for sampler in (gmm_sampler, pixel_noise_fit(training)):
        pixels = sampler.sample(50, rng=rng)
        assert pixels.shape == (50, 64)
        assert np.array_equal(pixels, np.rint(pixels))
        assert pixels.min() >= 0 and pixels.max() <= 16


def test_training_and_sampling_are_the_same_for_the_same_seed(held_out_split):
    _, training = held_out_split

    def sample(seed):
        rng = np.random.default_rng(seed)
        return gmm_sampler_fit(training, rng=rng).sample(20, rng=rng)

    assert np.array_equal(sample(3), sample(3))
    assert not np.array_equal(sample(3), sample(4))


def test_the_demo_folders_hold_n_pngs_each_of_one_size_and_mode_for_real_and_fake(tmp_path):
    written = demo_images_write(folder=tmp_path, n=12, rng=np.random.default_rng(0), size=48)
    assert set(written.model_dirs) == {GOOD_MODEL, POOR_MODEL}
    for folder in [written.real_dir, *written.model_dirs.values()]:
        files = sorted(folder.glob("*.png"))
        assert len(files) == 12
        for path in files:
            with PILImage.open(path) as picture:
                assert (picture.format, picture.mode, picture.size) == ("PNG", "RGB", (48, 48))


def test_the_demo_folders_are_byte_for_byte_the_same_for_the_same_seed(tmp_path):
    first = demo_images_write(folder=tmp_path / "a", n=5, rng=np.random.default_rng(9))
    second = demo_images_write(folder=tmp_path / "b", n=5, rng=np.random.default_rng(9))
    for a, b in zip(
        [first.real_dir, *first.model_dirs.values()],
        [second.real_dir, *second.model_dirs.values()],
        strict=True,
    ):
        assert [p.read_bytes() for p in sorted(a.iterdir())] == [
            p.read_bytes() for p in sorted(b.iterdir())
        ]


def test_it_refuses_more_real_digits_than_it_can_hold_out(tmp_path):
    with pytest.raises(ValueError, match="n must be between 1 and 898"):
        demo_images_write(folder=tmp_path, n=899, rng=np.random.default_rng(0))
