"""Model comparisons: closed forms and agreement with scipy.stats."""

import re

import numpy as np
import pytest
from scipy import stats

from hype.science.comparisons import compare_models, spearman, tukey_hsd_pairs

RNG = np.random.default_rng(21)
TWO = {"StyleGAN": RNG.normal(363, 80, 30), "ProGAN": RNG.normal(241, 50, 27)}
FOUR = {
    name: RNG.normal(mean, 60, n)
    for name, mean, n in [("A", 360, 30), ("B", 300, 30), ("C", 250, 28), ("D", 355, 30)]
}


def test_students_t_test_gives_the_closed_form_statistic():
    # Pooled variance 1, difference -3: t = -3 / sqrt(1/3 + 1/3).
    result = compare_models({"a": [1, 2, 3], "b": [4, 5, 6]}, equal_var=True)
    assert result.test == "t-test"
    assert result.statistic == pytest.approx(-3 / np.sqrt(2 / 3))
    assert result.pairs[0].difference == pytest.approx(-3.0)


def test_two_models_get_welchs_t_test_by_default_as_scipy_computes_it():
    result = compare_models(TWO)
    expected = stats.ttest_ind(TWO["StyleGAN"], TWO["ProGAN"], equal_var=False)
    interval = expected.confidence_interval(confidence_level=0.95)
    assert result.test == "t-test"
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    (pair,) = result.pairs
    assert (pair.a, pair.b) == ("StyleGAN", "ProGAN")
    assert pair.difference == pytest.approx(TWO["StyleGAN"].mean() - TWO["ProGAN"].mean())
    assert pair.p_value == pytest.approx(expected.pvalue)
    assert (pair.low, pair.high) == pytest.approx((interval.low, interval.high))


def test_students_t_test_is_there_when_asked_for():
    result = compare_models(TWO, equal_var=True)
    expected = stats.ttest_ind(TWO["StyleGAN"], TWO["ProGAN"], equal_var=True)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.p_value != pytest.approx(compare_models(TWO).p_value)


def test_one_way_anova_gives_the_closed_form_f():
    # Between: 3 * (9 + 0 + 9) / 2 = 27; within: 6 / 6 = 1.
    result = compare_models({"a": [1, 2, 3], "b": [4, 5, 6], "c": [7, 8, 9]})
    assert result.test == "anova"
    assert result.statistic == pytest.approx(27.0)


def test_three_or_more_models_get_anova_and_tukey_pairs_as_scipy_computes_them():
    result = compare_models(FOUR)
    samples = list(FOUR.values())
    anova = stats.f_oneway(*samples)
    tukey = stats.tukey_hsd(*samples)
    interval = tukey.confidence_interval(confidence_level=0.95)
    assert result.statistic == pytest.approx(anova.statistic)
    assert result.p_value == pytest.approx(anova.pvalue)
    names = list(FOUR)
    assert [(p.a, p.b) for p in result.pairs] == [
        ("A", "B"),
        ("A", "C"),
        ("A", "D"),
        ("B", "C"),
        ("B", "D"),
        ("C", "D"),
    ]
    for pair in result.pairs:
        i, j = names.index(pair.a), names.index(pair.b)
        assert pair.difference == pytest.approx(FOUR[pair.a].mean() - FOUR[pair.b].mean())
        assert pair.p_value == pytest.approx(tukey.pvalue[i, j])
        assert pair.low == pytest.approx(interval.low[i, j])
        assert pair.high == pytest.approx(interval.high[i, j])


@pytest.mark.parametrize("sizes", [(30,) * 10, (30, 12, 2, 45, 30, 7)])
@pytest.mark.parametrize("confidence", [0.95, 0.8])
def test_tukey_for_the_pairs_alone_is_scipys_tukey_hsd_to_the_last_bit(sizes, confidence):
    rng = np.random.default_rng(len(sizes))
    samples = [rng.normal(300 + 7 * k, 60, n) for k, n in enumerate(sizes)]
    differences, p_values, low, high = tukey_hsd_pairs(samples, confidence=confidence)
    tukey = stats.tukey_hsd(*samples)
    interval = tukey.confidence_interval(confidence_level=confidence)
    upper = np.triu_indices(len(sizes), 1)
    # Equal, not approximately: the same operations in the same order, on fewer cells.
    assert np.array_equal(differences, tukey.statistic[upper])
    assert np.array_equal(p_values, tukey.pvalue[upper])
    assert np.array_equal(low, interval.low[upper])
    assert np.array_equal(high, interval.high[upper])


def test_a_clearly_worse_model_separates_and_a_twin_does_not():
    pairs = {(p.a, p.b): p for p in compare_models(FOUR).pairs}
    assert pairs[("A", "C")].p_value < 0.001
    assert pairs[("A", "D")].p_value > 0.05
    assert pairs[("A", "D")].low < 0 < pairs[("A", "D")].high


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({}, "need at least two models to compare, got 0"),
        ({"a": [1.0, 2.0]}, "need at least two models to compare, got 1"),
        ({"a": [1.0, 2.0], "b": [3.0]}, "model 'b' needs at least two rater scores, has 1"),
        (
            {"a": [1, 2], "b": [3, 4], "c": [5]},
            "model 'c' needs at least two rater scores, has 1",
        ),
    ],
)
def test_it_refuses_a_comparison_it_cannot_make(groups, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        compare_models(groups)


def test_spearman_agrees_with_scipy_and_ranks_a_monotone_metric_perfectly():
    hype = [50.7, 40.3, 10.0, 3.8]
    fid = [5.0, 8.0, 30.0, 45.0]  # lower FID is better, so a perfect metric ranks inversely
    rho, p = spearman(hype, fid)
    assert rho == pytest.approx(-1.0)
    x, y = RNG.normal(size=12), RNG.normal(size=12)
    expected = stats.spearmanr(x, y)
    assert spearman(x, y) == pytest.approx((expected.statistic, expected.pvalue))


# scipy refuses unmatched lengths itself: the message shows the refusal is hype's own.
@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        ([1.0], [2.0], "a rank correlation needs at least two points"),
        ([1.0, 2.0], [1.0, 2.0, 3.0], "x and y must be the same length, got 2 and 3"),
        ([], [], "need at least one value in x"),
    ],
)
def test_spearman_refuses_too_few_or_unmatched_points(x, y, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        spearman(x, y)
