"""The bootstrap over raters: agreement with scipy within Monte Carlo error, closed forms,
reproducibility and input checks.
"""

import re

import numpy as np
import pytest
from scipy import stats

from hype.science.bootstrap import bootstrap_many, bootstrap_mean, bootstrap_pooled_rate

RESAMPLES = 10_000
ALPHA = 0.025


def _percentile_tolerance(distribution: np.ndarray, q: float, *, resamples: int) -> float:
    """Five standard errors of the difference of two independent bootstrap estimates of the
    q-quantile. One estimate's SE is sqrt(q(1-q)/B) / f(x_q); the density f at the quantile
    is read off the bootstrap distribution as 2h / (x_(q+h) - x_(q-h)).
    """
    h = 0.01
    spread = np.quantile(distribution, [q - h, q + h])
    density = 2 * h / (spread[1] - spread[0])
    se = np.sqrt(q * (1 - q) / resamples) / density
    return 5 * np.sqrt(2) * se


DATASETS = {
    "normal rater thresholds": np.random.default_rng(11).normal(360, 60, 30),
    "skewed rater thresholds": 100 + np.random.default_rng(12).lognormal(5, 0.6, 30),
    "few raters": np.array([250.0, 300.0, 310.0, 420.0, 500.0]),
}


@pytest.mark.parametrize("name", DATASETS)
def test_the_interval_matches_scipys_percentile_bootstrap_within_monte_carlo_error(name):
    values = DATASETS[name]
    ours = bootstrap_mean(values, resamples=RESAMPLES, confidence=0.95, seed=1)
    theirs = stats.bootstrap(
        (values,),
        np.mean,
        vectorized=True,
        method="percentile",
        n_resamples=RESAMPLES,
        confidence_level=0.95,
        rng=np.random.default_rng(2),
    )
    distribution = theirs.bootstrap_distribution
    assert ours.estimate == pytest.approx(values.mean())
    assert abs(ours.low - theirs.confidence_interval.low) < _percentile_tolerance(
        distribution, ALPHA, resamples=RESAMPLES
    )
    assert abs(ours.high - theirs.confidence_interval.high) < _percentile_tolerance(
        distribution, 1 - ALPHA, resamples=RESAMPLES
    )
    # The SD of B bootstrap means has a relative SE of about 1/sqrt(2B).
    assert ours.sd == pytest.approx(theirs.standard_error, rel=5 * np.sqrt(2 / (2 * RESAMPLES)))


@pytest.mark.parametrize("n", [2, 3, 7, 30, 40, 41, 50, 300])
def test_the_bootstrap_sd_of_the_mean_is_the_plug_in_sd_over_root_n(n):
    # Resampling n values with replacement: Var(mean*) = sum((x - xbar)^2) / n / n exactly.
    values = np.random.default_rng(n).normal(0, 1, n)
    expected = np.sqrt(values.var(ddof=0) / n)
    result = bootstrap_mean(values, resamples=RESAMPLES, seed=3)
    assert result.sd == pytest.approx(expected, rel=5 / np.sqrt(2 * RESAMPLES))


def test_a_hand_worked_bootstrap_distribution_gives_a_hand_worked_interval():
    # Three raters scoring 0, 0, 1: the resampled mean is Binomial(3, 1/3) / 3, with
    # P(mean = 1) = 1/27 = 3.7% > 2.5% and P(mean = 0) = 8/27 > 2.5%.
    result = bootstrap_mean([0.0, 0.0, 1.0], seed=4)
    assert (result.low, result.high) == (0.0, 1.0)


def test_the_same_data_and_seed_give_the_identical_interval():
    values = DATASETS["normal rater thresholds"]
    assert bootstrap_mean(values, seed=5) == bootstrap_mean(values, seed=5)
    assert bootstrap_mean(values, seed=5) != bootstrap_mean(values, seed=6)
    num, den = [10, 40, 35], [100, 100, 90]
    assert bootstrap_pooled_rate(num, den, seed=5) == bootstrap_pooled_rate(num, den, seed=5)


def test_constant_data_give_an_interval_of_zero_width():
    result = bootstrap_mean([363.2] * 30)
    assert result.low == result.high == pytest.approx(363.2)
    assert result.sd == pytest.approx(0.0, abs=1e-9)
    rate = bootstrap_pooled_rate([30] * 10, [100] * 10)
    assert rate.low == rate.high == pytest.approx(0.3)


