"""HYPE_inf scores on hand-worked data: the pooled error and the fake and real errors."""

import math
import re

import numpy as np
import pytest

from hype.science.error_rates import inf_score


def test_inf_error_counts_each_kind_of_mistake_on_a_hand_counted_example():
    # 4 reals (1 called fake) and 6 fakes (3 called real): 4 wrong out of 10.
    is_real = [True, True, True, True, False, False, False, False, False, False]
    correct = [True, False, True, True, False, True, False, True, False, True]
    score = inf_score(is_real=is_real, correct=correct)
    assert score.error == pytest.approx(0.4)
    assert score.real_error == pytest.approx(1 / 4)
    assert score.fake_error == pytest.approx(3 / 6)
    assert (score.n_trials, score.n_real, score.n_fake) == (10, 4, 6)


def test_on_balanced_data_the_inf_error_is_the_mean_of_the_fake_and_real_errors():
    # The paper's CelebA-64 StyleGAN-trunc: fake error 62.2%, real error 39.3%, HYPE_inf 50.7%.
    is_real = np.repeat([False, True], 1000)
    correct = np.ones(2000, dtype=bool)
    correct[:622] = False
    correct[1000:1393] = False
    score = inf_score(is_real=is_real, correct=correct)
    assert score.fake_error == pytest.approx(0.622)
    assert score.real_error == pytest.approx(0.393)
    assert score.error == pytest.approx((0.622 + 0.393) / 2)
    assert round(100 * score.error, 1) == 50.7


def test_without_fakes_the_fake_error_is_undefined_not_zero():
    score = inf_score(is_real=[True, True], correct=[True, False])
    assert math.isnan(score.fake_error)
    assert score.real_error == 0.5


@pytest.mark.parametrize(
    ("is_real", "correct", "message"),
    [
        ([], [], "HYPE_inf needs at least one answered trial"),
        ([True], [True, False], "must be 1-D and the same length, got shapes (1,) and (2,)"),
        ([[True]], [[True]], "must be 1-D and the same length, got shapes (1, 1) and (1, 1)"),
    ],
)
def test_it_refuses_inf_answers_it_cannot_score(is_real, correct, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        inf_score(is_real=is_real, correct=correct)
