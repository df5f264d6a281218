"""The rater-stratified test of whether tags differ (hype.science.subgroups) against its
closed forms: Pearson's chi-square for one rater, Mantel-Haenszel's for two tags."""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from hype.science.subgroups import tag_difference_test


def test_for_one_rater_the_test_is_pearsons_chi_square_times_n_minus_1_over_n():
    wrong, answered = np.array([3, 7, 1]), np.array([10, 12, 9])
    found = tag_difference_test([wrong], [answered])
    pearson = stats.chi2_contingency(np.stack([wrong, answered - wrong], axis=1), correction=False)
    n = answered.sum()
    assert found.df == 2
    assert found.statistic == pytest.approx(pearson.statistic * (n - 1) / n, rel=1e-12)
    assert found.p_value == pytest.approx(stats.chi2.sf(found.statistic, 2), rel=1e-12)


def test_for_two_tags_the_test_is_the_mantel_haenszel_chi_square_without_correction():
    wrong = np.array([[3, 7], [2, 5], [0, 4]])
    answered = np.array([[10, 12], [6, 8], [5, 5]])
    deviation = variance = 0.0
    for (a, b), (na, nb) in zip(wrong, answered, strict=True):
        n, w = na + nb, a + b
        deviation += a - na * w / n
        variance += na * nb * w * (n - w) / (n**2 * (n - 1))
    found = tag_difference_test(wrong, answered)
    assert found.statistic == pytest.approx(deviation**2 / variance, rel=1e-12)
    assert found.p_value == pytest.approx(stats.chi2.sf(deviation**2 / variance, 1), rel=1e-12)
    # A rater whose answers were all right tells nothing: the same test without them.
    more = tag_difference_test([*wrong, [0, 0]], [*answered, [4, 4]])
    assert more == dataclasses.replace(found, n_raters=4)


def test_without_anything_to_compare_there_is_no_test():
    assert tag_difference_test([[0, 0]], [[3, 4]]) is None  # every answer right
    assert tag_difference_test([[1, 0]], [[3, 0]]) is None  # one tag answered
    with pytest.raises(ValueError, match="wrong at most answered"):
        tag_difference_test([[3, 0]], [[2, 1]])
