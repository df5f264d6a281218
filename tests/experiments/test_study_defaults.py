"""A new study carries the protocol's defaults (docs/hype-method.md)."""

import pytest

from experiments.models import Image, RaterSession, Study
from tests.factories import image_make, session_make, study_make

pytestmark = pytest.mark.django_db


def test_a_new_study_has_the_papers_protocol_parameters():
    study = study_make()
    assert study.method == Study.Method.TIME
    assert study.status == Study.Status.DRAFT
    assert study.real_fraction == 0.5
    assert study.raters_per_model == 30
    assert (study.qualification_trials, study.qualification_pass) == (100, 0.65)
    assert (study.time_blocks, study.time_trials_per_block) == (3, 150)
    assert (study.staircase_run_length, study.staircase_step_down_ms) == (3, 30)
    assert study.staircase_step_up_ms == 10
    assert (study.staircase_start_ms, study.staircase_floor_ms) == (500, 100)
    assert study.staircase_ceiling_ms == 1000
    assert (study.countdown_step_ms, study.mask_count, study.mask_ms) == (500, 4, 30)
    assert (study.threshold_burn_in, study.threshold_tie_rule) == (0, "mean")
    assert study.inf_trials == 100
    assert (study.bootstrap_resamples, study.confidence, study.bootstrap_seed) == (10_000, 0.95, 0)


def test_a_rater_sees_qualification_plus_task_trials():
    assert study_make().trials_per_rater == 100 + 3 * 150
    assert study_make(method=Study.Method.INF).trials_per_rater == 100 + 100


def test_an_image_is_stored_under_a_name_that_says_nothing_about_it():
    study = study_make()
    fake = image_make(study, model=study.models.first())
    real = image_make(study)
    for image in (fake, real):
        stored = image.file.name
        assert image.public_id in stored
        assert "model" not in stored and "real" not in stored and "fake" not in stored
        assert "source" not in stored
    assert len({fake.public_id, real.public_id}) == 2
    assert Image.objects.count() == 2


def test_every_session_gets_its_own_pseudonym_resume_token_and_completion_code():
    study = study_make()
    a, b = session_make(study), session_make(study)
    assert a.public_id != b.public_id and a.resume_token != b.resume_token
    assert a.public_id != a.external_id
    assert a.status == RaterSession.Status.CONSENTED
    assert len(a.completion_code) == 8


def test_public_ids_never_start_like_a_command_line_option():
    from experiments.models import public_token

    tokens = [public_token() for _ in range(5000)]
    assert all(t[0].isalnum() for t in tokens)
    assert len(set(tokens)) == len(tokens) and all(len(t) >= 21 for t in tokens)