def test_a_single_rater_gives_a_degenerate_interval_without_crashing():
    result = bootstrap_mean([412.0])
    assert result.estimate == result.low == result.high == 412.0
    assert (result.sd, result.n) == (0.0, 1)


def test_the_result_records_how_it_was_made():
    result = bootstrap_mean([1.0, 2.0, 3.0], resamples=500, confidence=0.9, seed=7)
    assert (result.n, result.resamples, result.confidence, result.seed) == (3, 500, 0.9, 7)
    assert result.low <= result.estimate <= result.high


def test_the_pooled_rate_matches_scipys_paired_bootstrap_of_the_ratio():
    rng = np.random.default_rng(13)
    den = rng.integers(80, 101, 30).astype(float)  # raters who answered 80-100 images
    num = rng.binomial(den.astype(int), rng.beta(6, 14, 30)).astype(float)
    ours = bootstrap_pooled_rate(num, den, resamples=RESAMPLES, seed=8)
    theirs = stats.bootstrap(
        (num, den),
        lambda n, d, axis: n.sum(axis=axis) / d.sum(axis=axis),
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=RESAMPLES,
        rng=np.random.default_rng(9),
    )
    distribution = theirs.bootstrap_distribution
    assert ours.estimate == pytest.approx(num.sum() / den.sum())
    assert abs(ours.low - theirs.confidence_interval.low) < _percentile_tolerance(
        distribution, ALPHA, resamples=RESAMPLES
    )
    assert abs(ours.high - theirs.confidence_interval.high) < _percentile_tolerance(
        distribution, 1 - ALPHA, resamples=RESAMPLES
    )


def test_resampling_a_rater_keeps_all_of_their_answers_together():
    # One rater got everything wrong on 100 images, one everything right on 1 image: the
    # resampled rate is 0, 100/101 or 1, never anything built from split-up answers.
    result = bootstrap_pooled_rate([100, 0], [100, 1], seed=10)
    assert result.low == 0.0
    assert result.high == 1.0
    assert result.estimate == pytest.approx(100 / 101)


def test_many_models_at_once_each_get_an_interval_that_ignores_the_others():
    rng = np.random.default_rng(14)
    groups = {f"model {i}": rng.normal(300 + 20 * i, 60, 30) for i in range(4)}
    together = bootstrap_many(groups, seed=15)
    assert list(together) == list(groups)
    reordered = bootstrap_many(dict(reversed(groups.items())), seed=15)
    alone = bootstrap_many({"model 2": groups["model 2"]}, seed=15)
    assert reordered == together
    assert alone["model 2"] == together["model 2"]
    for name, result in together.items():
        assert result.estimate == pytest.approx(groups[name].mean())
        assert result.sd == pytest.approx(
            np.sqrt(groups[name].var() / 30), rel=5 / np.sqrt(2 * 10_000)
        )


def test_models_with_the_same_data_do_not_share_their_resamples():
    values = np.random.default_rng(16).normal(300, 60, 30)
    results = bootstrap_many({"a": values, "b": values}, seed=0)
    assert results["a"].low != results["b"].low


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"resamples": 0}, "resamples must be a positive integer, got 0"),
        ({"resamples": 2.5}, "resamples must be a positive integer, got 2.5"),
        ({"confidence": 0.0}, "confidence must be strictly between 0 and 1, got 0.0"),
        ({"confidence": 1.0}, "confidence must be strictly between 0 and 1, got 1.0"),
        ({"confidence": 95}, "confidence must be strictly between 0 and 1, got 95"),
        ({"seed": -1}, "seed must be a non-negative integer, got -1"),
    ],
)
def test_it_refuses_bad_bootstrap_settings(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_mean([1.0, 2.0], **kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_pooled_rate([1.0], [2.0], **kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_many({"a": [1.0, 2.0]}, **kwargs)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "need at least one value in rater scores"),
        ([[1.0, 2.0]], "must be one-dimensional, got shape (1, 2)"),
        ([1.0, float("nan")], "must be finite numbers"),
    ],
)
def test_it_refuses_scores_it_cannot_resample(values, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_mean(values)
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_many({"a": values})


@pytest.mark.parametrize(
    ("num", "den", "message"),
    [
        ([], [], "need at least one value in numerators"),
        ([1, 2], [3], "need one numerator per denominator, got 2 and 1"),
        ([1], [0], "denominators must be positive and numerators non-negative"),
        ([-1], [5], "denominators must be positive and numerators non-negative"),
    ],
)
def test_it_refuses_rates_it_cannot_pool(num, den, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_pooled_rate(num, den)
