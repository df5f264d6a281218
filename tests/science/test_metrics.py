"""The Fréchet distance, KID and precision/recall against closed forms, scipy's square-root
formula, and sets whose answers are known."""

import numpy as np
import pytest
from scipy import linalg

from hype.science.metrics import (
    DegenerateInput,
    FeatureStatistics,
    frechet_distance,
    kernel_inception_distance,
    precision_recall,
    statistics_from_features,
    statistics_load,
    statistics_save,
)


def gaussian(mu, sigma) -> FeatureStatistics:
    return FeatureStatistics(mu=np.asarray(mu, float), sigma=np.asarray(sigma, float))


def relu_features(rng, n, d=2048, rank=64, shift=0.0) -> np.ndarray:
    """Features shaped like Inception pool3: non-negative, correlated, a decaying spectrum."""
    basis = rng.normal(size=(rank, d)) / np.sqrt(np.arange(1, rank + 1))[:, None]
    latent = rng.normal(size=(n, rank))
    return np.maximum(latent @ basis + 0.3 * rng.normal(size=(n, d)) + 0.2 + shift, 0.0)


def scipy_sqrtm_distance(a: FeatureStatistics, b: FeatureStatistics) -> float:
    """The formula most tools use: tr sqrt(S1 S2) through scipy.linalg.sqrtm."""
    root = linalg.sqrtm(a.sigma @ b.sigma)
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.trace(root).real)


def test_n0_i_against_n1_i_in_2048_dimensions_is_exactly_2048():
    d = 2048
    assert frechet_distance(gaussian(np.zeros(d), np.eye(d)), gaussian(np.ones(d), np.eye(d))) == (
        2048.0
    )


def test_a_distribution_is_at_distance_zero_from_itself_and_distance_is_symmetric():
    rng = np.random.default_rng(0)
    a = statistics_from_features(relu_features(rng, 400, d=64, rank=8))
    b = statistics_from_features(relu_features(rng, 400, d=64, rank=8, shift=0.3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-10)
    assert frechet_distance(a, b) > 1.0


def test_diagonal_covariances_give_the_sum_of_squared_root_differences_plus_the_mean_term():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 4, 300), rng.uniform(0.1, 4, 300)
    mu1, mu2 = rng.normal(size=300), rng.normal(size=300)
    expected = ((np.sqrt(a) - np.sqrt(b)) ** 2).sum() + ((mu1 - mu2) ** 2).sum()
    assert frechet_distance(gaussian(mu1, np.diag(a)), gaussian(mu2, np.diag(b))) == (
        pytest.approx(expected, rel=1e-12)
    )


def test_a_singular_covariance_is_still_a_distance():
    # Fewer images than dimensions: the covariance is singular, as with a small study.
    rng = np.random.default_rng(2)
    a = statistics_from_features(relu_features(rng, 50, d=128, rank=8))
    b = statistics_from_features(relu_features(rng, 60, d=128, rank=8, shift=0.5))
    assert frechet_distance(a, b) == pytest.approx(scipy_sqrtm_distance(a, b), rel=1e-6)


@pytest.mark.slow
def test_it_agrees_with_scipys_sqrtm_formula_on_2048_dimensional_statistics():
    rng = np.random.default_rng(3)
    a = statistics_from_features(relu_features(rng, 3000))
    b = statistics_from_features(relu_features(rng, 3000, shift=0.05))
    ours = frechet_distance(a, b)
    assert ours == pytest.approx(scipy_sqrtm_distance(a, b), rel=1e-6)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (gaussian([0, 0], np.eye(2)), gaussian([0, 0, 0], np.eye(3)), "different dimensions"),
        (gaussian([0, 0], np.eye(2)), gaussian([0, np.nan], np.eye(2)), "NaN or infinite"),
        (gaussian([0, 0], [[1, 2], [0, 1]]), gaussian([0, 0], np.eye(2)), "not symmetric"),
        (gaussian([0, 0], [[1, 0], [0, -1]]), gaussian([0, 0], np.eye(2)), "eigenvalue -1"),
        (gaussian([0, 0], np.eye(2)), gaussian([0, 0], [[1, 0], [0, -1]]), "second covariance"),
        (gaussian([0, 0], np.eye(3)), gaussian([0, 0], np.eye(2)), "must be 2x2"),
    ],
)
def test_degenerate_statistics_get_a_clear_error(first, second, message):
    with pytest.raises(DegenerateInput, match=message):
        frechet_distance(first, second)


