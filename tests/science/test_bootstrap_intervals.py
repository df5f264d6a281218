"""The BCa and studentized intervals next to the percentile one: the default's numbers pinned,
BCa against scipy on identical resamples, known answers, degenerate data and streams."""

import math
import re
import types

import numpy as np
import pytest
from scipy import special, stats

from hype.science.bootstrap import (
    INTERVAL_METHODS,
    _resample_sums,
    bca_adjustment,
    bca_interval,
    bootstrap_many,
    bootstrap_mean,
    bootstrap_pooled_rate,
    model_stream_seed,
    studentized_interval,
)

# Thirty rater scores on the 10/3 ms grid and thirty raters' wrong answers out of 80-100.
GRID_SCORES = (
    np.array(
        [127, 138, 129, 90, 83, 109, 124, 117, 141, 122, 120, 95, 88, 135, 109]
        + [123, 83, 100, 85, 94, 124, 81, 98, 111, 96, 103, 104, 116, 100, 113]
    )
    / 0.3
)
WRONG = [26, 23, 30, 24, 26, 25, 29, 30, 34, 24, 26, 22, 26, 33, 33]
WRONG += [33, 34, 26, 28, 29, 27, 27, 31, 30, 27, 24, 25, 29, 26, 31]
ANSWERED = [89, 100, 100, 88, 100, 97, 93, 97, 96, 100, 88, 81, 89, 86, 90]
ANSWERED += [99, 100, 94, 93, 86, 80, 88, 89, 84, 96, 83, 90, 83, 87, 100]
SKEWED = 100 + np.random.default_rng(12).lognormal(5, 0.6, 30)


def _ratio(num, den, axis):
    return num.sum(axis=axis) / den.sum(axis=axis)


def _scipy_bca_on(statistics, data, statistic, **kwargs):
    """scipy's BCa interval computed on the bootstrap statistics given, not its own draws:
    n_resamples=0 with a bootstrap_result makes scipy use exactly that distribution."""
    result = stats.bootstrap(
        data,
        statistic,
        vectorized=True,
        n_resamples=0,
        bootstrap_result=types.SimpleNamespace(bootstrap_distribution=statistics),
        method="BCa",
        **kwargs,
    )
    return result.confidence_interval.low, result.confidence_interval.high


# --- The default stays the paper's percentile interval, bit for bit -----------------------


def test_the_default_interval_is_bit_identical_to_the_percentile_interval_as_first_released():
    # Numbers written down from the percentile-only module before BCa and studentized came:
    # stored study results depend on the same draws and the same quantiles.
    mean = bootstrap_mean(GRID_SCORES, seed=7)
    assert [x.hex() for x in (mean.estimate, mean.sd, mean.low, mean.high)] == [
        "0x1.6a00000000000p+8",
        "0x1.4bc32abb8da6cp+3",
        "0x1.55aaaaaaaaaabp+8",
        "0x1.7ec71c71c71c6p+8",
    ]
    rate = bootstrap_pooled_rate(WRONG, ANSWERED, seed=8)
    assert [x.hex() for x in (rate.estimate, rate.sd, rate.low, rate.high)] == [
        "0x1.387ec9bdfee1ap-2",
        "0x1.c626034e418b4p-8",
        "0x1.2a9345c995c50p-2",
        "0x1.46ac460807ef2p-2",
    ]
    many = bootstrap_many({"a": GRID_SCORES, "b": GRID_SCORES[:12]}, seed=9, resamples=2000)
    assert [(r.seed, r.sd.hex(), r.low.hex(), r.high.hex()) for r in many.values()] == [
        (1575129697, "0x1.474a45ab4fcccp+3", "0x1.5655555555556p+8", "0x1.7de4fa4fa4fa5p+8"),
        (2005648885, "0x1.0bfe4f084304cp+4", "0x1.622aaaaaaaaabp+8", "0x1.a2e38e38e38e4p+8"),
    ]
    small = bootstrap_mean(GRID_SCORES[:5], seed=3, resamples=777, confidence=0.8)
    assert [x.hex() for x in (small.sd, small.low, small.high)] == [
        "0x1.07c608f2533b3p+5",
        "0x1.5555555555556p+8",
        "0x1.a4aaaaaaaaaabp+8",
    ]
    assert mean.method == rate.method == small.method == "percentile"
    assert mean == bootstrap_mean(GRID_SCORES, seed=7, method="percentile")


