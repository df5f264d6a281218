"""Simulated raters: their psychometric function, its inverse, and the data they produce."""

import numpy as np
import pytest
from scipy import stats

from hype.science.observers import SimulatedObserver, simulate_inf_rater, simulate_time_rater
from hype.science.staircase import StaircaseRule, staircase_replay


def test_at_its_threshold_an_observer_is_halfway_between_guessing_and_its_ceiling():
    observer = SimulatedObserver(threshold_ms=300, lapse=0.02)
    assert observer.p_correct(300) == pytest.approx(0.5 + 0.48 / 2)
    assert observer.p_correct(None) == pytest.approx(0.98)


def test_its_accuracy_rises_with_exposure_from_guessing_towards_its_untimed_accuracy():
    observer = SimulatedObserver(threshold_ms=300, spread_ms=40)
    accuracies = [observer.p_correct(ms) for ms in range(0, 1001, 50)]
    assert all(a < b for a, b in zip(accuracies, accuracies[1:], strict=False))
    assert observer.p_correct(-1e6) == pytest.approx(0.5)
    assert observer.p_correct(1e6) == pytest.approx(observer.p_correct(None))


@pytest.mark.parametrize("p", [0.55, 0.63, 0.74, 0.9, 0.97])
def test_exposure_for_accuracy_inverts_p_correct(p):
    observer = SimulatedObserver(threshold_ms=420, spread_ms=55, lapse=0.02)
    assert observer.p_correct(observer.exposure_for_accuracy(p)) == pytest.approx(p)


def test_the_default_target_sits_a_closed_form_distance_below_the_threshold():
    # 0.5 + 0.48 * logistic(z) = 0.25**(1/3)  =>  z = logit((0.25**(1/3) - 0.5) / 0.48)
    fraction = (0.25 ** (1 / 3) - 0.5) / 0.48
    z = np.log(fraction / (1 - fraction))
    observer = SimulatedObserver(threshold_ms=500, spread_ms=60)
    expected = 500 + 60 * z
    assert observer.exposure_for_accuracy(StaircaseRule().target_accuracy()) == pytest.approx(
        expected
    )
    assert expected == pytest.approx(440.6, abs=0.1)


@pytest.mark.parametrize("p", [0.5, 0.3, 0.98, 0.99])
def test_it_refuses_an_accuracy_the_observer_never_reaches(p):
    with pytest.raises(ValueError, match="never reached"):
        SimulatedObserver(threshold_ms=300, lapse=0.02).exposure_for_accuracy(p)


def test_an_observer_can_be_set_to_be_fooled_a_chosen_share_of_the_time():
    observer = SimulatedObserver.with_inf_error(0.4, threshold_ms=250)
    assert observer.p_correct(None) == pytest.approx(0.6)
    assert observer.p_correct(250) == pytest.approx(0.55)
    assert observer.p_correct(5000) == pytest.approx(0.6)


def test_a_hyper_real_model_makes_longer_exposures_less_accurate():
    observer = SimulatedObserver.with_inf_error(0.6, threshold_ms=250)
    assert observer.p_correct(1000) < observer.p_correct(100) < 0.5
    assert observer.p_correct(observer.exposure_for_accuracy(0.45)) == pytest.approx(0.45)


def test_a_perfect_observer_always_says_what_the_image_is_and_a_fooled_one_never_does():
    rng = np.random.default_rng(0)
    perfect = SimulatedObserver(threshold_ms=100, lapse=0.0)
    fooled = SimulatedObserver.with_inf_error(1.0, threshold_ms=100)
    for is_real in (True, False):
        assert perfect.answer(is_real=is_real, exposure_ms=None, rng=rng) is is_real
        assert fooled.answer(is_real=is_real, exposure_ms=None, rng=rng) is (not is_real)


def test_an_inf_rater_sees_half_real_images_in_random_order_and_errs_at_the_set_rate():
    observer = SimulatedObserver.with_inf_error(0.3, threshold_ms=250)
    rng = np.random.default_rng(1)
    is_real, correct = simulate_inf_rater(observer, trials=100, rng=rng)
    assert is_real.shape == correct.shape == (100,)
    assert is_real.sum() == 50
    assert not (is_real[:50].all() or is_real[50:].all())
    wrong = sum(
        int((~simulate_inf_rater(observer, trials=100, rng=rng)[1]).sum()) for _ in range(200)
    )
    # 20,000 answers at a 30% error: a two-sided binomial test must not reject.
    assert stats.binomtest(wrong, 20_000, 0.3).pvalue > 1e-4


def test_a_time_rater_restarts_every_block_at_the_start_and_follows_the_rule():
    rule = StaircaseRule()
    observer = SimulatedObserver(threshold_ms=300)
    blocks = simulate_time_rater(
        observer, rule, blocks=3, trials_per_block=150, rng=np.random.default_rng(2)
    )
    assert [len(block) for block in blocks] == [150, 150, 150]
    for block in blocks:
        assert block[0] == rule.start_ms
        # Recover the answers from the moves and check the rule reproduces the block.
        steps = np.diff(block)
        assert set(steps) <= {0, -30, 10}
        answers = [step != 10 for step in steps] + [True]
        assert staircase_replay(rule, answers) == block


def test_the_same_seed_gives_the_same_rater():
    observer = SimulatedObserver(threshold_ms=300)
    first = simulate_time_rater(observer, StaircaseRule(), rng=np.random.default_rng(3))
    second = simulate_time_rater(observer, StaircaseRule(), rng=np.random.default_rng(3))
    assert first == second