def test_statistics_need_at_least_two_finite_images():
    with pytest.raises(DegenerateInput, match="at least 2 images"):
        statistics_from_features(np.ones((1, 8)))
    with pytest.raises(DegenerateInput, match="2-d array"):
        statistics_from_features(np.ones(8))


def test_statistics_round_trip_through_the_standard_npz_file(tmp_path):
    rng = np.random.default_rng(4)
    statistics = statistics_from_features(rng.normal(size=(20, 6)))
    statistics_save(tmp_path / "ref.npz", statistics)
    loaded = statistics_load(tmp_path / "ref.npz")
    assert np.array_equal(loaded.mu, statistics.mu) and np.array_equal(
        loaded.sigma, statistics.sigma
    )
    assert loaded.n == 20
    # A file as pytorch-fid writes it: mu and sigma only.
    np.savez(tmp_path / "bare.npz", mu=statistics.mu, sigma=statistics.sigma)
    assert statistics_load(tmp_path / "bare.npz").n is None
    np.savez(tmp_path / "wrong.npz", mean=statistics.mu)
    with pytest.raises(DegenerateInput, match="no mu, sigma"):
        statistics_load(tmp_path / "wrong.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DegenerateInput, match="cannot read"):
        statistics_load(tmp_path / "junk.npz")


def test_kid_is_unbiased_between_samples_of_one_distribution():
    rng = np.random.default_rng(5)
    draws = [
        kernel_inception_distance(
            rng.normal(size=(200, 16)), rng.normal(size=(200, 16)), subsets=5, rng=rng
        ).mean
        for _ in range(200)
    ]
    # Unbiased: the mean over many draws is within its standard error of zero (a biased
    # estimator such as the V-statistic sits far above it).
    mean, se = np.mean(draws), np.std(draws, ddof=1) / np.sqrt(len(draws))
    assert abs(mean) < 4 * se
    assert min(draws) < 0 < max(draws)  # small negative values are valid


def test_kid_grows_when_one_set_shifts_and_reports_its_subsets():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(300, 16))
    fresh = rng.normal(size=(300, 16))
    near = kernel_inception_distance(real, fresh, subsets=10, subset_size=100, rng=rng)
    far = kernel_inception_distance(real, fresh + 1.0, subsets=10, subset_size=100, rng=rng)
    assert far.mean > 10 * abs(near.mean) and far.mean > 0
    assert (far.subsets, far.subset_size) == (10, 100)
    assert near.sd > 0


def test_precision_and_recall_are_one_for_identical_sets_and_fall_when_one_shifts():
    rng = np.random.default_rng(7)
    real = rng.normal(size=(400, 32))
    same = precision_recall(real, real.copy())
    assert (same.precision, same.recall, same.k) == (1.0, 1.0, 3)
    fake = rng.normal(size=(400, 32))
    results = [precision_recall(real, fake + shift) for shift in (0.0, 0.5, 1.0, 2.0)]
    precisions = [r.precision for r in results]
    recalls = [r.recall for r in results]
    assert precisions == sorted(precisions, reverse=True) and precisions[0] > precisions[2]
    assert recalls == sorted(recalls, reverse=True) and recalls[0] > recalls[2]
    assert (precisions[-1], recalls[-1]) == (0.0, 0.0)


def test_precision_falls_for_fakes_outside_the_real_manifold_but_recall_does_not():
    rng = np.random.default_rng(8)
    real = rng.normal(size=(500, 8))
    # Half the fakes on the real distribution, half far away: precision about 0.5, and the
    # reals are still covered by the on-distribution half.
    fake = np.vstack([rng.normal(size=(250, 8)), rng.normal(size=(250, 8)) + 20])
    result = precision_recall(real, fake)
    assert 0.4 < result.precision < 0.55
    assert result.recall > 0.8


def test_precision_recall_needs_more_images_than_neighbours():
    with pytest.raises(DegenerateInput, match="at least 4 images"):
        precision_recall(np.ones((3, 2)), np.ones((5, 2)))


def test_kid_of_sets_no_larger_than_a_subset_is_computed_once_without_an_sd():
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(50, 8)), rng.normal(size=(50, 8)) + 0.5
    result = kernel_inception_distance(real, fake, subsets=100, subset_size=1000, rng=rng)
    assert (result.subsets, result.subset_size, result.sd) == (1, 50, None)
    again = kernel_inception_distance(real, fake, rng=np.random.default_rng(0))
    assert again.mean == pytest.approx(result.mean, rel=1e-12)  # no randomness left
