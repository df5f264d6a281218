"""Simulated observers with a known threshold, run through the default staircase, settle
where p(correct)**3 = 10 / (10 + 30) says they should.

An up-down staircase converges in distribution: it keeps moving around its target. We check
both the paper's statistic (the mean of the block modes) and the classic one (the mean
exposure after a burn-in) against the exposure at which the observer is 63% correct.
"""

import numpy as np
import pytest

from hype.science.observers import SimulatedObserver, simulate_time_rater
from hype.science.staircase import StaircaseRule
from hype.science.thresholds import model_time_score, rater_time_score

RULE = StaircaseRule()
ONE_STEP_MS = RULE.step_down_ms


def _simulate(observer, *, raters, trials_per_block, seed):
    rng = np.random.default_rng(seed)
    return [
        simulate_time_rater(observer, RULE, blocks=3, trials_per_block=trials_per_block, rng=rng)
        for _ in range(raters)
    ]


@pytest.mark.parametrize("threshold_ms", [250, 500])
def test_the_mean_modal_threshold_lands_within_one_step_of_the_target(threshold_ms):
    observer = SimulatedObserver(threshold_ms=threshold_ms)
    target = observer.exposure_for_accuracy(RULE.target_accuracy())
    raters = _simulate(observer, raters=200, trials_per_block=150, seed=threshold_ms)
    score = model_time_score([rater_time_score(blocks) for blocks in raters])
    assert abs(score - target) < ONE_STEP_MS


@pytest.mark.parametrize("threshold_ms", [250, 500])
def test_the_mean_exposure_after_burn_in_lands_within_one_step_of_the_target(threshold_ms):
    observer = SimulatedObserver(threshold_ms=threshold_ms)
    target = observer.exposure_for_accuracy(RULE.target_accuracy())
    raters = _simulate(observer, raters=200, trials_per_block=150, seed=threshold_ms + 1)
    exposures = np.array(raters)  # raters x blocks x trials
    assert abs(exposures[:, :, 50:].mean() - target) < ONE_STEP_MS


def test_a_threshold_far_above_the_start_is_found_by_a_long_enough_block():
    # +10 ms per error makes the climb from 500 ms slow; 150 trials do not get there (see
    # the report), 600 do.
    observer = SimulatedObserver(threshold_ms=700)
    target = observer.exposure_for_accuracy(RULE.target_accuracy())
    raters = _simulate(observer, raters=100, trials_per_block=600, seed=700)
    score = model_time_score([rater_time_score(blocks) for blocks in raters])
    assert abs(score - target) < ONE_STEP_MS


def test_a_better_fake_gets_a_higher_hype_time_score():
    scores = []
    for threshold_ms in (250, 400, 550):
        raters = _simulate(
            SimulatedObserver(threshold_ms=threshold_ms),
            raters=30,
            trials_per_block=150,
            seed=threshold_ms + 2,
        )
        scores.append(model_time_score([rater_time_score(blocks) for blocks in raters]))
    assert scores == sorted(scores)
