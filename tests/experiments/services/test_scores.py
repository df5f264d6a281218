"""Study scores from stored answers match hand-worked numbers and hype.science's bootstrap."""

import hashlib

import pytest

from experiments.models import Answer, Block, RaterSession, Study
from experiments.services.scores import model_seed, study_results
from hype.science.bootstrap import bootstrap_mean, bootstrap_pooled_rate
from tests.factories import answered_session_make as rater
from tests.factories import block_make, image_make, study_make, trial_make

pytestmark = pytest.mark.django_db


def timed(*exposures):
    return [(ms, True, True) for ms in exposures]


@pytest.fixture
def time_study():
    study = study_make(models=("A", "B"), method=Study.Method.TIME)
    a, b = study.models.get(name="A"), study.models.get(name="B")
    rater(study, a, [timed(500, 500, 470, 470), timed(500, 510, 520, 520)])  # 485, 520
    rater(study, a, [timed(500, 500, 500, 470), timed(500, 470, 470, 440)])  # 500, 470
    rater(study, b, [timed(500, 490, 480, 480), timed(500, 500, 490, 490)])  # 480, 495
    rater(study, b, [timed(400, 400, 400, 410), timed(420, 420, 430, 430)])  # 400, 425
    rater(study, b, [timed(900, 900)], status=RaterSession.Status.IN_TASK)  # not counted
    return study


def test_hype_time_scores_are_the_mean_of_rater_means_of_block_modes(time_study):
    results = study_results(time_study)
    a, b = results.models
    assert (a.name, b.name) == ("A", "B")
    assert a.rater_scores == (502.5, 485.0)
    assert b.rater_scores == (487.5, 412.5)
    assert a.score.estimate == pytest.approx(493.75)
    assert b.score.estimate == pytest.approx(450.0)
    assert (a.n_raters, b.n_raters, b.n_in_progress) == (2, 2, 1)
    assert results.unit == "ms" and results.comparison.test == "t-test"


def test_hype_time_intervals_are_hype_sciences_bootstrap_with_the_studys_seed(time_study):
    # Not the defaults, so a service that ignored the study's settings would differ.
    Study.objects.filter(pk=time_study.pk).update(
        bootstrap_seed=7, bootstrap_resamples=2000, confidence=0.9
    )
    time_study.refresh_from_db()
    results = study_results(time_study)
    rater_scores = {"A": (502.5, 485.0), "B": (487.5, 412.5)}
    assert [m.name for m in results.models] == list(rater_scores)
    for result in results.models:
        # The documented rule for a model's stream (hype.science.bootstrap), worked out here
        # rather than asked of the service.
        digest = hashlib.blake2b(f"7:{result.name}".encode(), digest_size=4).digest()
        expected = bootstrap_mean(
            rater_scores[result.name],
            resamples=2000,
            confidence=0.9,
            seed=int.from_bytes(digest, "big"),
        )
        assert result.score == expected
    assert study_results(time_study) == results  # same data, same intervals


def test_qualification_answers_do_not_count_towards_the_score(time_study):
    a = time_study.models.get(name="A")
    session = rater(time_study, a, [timed(500, 500)], kind=Block.Kind.QUALIFICATION)
    block = block_make(session, index=1)
    image = image_make(time_study)
    trial = trial_make(block, image=image, index=2, position=0)
    trial.requested_ms = 300
    trial.save()
    Answer.objects.create(trial=trial, response="real", correct=True, rt_ms=1)
    assert study_results(time_study).models[0].rater_scores == (502.5, 485.0, 300.0)


def test_hype_inf_pools_errors_and_reports_fake_and_real_errors():
    study = study_make(models=("A", "B"), method=Study.Method.INF)
    a, b = study.models.get(name="A"), study.models.get(name="B")
    # (None, is_real, correct): rater 1 is wrong on one real and one fake, rater 2 on a fake.
    rater(
        study,
        a,
        [[(None, True, True), (None, True, False), (None, False, True), (None, False, False)]],
    )
    rater(
        study,
        a,
        [[(None, True, True), (None, True, True), (None, False, False), (None, False, True)]],
    )
    rater(study, b, [[(None, True, True), (None, False, True)]])
    results = study_results(study)
    model_a, model_b = results.models
    assert model_a.score.estimate == pytest.approx(3 / 8)
    assert model_a.inf.fake_error == pytest.approx(2 / 4)
    assert model_a.inf.real_error == pytest.approx(1 / 4)
    assert model_a.inf.error == pytest.approx((0.5 + 0.25) / 2)
    assert model_a.rater_scores == (0.5, 0.25)
    assert model_a.score == bootstrap_pooled_rate(
        [2, 1], [4, 4], resamples=10_000, seed=model_seed(study, "A")
    )
    assert model_b.score.estimate == 0.0 and model_b.n_raters == 1
    assert results.comparison is None  # B has a single rater: nothing to test yet
    assert results.unit == "error"


def test_a_study_without_completed_raters_has_no_scores_yet():
    study = study_make(models=("A",))
    result = study_results(study).models[0]
    assert result.score is None and result.n_raters == 0