def test_every_method_reads_the_same_resamples_so_only_the_interval_differs():
    results = [bootstrap_mean(SKEWED, seed=4, method=m) for m in INTERVAL_METHODS]
    rates = [bootstrap_pooled_rate(WRONG, ANSWERED, seed=4, method=m) for m in INTERVAL_METHODS]
    for group in (results, rates):
        assert len({(r.estimate, r.sd, r.n, r.resamples, r.seed) for r in group}) == 1
        assert [r.method for r in group] == list(INTERVAL_METHODS)
        assert len({(r.low, r.high) for r in group}) == 3


# --- BCa -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bca_of_the_mean_is_scipys_bca_on_the_same_resamples(seed):
    ours = bootstrap_mean(SKEWED, resamples=5000, seed=seed, method="bca")
    (sums,) = _resample_sums([SKEWED], resamples=5000, rng=np.random.default_rng(seed))
    theirs = _scipy_bca_on(sums / SKEWED.size, (SKEWED,), np.mean)
    assert (ours.low, ours.high) == pytest.approx(theirs, rel=1e-12)
    # Skewed to the right: BCa moves both ends up from the percentile interval's.
    percentile = bootstrap_mean(SKEWED, resamples=5000, seed=seed)
    assert ours.low > percentile.low and ours.high > percentile.high


def test_bca_of_the_pooled_rate_is_scipys_bca_with_raters_left_out_one_at_a_time():
    rng = np.random.default_rng(13)
    den = rng.integers(80, 101, 30).astype(float)
    num = rng.binomial(den.astype(int), rng.beta(1, 4, 30)).astype(float)
    ours = bootstrap_pooled_rate(num, den, resamples=4000, seed=5, method="bca")
    num_sums, den_sums = _resample_sums([num, den], resamples=4000, rng=np.random.default_rng(5))
    # paired=True: scipy's jackknife leaves out one (num, den) pair, i.e. one rater.
    theirs = _scipy_bca_on(num_sums / den_sums, (num, den), _ratio, paired=True)
    assert (ours.low, ours.high) == pytest.approx(theirs, rel=1e-12)


def test_a_hand_worked_bca_adjustment():
    # Two of four statistics below 2 and one tied with it: share (1 + 2) / 8 = 3/8. The
    # jackknife 0, 0, 3 has mean 1, so d = 1, 1, -2: a = -6 / (6 * 6^1.5).
    z0, a = bca_adjustment(statistics=[1.0, 2.0, 3.0, 4.0], jackknife=[0.0, 0.0, 3.0], estimate=2)
    assert z0 == pytest.approx(special.ndtri(3 / 8))
    assert a == pytest.approx(-1 / 6**1.5)


def test_for_symmetric_data_bca_has_no_bias_or_acceleration_and_is_the_percentile_interval():
    half = np.random.default_rng(17).normal(0, 60, 15)
    values = 360 + np.concatenate([half, -half])
    jackknife = (values.sum() - values) / (values.size - 1)
    (sums,) = _resample_sums([values], resamples=10_000, rng=np.random.default_rng(18))
    z0, a = bca_adjustment(statistics=sums / 30, jackknife=jackknife, estimate=values.mean())
    assert a == pytest.approx(0.0, abs=1e-12)
    assert abs(z0) < 4 * 0.5 / math.sqrt(10_000)  # the share below is 1/2 +- 0.5 / sqrt(B)
    bca = bootstrap_mean(values, seed=18, method="bca")
    percentile = bootstrap_mean(values, seed=18)
    assert bca.low == pytest.approx(percentile.low, abs=0.05 * percentile.sd)
    assert bca.high == pytest.approx(percentile.high, abs=0.05 * percentile.sd)


def test_bca_interval_with_no_correction_is_the_percentile_interval():
    statistics = np.arange(101.0)  # the estimate 50 splits them evenly: z0 = 0
    assert bca_interval(
        statistics=statistics, jackknife=[1.0, 2.0, 3.0], estimate=50.0, confidence=0.9
    ) == pytest.approx((5.0, 95.0))


def test_bca_stays_finite_when_the_estimate_lies_beyond_every_resample():
    low, high = bca_interval(
        statistics=[1.0, 2.0, 3.0], jackknife=[0.0, 1.0, 5.0], estimate=0.0, confidence=0.95
    )
    assert 1.0 <= low <= high <= 3.0


