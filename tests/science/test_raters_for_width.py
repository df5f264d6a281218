"""How many raters a target interval width needs: closed forms of the normal approximation,
input checks, and simulated studies of the suggested size that get about that width."""

import math

import numpy as np
import pytest
from scipy import stats

from hype.science.bootstrap import bootstrap_mean, raters_for_width

Z95 = stats.norm.ppf(0.975)


def test_two_scores_ten_apart_need_eight_raters_for_a_ten_wide_interval():
    # s^2 = 50, so n = 4 z^2 s^2 / w^2 = 4 * 1.95996^2 * 50 / 100 = 7.68, rounded up.
    assert raters_for_width([0.0, 10.0], width=10.0) == 8


def test_a_width_chosen_for_thirty_raters_gives_exactly_thirty():
    scores = [300.0, 360.0, 420.0]  # s = 60
    width = 2 * Z95 * 60 / math.sqrt(30)
    assert raters_for_width(scores, width=width) == 30


def test_halving_the_width_quadruples_the_raters():
    scores = [300.0, 360.0, 420.0]
    width = 2 * Z95 * 60 / math.sqrt(10)
    assert raters_for_width(scores, width=width) == 10
    assert raters_for_width(scores, width=width / 2) == 40


def test_a_higher_confidence_uses_its_own_normal_quantile():
    scores = [300.0, 360.0, 420.0]
    z99 = stats.norm.ppf(0.995)
    width = 2 * z99 * 60 / math.sqrt(25)
    assert raters_for_width(scores, width=width, confidence=0.99) == 25
    assert raters_for_width(scores, width=width, confidence=0.95) < 25


def test_hype_inf_error_rates_and_a_width_in_fractions_work_the_same_way():
    rates = [0.3, 0.5]  # s^2 = 0.02
    assert raters_for_width(rates, width=0.1) == math.ceil(4 * Z95**2 * 0.02 / 0.01)  # 31


def test_raters_who_all_agree_still_need_two():
    assert raters_for_width([400.0, 400.0, 400.0], width=50.0) == 2


@pytest.mark.parametrize(
    ("scores", "width", "confidence", "message"),
    [
        ([400.0], 50.0, 0.95, "at least two"),
        ([], 50.0, 0.95, "at least one"),
        ([400.0, 410.0], 0.0, 0.95, "width"),
        ([400.0, 410.0], -5.0, 0.95, "width"),
        ([400.0, 410.0], math.nan, 0.95, "width"),
        ([400.0, 410.0], 50.0, 1.0, "confidence"),
        ([400.0, math.inf], 50.0, 0.95, "finite"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(scores, width, confidence, message):
    with pytest.raises(ValueError, match=message):
        raters_for_width(scores, width=width, confidence=confidence)


def test_studies_of_the_suggested_size_get_about_the_target_width():
    # Raters with thresholds ~ N(360, 60): a 50 ms target suggests ceil(22.13) = 23 raters.
    rng = np.random.default_rng(5)
    pilot = rng.normal(360, 60, 400)
    n = raters_for_width(pilot, width=50.0)
    assert 20 <= n <= 26
    widths = []
    for seed in range(200):
        sample = rng.normal(360, 60, n)
        result = bootstrap_mean(sample, resamples=2_000, seed=seed)
        widths.append(result.high - result.low)
    assert np.mean(widths) == pytest.approx(50.0, rel=0.08)
