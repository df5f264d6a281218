"""HYPE_time scores on hand-worked data: block thresholds, rater and model scores."""

import pytest

from hype.science.thresholds import block_threshold, model_time_score, rater_time_score


def test_a_blocks_threshold_is_the_exposure_it_sat_at_most_often():
    assert block_threshold([500, 500, 500, 470, 470, 470, 470, 440]) == 470.0


@pytest.mark.parametrize(
    ("tie_rule", "expected"), [("mean", 485.0), ("lowest", 470.0), ("highest", 500.0)]
)
def test_a_tie_between_modes_is_broken_by_the_tie_rule(tie_rule, expected):
    assert block_threshold([500, 500, 470, 470, 440], tie_rule=tie_rule) == expected


def test_the_default_tie_rule_is_the_mean_of_all_tied_values():
    assert block_threshold([500, 470, 440, 410]) == 455.0


def test_burn_in_drops_the_first_trials_before_taking_the_mode():
    block = [500, 500, 500, 470, 470, 440, 440]
    assert block_threshold(block) == 500.0
    assert block_threshold(block, burn_in=3) == 455.0
    assert block_threshold(block, burn_in=5) == 440.0


@pytest.mark.parametrize(
    ("block", "kwargs", "message"),
    [
        ([], {}, "at least one trial"),
        ([500, 470], {"burn_in": 2}, "drops all"),
        ([500], {"tie_rule": "median"}, "tie_rule"),
        ([500], {"burn_in": -1}, "burn_in"),
    ],
)
def test_it_refuses_a_block_it_cannot_score(block, kwargs, message):
    with pytest.raises(ValueError, match=message):
        block_threshold(block, **kwargs)


def test_a_raters_score_is_the_mean_of_their_block_thresholds():
    blocks = [[500, 470, 470], [500, 500, 530], [400, 410, 410, 420, 420]]
    assert rater_time_score(blocks) == pytest.approx((470 + 500 + 415) / 3)
    assert rater_time_score(blocks, burn_in=1) == pytest.approx((470 + 515 + 415) / 3)


def test_a_models_score_is_the_mean_of_its_rater_scores():
    assert model_time_score([363.0, 240.0, 300.0]) == pytest.approx(301.0)
    with pytest.raises(ValueError, match="need at least one value in rater scores"):
        model_time_score([])
    with pytest.raises(ValueError, match="a rater needs at least one block"):
        rater_time_score([])
