"""The fitted HYPE_time threshold: the psychometric function and its inverse, the maximum-
likelihood fit on data with known answers, censoring, what a censored rater contributes,
and (slow) the bias and interval width that bench/psychometric.py reports."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from hype.science.observers import SimulatedObserver
from hype.science.psychometric import (
    ABOVE_CEILING,
    ABOVE_TESTED_RANGE,
    BELOW_FLOOR,
    LAPSE_BOUNDS,
    UNREACHABLE,
    FitScore,
    PsychometricFit,
    exposure_for_accuracy,
    fit_contribution,
    model_fit_score,
    psychometric_fit,
    psychometric_fit_joint,
    psychometric_log_likelihood,
    psychometric_p,
    rater_fit,
    study_fit,
)
from hype.science.staircase import StaircaseRule, staircase_replay

RULE = StaircaseRule()
TARGET = RULE.target_accuracy()
BENCH = Path(__file__).resolve().parents[2] / "bench"
PSY = "psychometric.py"


def _logit(p):
    return math.log(p / (1 - p))


def _exact(location, slope, lapse, *, levels=range(100, 1001, 10), per_level=2000):
    """Trials whose share correct at every exposure is p(x) to 1/per_level: data that a
    large sample from the function converges to."""
    xs, rights = [], []
    for x in levels:
        p = psychometric_p([x], location_ms=location, slope_ms=slope, lapse=lapse)[0]
        right = round(per_level * p)
        xs.append(np.full(per_level, x))
        rights.append(np.arange(per_level) < right)
    return np.concatenate(xs), np.concatenate(rights)


def _fit_with(**overrides):
    fields = dict(
        threshold_ms=300.0,
        censored=None,
        bound_ms=None,
        location_ms=350.0,
        slope_ms=60.0,
        lapse=0.04,
        target_accuracy=TARGET,
        log_likelihood=-300.0,
        n_trials=450,
        tested_min_ms=200.0,
        tested_max_ms=500.0,
    )
    fields.update(overrides)
    return PsychometricFit(**fields)


# --- The function and its inverse -------------------------------------------------------


def test_the_function_runs_from_guessing_to_one_minus_the_lapse_and_is_halfway_at_its_location():
    p = psychometric_p([-1e6, 300, 1e6], location_ms=300, slope_ms=60, lapse=0.04)
    assert p == pytest.approx([0.5, 0.5 + 0.46 / 2, 0.96])


def test_it_is_the_simulated_observers_function_with_location_for_threshold():
    observer = SimulatedObserver(threshold_ms=420, spread_ms=55, lapse=0.03)
    xs = [100, 300, 420, 600, 1000]
    assert psychometric_p(xs, location_ms=420, slope_ms=55, lapse=0.03) == pytest.approx(
        [observer.p_correct(x) for x in xs]
    )


def test_the_likelihood_at_known_parameters_equals_its_closed_form():
    # At x = location, p = 0.5 + 0.46 / 2 = 0.73; at location + slope ln 3, logistic = 3/4
    # and p = 0.5 + 0.46 * 0.75 = 0.845.
    exposures = [300, 300, 300, 300 + 60 * math.log(3), 300 + 60 * math.log(3)]
    correct = [True, True, False, True, False]
    expected = 2 * math.log(0.73) + math.log(0.27) + math.log(0.845) + math.log(0.155)
    got = psychometric_log_likelihood(
        exposures_ms=exposures, correct=correct, location_ms=300, slope_ms=60, lapse=0.04
    )
    assert got == pytest.approx(expected, rel=1e-12)


def test_the_target_is_inverted_through_the_lapse_in_closed_form():
    got = exposure_for_accuracy(TARGET, location_ms=300, slope_ms=60, lapse=0.04)
    assert got == pytest.approx(300 + 60 * _logit((TARGET - 0.5) / 0.46))
    assert psychometric_p([got], location_ms=300, slope_ms=60, lapse=0.04)[0] == pytest.approx(
        TARGET
    )
    # Ignoring the lapse (dividing by 0.5) would put it 7 ms lower here.
    no_lapse = 300 + 60 * _logit((TARGET - 0.5) / 0.5)
    assert got - no_lapse == pytest.approx(6.9, abs=0.1)


@pytest.mark.parametrize("accuracy", [0.96, 0.97, 0.999])
def test_an_accuracy_at_or_above_the_top_is_never_reached(accuracy):
    assert exposure_for_accuracy(accuracy, location_ms=300, slope_ms=60, lapse=0.04) is None


# --- The fit on data with known answers ---------------------------------------------------


def test_it_recovers_a_known_threshold_from_data_drawn_exactly_from_the_function():
    exposures, correct = _exact(400, 60, 0.04)
    fit = psychometric_fit(exposures_ms=exposures, correct=correct, slope_ms=60)
    expected = exposure_for_accuracy(TARGET, location_ms=400, slope_ms=60, lapse=0.04)
    assert fit.censored is None
    assert fit.location_ms == pytest.approx(400, abs=0.5)
    assert fit.lapse == pytest.approx(0.04, abs=0.002)
    assert fit.threshold_ms == pytest.approx(expected, abs=0.5)
    assert fit.n_trials == exposures.size
    assert (fit.tested_min_ms, fit.tested_max_ms) == (100, 1000)


def test_the_joint_fit_recovers_the_shared_slope_and_lapse_and_every_raters_location():
    raters = [_exact(location, 45, 0.03, per_level=1000) for location in (250, 400, 600)]
    joint = psychometric_fit_joint(raters=raters)
    assert joint.slope_ms == pytest.approx(45, abs=0.5)
    assert joint.lapse == pytest.approx(0.03, abs=0.002)
    assert [fit.location_ms for fit in joint.fits] == pytest.approx([250, 400, 600], abs=0.5)
    assert all(fit.slope_ms == joint.slope_ms and fit.lapse == joint.lapse for fit in joint.fits)
    assert joint.log_likelihood == pytest.approx(sum(fit.log_likelihood for fit in joint.fits))


def test_its_likelihood_is_at_least_that_of_the_true_parameters():
    observer = SimulatedObserver(threshold_ms=350, spread_ms=60, lapse=0.04)
    rng = np.random.default_rng(0)
    exposures = rng.choice(np.arange(200, 601, 10), 450)
    correct = rng.random(450) < np.array([observer.p_correct(x) for x in exposures])
    fit = psychometric_fit(exposures_ms=exposures, correct=correct, slope_ms=60)
    at_truth = psychometric_log_likelihood(
        exposures_ms=exposures, correct=correct, location_ms=350, slope_ms=60, lapse=0.04
    )
    assert fit.log_likelihood >= at_truth - 1e-9


def test_the_lapse_stays_within_its_bounds_however_many_errors_are_made_at_long_exposures():
    exposures, correct = _exact(300, 60, 0.2)
    fit = psychometric_fit(exposures_ms=exposures, correct=correct, slope_ms=60)
    assert fit.lapse == pytest.approx(LAPSE_BOUNDS[1])


def test_shifting_every_exposure_shifts_the_threshold_by_as_much():
    exposures, correct = _exact(400, 60, 0.04, levels=range(250, 601, 10), per_level=40)
    first = psychometric_fit(exposures_ms=exposures, correct=correct, slope_ms=60, lapse=0.04)
    second = psychometric_fit(
        exposures_ms=exposures + 100, correct=correct, slope_ms=60, lapse=0.04
    )
    assert second.threshold_ms - first.threshold_ms == pytest.approx(100, abs=0.05)


def test_a_rater_who_is_right_more_often_at_the_same_exposures_gets_a_lower_threshold():
    exposures, correct = _exact(400, 60, 0.04, levels=range(250, 601, 10), per_level=40)
    better = correct.copy()
    better[np.flatnonzero(~correct)[::4]] = True
    worse = psychometric_fit(exposures_ms=exposures, correct=correct, slope_ms=60, lapse=0.04)
    fits = psychometric_fit(exposures_ms=exposures, correct=better, slope_ms=60, lapse=0.04)
    assert fits.threshold_ms < worse.threshold_ms


def test_a_fit_from_blocks_is_the_fit_of_all_their_trials():
    exposures, correct = _exact(400, 60, 0.04, levels=range(250, 601, 10), per_level=30)
    blocks = [(exposures[i::3], correct[i::3]) for i in range(3)]
    from_blocks = rater_fit(blocks=blocks, slope_ms=60)
    pooled = psychometric_fit(
        exposures_ms=np.concatenate([b[0] for b in blocks]),
        correct=np.concatenate([b[1] for b in blocks]),
        slope_ms=60,
    )
    assert from_blocks == pooled


def test_a_study_fit_keeps_the_raters_keys_and_shares_one_slope():
    raters = {
        f"rater {location}": [_exact(location, 50, 0.04, per_level=200)] for location in (300, 500)
    }
    fits = study_fit(raters=raters)
    assert list(fits) == ["rater 300", "rater 500"]
    assert fits["rater 300"].slope_ms == fits["rater 500"].slope_ms == pytest.approx(50, abs=1)
    assert fits["rater 500"].location_ms == pytest.approx(500, abs=1)


# --- Censoring ------------------------------------------------------------------------------


def test_a_rater_right_at_every_exposure_is_censored_below_the_floor_and_counts_at_the_floor():
    exposures = np.repeat([100, 130, 160, 190], 50)
    fit = psychometric_fit(exposures_ms=exposures, correct=np.ones(200, bool), slope_ms=60)
    assert (fit.threshold_ms, fit.censored, fit.bound_ms) == (None, BELOW_FLOOR, 100)
    assert fit_contribution(fit) == 100


def test_a_rater_at_chance_up_to_the_ceiling_is_censored_above_it_and_counts_at_the_ceiling():
    exposures = np.repeat([700, 800, 900, 1000], 50)
    fit = psychometric_fit(
        exposures_ms=exposures, correct=np.arange(200) % 2 == 0, slope_ms=60, lapse=0.04
    )
    assert (fit.threshold_ms, fit.censored, fit.bound_ms) == (None, ABOVE_CEILING, 1000)
    assert fit_contribution(fit) == 1000


def test_a_threshold_just_past_the_floor_is_censored_however_close_it_is():
    # 63% is reached at 90 ms, 10 ms below the floor: still no number.
    location = 90 - 60 * _logit((TARGET - 0.5) / 0.46)
    exposures, correct = _exact(location, 60, 0.04, levels=range(100, 401, 10))
    fit = psychometric_fit(exposures_ms=exposures, correct=correct, slope_ms=60, lapse=0.04)
    assert fit.censored == BELOW_FLOOR


def test_a_threshold_more_than_a_step_beyond_the_tested_exposures_is_censored_at_that_edge():
    # Tested from 500 to 600 ms only, with its 63% point at 800 ms.
    location = 800 - 60 * _logit((TARGET - 0.5) / 0.46)
    exposures, correct = _exact(location, 60, 0.04, levels=range(500, 601, 10))
    fit = psychometric_fit(exposures_ms=exposures, correct=correct, slope_ms=60, lapse=0.04)
    assert (fit.threshold_ms, fit.censored) == (None, ABOVE_TESTED_RANGE)
    assert fit.bound_ms == 600 + RULE.step_down_ms


def test_a_threshold_within_a_step_of_the_tested_exposures_is_reported():
    location = 620 - 60 * _logit((TARGET - 0.5) / 0.46)
    exposures, correct = _exact(location, 60, 0.04, levels=range(500, 601, 10))
    fit = psychometric_fit(exposures_ms=exposures, correct=correct, slope_ms=60, lapse=0.04)
    assert fit.censored is None
    assert fit.threshold_ms == pytest.approx(620, abs=1)


def test_a_target_above_the_curves_top_is_unreachable_and_counts_at_the_ceiling():
    steep = StaircaseRule(run_length=25)  # targets 0.25 ** (1/25) = 0.946
    exposures, correct = _exact(300, 60, 0.06, levels=range(100, 1001, 50), per_level=100)
    fit = psychometric_fit(
        exposures_ms=exposures, correct=correct, slope_ms=60, lapse=0.06, rule=steep
    )
    assert (fit.threshold_ms, fit.censored, fit.bound_ms) == (None, UNREACHABLE, 1000)


def test_a_models_score_averages_thresholds_and_bounds_and_counts_the_censored_each_way():
    fits = [
        _fit_with(threshold_ms=200.0),
        _fit_with(threshold_ms=None, censored=BELOW_FLOOR, bound_ms=100.0),
        _fit_with(threshold_ms=None, censored=ABOVE_TESTED_RANGE, bound_ms=830.0),
        _fit_with(threshold_ms=410.0),
    ]
    assert model_fit_score(fits) == FitScore(
        score_ms=(200 + 100 + 830 + 410) / 4, raters=4, censored_low=1, censored_high=1
    )


# --- Bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exposures", "correct", "message"),
    [
        ([], [], "at least one value"),
        ([300, 400], [True], "one answer per exposure"),
        ([300, math.nan], [True, False], "finite"),
        ([300, math.inf], [True, False], "finite"),
        ([300, 400], [1, 0], "booleans"),
        ([300, 400], [1.0, 0.0], "booleans"),
        ([300, 400], ["yes", "no"], "booleans"),
        ([[300, 400]], [[True, False]], "one-dimensional"),
        ([50, 400], [True, False], "outside the rule's bounds"),
        ([300, 1200], [True, False], "outside the rule's bounds"),
    ],
)
def test_it_refuses_trials_it_cannot_fit(exposures, correct, message):
    with pytest.raises(ValueError, match=message):
        psychometric_fit(exposures_ms=exposures, correct=correct, slope_ms=60)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slope_ms": 0}, "slope_ms"),
        ({"slope_ms": -5}, "slope_ms"),
        ({"slope_ms": math.nan}, "slope_ms"),
        ({"slope_ms": None}, "needs a slope"),
        ({"slope_ms": 60, "lapse": 0.5}, "lapse"),
        ({"slope_ms": 60, "lapse": -0.01}, "lapse"),
        ({"slope_ms": 60, "rule": StaircaseRule(run_length=1)}, "at or below chance"),
        ({"slope_ms": 60, "rule": "default"}, "StaircaseRule"),
    ],
)
def test_it_refuses_settings_it_cannot_use(kwargs, message):
    with pytest.raises(ValueError, match=message):
        psychometric_fit(exposures_ms=[300, 400], correct=[True, False], **kwargs)


@pytest.mark.parametrize(
    ("raters", "message"),
    [
        ([], "non-empty"),
        ("abc", "non-empty"),
        ([([300], [True], [1])], "rater 0 must be a pair"),
        ([([300], [True]), ([300], [1])], "rater 1: correct must be booleans"),
    ],
)
def test_the_joint_fit_refuses_raters_it_cannot_fit(raters, message):
    with pytest.raises(ValueError, match=message):
        psychometric_fit_joint(raters=raters)


def test_fits_from_blocks_refuse_missing_or_malformed_blocks():
    with pytest.raises(ValueError, match="at least one block"):
        rater_fit(blocks=[], slope_ms=60)
    with pytest.raises(ValueError, match="block 1 must be a pair"):
        rater_fit(blocks=[([300], [True]), [300]], slope_ms=60)
    with pytest.raises(ValueError, match="block 0: need one answer per exposure"):
        rater_fit(blocks=[([300, 310], [True])], slope_ms=60)
    with pytest.raises(ValueError, match="non-empty mapping"):
        study_fit(raters={})
    with pytest.raises(ValueError, match="non-empty sequence of fits"):
        model_fit_score([])


# --- The bench's simulation, and what it shows (slow) ----------------------------------------


def _bench():
    # The bench imports its sibling `common`; load it as the script would run.
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_psychometric", BENCH / PSY)
        module = importlib.util.module_from_spec(spec)
        # Its dataclasses look their module up in sys.modules.
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_the_benchs_staircase_follows_the_rule_and_its_raters_sit_where_drawn():
    bench = _bench()
    rng = np.random.default_rng(4)
    observers = bench.observers_draw(300, raters=6, rater_sd_ms=50, rng=rng)
    exposures, correct = bench.raters_simulate(
        observers, RULE, blocks=2, trials_per_block=150, rng=rng
    )
    for rater_exposures, rater_correct in zip(exposures, correct, strict=True):
        for block, answers in zip(rater_exposures, rater_correct, strict=True):
            assert staircase_replay(RULE, list(answers)) == list(block)
    for observer in observers:
        assert observer.top == pytest.approx(1 - bench.LAPSE)


@pytest.mark.slow
def test_inside_the_range_the_fit_is_unbiased_and_as_wide_as_the_mode_and_less_biased_at_the_top():
    # A reduced bench/psychometric.py. At 200 studies it gives, for 200-400 ms, fit biases of
    # +2 to +3.5 ms (SE 0.3) and width ratios of 0.98-1.00 (SE 0.005); at 1000 ms a model
    # score bias of -46 ms for the fit against -258 ms for the mode. With 40 studies the SEs
    # are about 0.7 ms and 0.011, so 5 ms and a ratio in [0.94, 1.04] leave 2-3 SE of room for
    # Monte Carlo error on either side of what the bench measured.
    bench = _bench()
    rng = np.random.default_rng(11)
    for model_ms in (200, 300, 400):
        row = bench.row_simulate(
            model_ms, studies=40, raters=30, rater_sd_ms=50, resamples=1000, rng=rng
        )
        assert abs(row.fit_bias_ms) < 5
        assert row.censored_low + row.censored_high < 0.06
        assert 0.94 < row.fit_width_ms / row.mode_width_ms < 1.04
    top = bench.row_simulate(1000, studies=20, raters=30, rater_sd_ms=50, resamples=1000, rng=rng)
    assert abs(top.fit_score_bias_ms) < abs(top.mode_score_bias_ms) / 3