# --- Studentized -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_for_normal_data_the_studentized_interval_approaches_the_t_interval(seed):
    values = np.random.default_rng(100 + seed).normal(360, 60, 200)
    result = bootstrap_mean(values, seed=seed, method="studentized")
    half = stats.t.ppf(0.975, 199) * values.std(ddof=1) / math.sqrt(200)
    assert result.low == pytest.approx(values.mean() - half, abs=0.05 * half)
    assert result.high == pytest.approx(values.mean() + half, abs=0.05 * half)


def test_the_studentized_interval_is_built_from_t_quantiles_and_the_estimates_se():
    # t = (statistic - 10) / se* = -2, -1, ..., 2 (linear quantiles 10% and 90%: -1.6, 1.6).
    statistics = np.array([6.0, 8.0, 10.0, 12.0, 14.0])
    ses = np.full(5, 2.0)
    low, high = studentized_interval(
        statistics=statistics,
        standard_errors=ses,
        estimate=10.0,
        standard_error=3.0,
        confidence=0.8,
    )
    assert (low, high) == pytest.approx((10.0 - 1.6 * 3.0, 10.0 + 1.6 * 3.0))


def test_resamples_without_spread_stay_in_the_tails_instead_of_dividing_by_zero():
    # The resample at 0 had one rater drawn every time: its t is -inf, the lowest t, so
    # the upper end is unbounded and falls back to the largest bootstrap statistic.
    low, high = studentized_interval(
        statistics=[0.0, 9.0, 10.0, 11.0],
        standard_errors=[0.0, 1.0, 1.0, 1.0],
        estimate=10.0,
        standard_error=1.0,
        confidence=0.9,
    )
    assert math.isfinite(low) and low < 10.0
    assert high == 11.0


def test_the_studentized_mean_uses_s_over_root_n_of_each_resample():
    # Recompute t from the same resamples by brute force and compare the ends.
    values = SKEWED[:12]
    n, resamples = values.size, 3000
    result = bootstrap_mean(values, resamples=resamples, seed=21, method="studentized")
    rng = np.random.default_rng(21)
    sums, squares = _resample_sums([values, values**2], resamples=resamples, rng=rng)
    means = sums / n
    ses = np.sqrt((squares - n * means**2) / (n - 1) / n)
    se = values.std(ddof=1) / math.sqrt(n)
    t_low, t_high = np.quantile((means - values.mean()) / ses, [0.025, 0.975])
    assert (result.low, result.high) == pytest.approx(
        (values.mean() - t_high * se, values.mean() - t_low * se), rel=1e-9
    )


def test_the_studentized_pooled_rate_uses_the_delta_method_se_of_a_ratio():
    num, den = np.array(WRONG, float), np.array(ANSWERED, float)
    result = bootstrap_pooled_rate(num, den, resamples=3000, seed=22, method="studentized")
    rng = np.random.default_rng(22)
    sums = _resample_sums([num, den, num**2, den**2, num * den], resamples=3000, rng=rng)
    s_n, s_d, s_nn, s_dd, s_nd = sums
    rates = s_n / s_d
    ses = np.sqrt(s_nn - 2 * rates * s_nd + rates**2 * s_dd) / s_d
    rate = num.sum() / den.sum()
    se = np.sqrt(((num - rate * den) ** 2).sum()) / den.sum()
    t_low, t_high = np.quantile((rates - rate) / ses, [0.025, 0.975])
    assert (result.low, result.high) == pytest.approx(
        (rate - t_high * se, rate - t_low * se), rel=1e-9
    )


def test_a_studentized_rate_never_leaves_zero_to_one():
    # Most raters never wrong, one always: the t interval would reach below 0.
    result = bootstrap_pooled_rate([0] * 9 + [100], [100] * 10, method="studentized")
    assert 0.0 <= result.low < result.estimate < result.high <= 1.0


# --- Degenerate data: the same answer from every method --------------------------------


@pytest.mark.parametrize("method", INTERVAL_METHODS)
def test_one_rater_gives_a_zero_width_interval_with_every_method(method):
    result = bootstrap_mean([412.0], method=method)
    assert result.estimate == result.low == result.high == 412.0
    assert (result.sd, result.n, result.method) == (0.0, 1, method)
    rate = bootstrap_pooled_rate([30], [100], method=method)
    assert rate.estimate == rate.low == rate.high == 0.3


