"""The staircase rule: its target accuracy, hand-worked sequences, bounds and run resets."""

import json
import math
import re

import numpy as np
import pytest

from hype.science.staircase import (
    StaircaseRule,
    StaircaseState,
    convergence_accuracy,
    staircase_replay,
    staircase_start,
    staircase_step,
)

C, W = True, False


def test_the_default_rule_converges_to_63_percent_correct():
    rule = StaircaseRule()
    assert rule.target_accuracy() == pytest.approx(0.25 ** (1 / 3), abs=1e-12)
    assert round(rule.target_accuracy(), 2) == 0.63
    assert not rule.is_at_or_below_chance()


def test_one_trial_at_a_time_with_the_papers_steps_targets_25_percent_and_is_flagged():
    rule = StaircaseRule(run_length=1, step_down_ms=30, step_up_ms=10)
    assert rule.target_accuracy() == pytest.approx(0.25, abs=1e-12)
    assert rule.is_at_or_below_chance()


def test_the_formula_gives_levitts_classic_targets_for_equal_steps():
    # Levitt (1971): 2-down/1-up converges to 70.7%, 3-down/1-up to 79.4%.
    assert convergence_accuracy(run_length=2, step_down_ms=10, step_up_ms=10) == pytest.approx(
        math.sqrt(0.5)
    )
    assert convergence_accuracy(run_length=3, step_down_ms=1, step_up_ms=1) == pytest.approx(
        0.5 ** (1 / 3)
    )


def test_a_rule_aiming_exactly_at_chance_is_flagged():
    assert StaircaseRule(run_length=1, step_down_ms=10, step_up_ms=10).is_at_or_below_chance()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"floor_ms": 600},
            "the staircase must start inside its bounds: need floor_ms <= start_ms <= "
            "ceiling_ms, got 600 <= 500 <= 1000",
        ),
        (
            {"ceiling_ms": 400},
            "the staircase must start inside its bounds: need floor_ms <= start_ms <= "
            "ceiling_ms, got 100 <= 500 <= 400",
        ),
        ({"step_down_ms": 0}, "step_down_ms must be positive, got 0"),
        ({"step_up_ms": -10}, "step_up_ms must be positive, got -10"),
        ({"run_length": 0}, "run_length must be positive, got 0"),
        ({"run_length": 2.5}, "run_length must be an integer, got 2.5"),
        ({"start_ms": True}, "start_ms must be an integer, got True"),
    ],
)
def test_it_rejects_an_invalid_rule_with_a_clear_error(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        StaircaseRule(**fields)


def test_a_hand_worked_sequence_of_answers_gives_a_hand_worked_exposure_sequence():
    answers = [C, C, C, C, C, C, W, C, C, C, W, W, C]
    # 3 right: 500 -> 470; 3 right: -> 440; wrong: -> 450; 3 right: -> 420;
    # two wrong: -> 430 -> 440.
    expected = [500, 500, 500, 470, 470, 470, 440, 450, 450, 450, 420, 430, 440]
    assert staircase_replay(StaircaseRule(), answers) == expected


def test_a_wrong_answer_throws_away_the_current_run_of_correct_answers():
    answers = [C, C, W, C, C, C, C]
    assert staircase_replay(StaircaseRule(), answers) == [500, 500, 500, 510, 510, 510, 480]


def test_it_resets_the_run_counter_on_a_step_clamped_at_the_floor():
    rule = StaircaseRule(start_ms=100, floor_ms=100)
    state = staircase_start(rule)
    for expected_run in (1, 2):
        state = staircase_step(rule, state, correct=True)
        assert state == StaircaseState(exposure_ms=100, run=expected_run)
    state = staircase_step(rule, state, correct=True)
    assert state == StaircaseState(exposure_ms=100, run=0)


def test_it_resets_the_run_counter_on_a_step_clamped_at_the_ceiling():
    rule = StaircaseRule(start_ms=1000)
    state = staircase_step(rule, staircase_start(rule), correct=True)
    assert state.run == 1
    assert staircase_step(rule, state, correct=False) == StaircaseState(exposure_ms=1000, run=0)


RULES = [
    StaircaseRule(),
    StaircaseRule(run_length=1),
    StaircaseRule(run_length=2, step_down_ms=10, step_up_ms=10, start_ms=150, floor_ms=100),
    # Steps bigger than the whole range: every step lands on a bound.
    StaircaseRule(
        run_length=2, step_down_ms=300, step_up_ms=500, start_ms=120, floor_ms=100, ceiling_ms=150
    ),
    StaircaseRule(
        run_length=4, step_down_ms=70, step_up_ms=30, start_ms=990, floor_ms=980, ceiling_ms=1000
    ),
]


@pytest.mark.parametrize("rule", RULES)
def test_the_staircase_never_leaves_its_bounds_and_resets_its_run_on_every_step(rule):
    rng = np.random.default_rng(20191208)
    for p_correct in (0.05, 0.5, 0.8, 0.97):
        state = staircase_start(rule)
        for correct in rng.random(2000) < p_correct:
            after = staircase_step(rule, state, correct=bool(correct))
            assert rule.floor_ms <= after.exposure_ms <= rule.ceiling_ms
            stepped = not correct or state.run + 1 == rule.run_length
            assert after.run == (0 if stepped else state.run + 1)
            if not stepped:
                assert after.exposure_ms == state.exposure_ms
            state = after


@pytest.mark.parametrize("rule", RULES)
def test_replay_agrees_with_repeated_steps(rule):
    answers = list(np.random.default_rng(7).random(500) < 0.7)
    state = staircase_start(rule)
    shown = []
    for correct in answers:
        shown.append(state.exposure_ms)
        state = staircase_step(rule, state, correct=correct)
    assert staircase_replay(rule, answers) == shown
    assert len(shown) == len(answers)


def test_replaying_no_answers_shows_nothing():
    assert staircase_replay(StaircaseRule(), []) == []


def test_a_state_survives_a_round_trip_through_json():
    state = StaircaseState(exposure_ms=430, run=2)
    assert StaircaseState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


KEYS = "a staircase state needs exactly the keys ['exposure_ms', 'run'], got "


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({"exposure_ms": 430}, KEYS + "['exposure_ms']"),
        ({"exposure_ms": 430, "run": 1, "extra": 0}, KEYS + "['exposure_ms', 'extra', 'run']"),
        ({"exposure_ms": "430", "run": 1}, "exposure_ms must be an integer, got '430'"),
        ({"exposure_ms": 430, "run": -1}, "run must be a non-negative integer, got -1"),
        ([430, 1], KEYS + "list"),
    ],
)
def test_it_refuses_a_malformed_stored_state(stored, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        StaircaseState.from_dict(stored)


def test_it_refuses_to_step_from_a_state_the_rule_cannot_reach():
    rule = StaircaseRule()
    with pytest.raises(ValueError, match="outside"):
        staircase_step(rule, StaircaseState(exposure_ms=1010, run=0), correct=True)
    with pytest.raises(ValueError, match="run length"):
        staircase_step(rule, StaircaseState(exposure_ms=500, run=3), correct=True)