@pytest.mark.parametrize("method", INTERVAL_METHODS)
def test_raters_who_all_agree_give_a_zero_width_interval_with_every_method(method):
    result = bootstrap_mean([363.2] * 30, method=method)
    assert result.low == pytest.approx(363.2) and result.high == pytest.approx(363.2)
    rate = bootstrap_pooled_rate([30] * 10, [100] * 10, method=method)
    assert rate.low == pytest.approx(0.3) and rate.high == pytest.approx(0.3)


@pytest.mark.parametrize("method", INTERVAL_METHODS)
def test_two_or_three_raters_give_a_finite_interval_within_their_scores(method):
    for values in ([300.0, 400.0], [0.0, 0.0, 1.0]):
        result = bootstrap_mean(values, seed=4, method=method)
        assert min(values) <= result.low <= result.estimate <= result.high <= max(values)
    rate = bootstrap_pooled_rate([100, 0], [100, 1], seed=10, method=method)
    assert 0.0 <= rate.low <= rate.estimate <= rate.high <= 1.0


# --- Seeds and streams -----------------------------------------------------------------


@pytest.mark.parametrize("method", INTERVAL_METHODS)
def test_the_same_data_and_seed_give_the_identical_interval_with_every_method(method):
    assert bootstrap_mean(SKEWED, seed=5, method=method) == bootstrap_mean(
        SKEWED, seed=5, method=method
    )
    assert bootstrap_mean(SKEWED, seed=5, method=method) != bootstrap_mean(
        SKEWED, seed=6, method=method
    )
    assert bootstrap_pooled_rate(WRONG, ANSWERED, seed=5, method=method) == (
        bootstrap_pooled_rate(WRONG, ANSWERED, seed=5, method=method)
    )


@pytest.mark.parametrize("method", ["bca", "studentized"])
def test_each_model_keeps_its_own_stream_whatever_the_method(method):
    rng = np.random.default_rng(14)
    groups = {f"model {i}": rng.lognormal(5.5, 0.5, 30) for i in range(4)}
    together = bootstrap_many(groups, seed=15, method=method)
    reordered = bootstrap_many(dict(reversed(groups.items())), seed=15, method=method)
    alone = bootstrap_many({"model 2": groups["model 2"]}, seed=15, method=method)
    assert reordered == together and alone["model 2"] == together["model 2"]
    for name, result in together.items():
        assert result == bootstrap_mean(
            groups[name], seed=model_stream_seed(15, name), method=method
        )
    twins = bootstrap_many({"a": groups["model 0"], "b": groups["model 0"]}, method=method)
    assert twins["a"].low != twins["b"].low


def test_it_refuses_a_method_it_does_not_know():
    message = "method must be one of percentile, bca, studentized, got 'BCa'"
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_mean([1.0, 2.0], method="BCa")
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_pooled_rate([1.0], [2.0], method="BCa")
    with pytest.raises(ValueError, match=re.escape(message)):
        bootstrap_many({"a": [1.0, 2.0]}, method="BCa")


# --- Coverage --------------------------------------------------------------------------


@pytest.mark.slow
def test_for_skewed_rater_scores_the_studentized_interval_covers_closer_to_95_percent():
    # The lognormal HYPE_time case of bench/coverage.py at 30 raters. Both methods read the
    # same resamples of the same studies, so the SE of the difference in misses is that of
    # the studies one method covers and the other misses: sqrt(discordant) / studies.
    studies, raters = 2000, 30
    rng = np.random.default_rng(2030)
    shape, shift, scale = 0.8, 200.0, 160.0 / math.exp(0.32)
    scores = np.round((shift + scale * rng.lognormal(0.0, shape, (studies, raters))) * 0.3) / 0.3
    true_score = shift + 160.0  # the grid's rounding moves the mean by well under 0.01 ms
    hits = np.zeros((2, studies), dtype=bool)
    for study, values in enumerate(scores):
        for row, method in enumerate(("percentile", "studentized")):
            result = bootstrap_mean(values, resamples=2000, seed=study, method=method)
            hits[row, study] = result.low <= true_score <= result.high
    percentile, studentized = hits.mean(axis=1)
    se = math.sqrt((hits[0] != hits[1]).sum()) / studies
    print(f"coverage: percentile {percentile:.4f}, studentized {studentized:.4f} (SE {se:.4f})")
    assert abs(studentized - 0.95) < abs(percentile - 0.95) - 3 * se
