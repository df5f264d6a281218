"""The database itself keeps a study's invariants, whatever the code above it does."""

import pytest
from django.db import IntegrityError, transaction

from experiments.models import Answer, GenerativeModel, Image, Study
from tests.factories import (
    block_make,
    image_make,
    session_make,
    study_make,
    trial_make,
    user_make,
)

pytestmark = pytest.mark.django_db


def refused(action) -> bool:
    try:
        with transaction.atomic():
            action()
    except IntegrityError:
        return True
    return False


@pytest.fixture
def study():
    return study_make(models=("model-a", "model-b"))


@pytest.fixture
def session(study):
    return session_make(study)


def test_it_rejects_a_second_trial_at_the_same_index_of_a_session(study, session):
    block = block_make(session)
    trial_make(block, image=image_make(study), index=0)
    assert refused(lambda: trial_make(block, image=image_make(study), index=0, position=1))
    assert session.trials.count() == 1


def test_it_rejects_a_second_trial_at_the_same_position_of_a_block(study, session):
    block = block_make(session)
    trial_make(block, image=image_make(study), index=0, position=0)
    assert refused(lambda: trial_make(block, image=image_make(study), index=1, position=0))


def test_it_rejects_a_second_answer_to_the_same_trial(study, session):
    trial = trial_make(block_make(session), image=image_make(study), index=0)
    Answer.objects.create(trial=trial, response="real", correct=True, rt_ms=512.0)
    assert refused(
        lambda: Answer.objects.create(trial=trial, response="fake", correct=False, rt_ms=300.0)
    )
    assert Answer.objects.filter(trial=trial).get().response == "real"


def test_it_rejects_showing_one_image_twice_to_one_rater(study, session):
    image = image_make(study)
    first = block_make(session, index=0)
    second = block_make(session, index=1)
    trial_make(first, image=image, index=0)
    assert refused(lambda: trial_make(second, image=image, index=1, position=0))


def test_it_lets_two_raters_see_the_same_image(study):
    image = image_make(study)
    for _ in range(2):
        trial_make(block_make(session_make(study)), image=image, index=0)
    assert image.trials.count() == 2


def test_it_rejects_a_second_session_for_one_external_id_in_a_study(study):
    session_make(study, external_id="PROLIFIC-123")
    assert refused(lambda: session_make(study, external_id="PROLIFIC-123"))


def test_it_lets_one_worker_take_part_in_two_studies(study):
    other = study_make(owner=study.owner)
    session_make(study, external_id="PROLIFIC-123")
    session_make(other, external_id="PROLIFIC-123")


def test_it_rejects_a_second_block_at_the_same_index(session):
    block_make(session, index=0)
    assert refused(lambda: block_make(session, index=0))


def test_it_rejects_a_fake_image_without_a_model(study):
    image = image_make(study)
    assert refused(lambda: Image.objects.filter(pk=image.pk).update(is_real=False))


def test_it_rejects_a_real_image_that_names_a_model(study):
    image = image_make(study, model=study.models.first())
    assert refused(lambda: Image.objects.filter(pk=image.pk).update(is_real=True))


def test_it_rejects_a_mask_that_names_a_model(study):
    mask = image_make(study, role=Image.Role.MASK)
    assert refused(lambda: Image.objects.filter(pk=mask.pk).update(model=study.models.first()))


def test_it_rejects_the_same_image_content_twice_in_a_study(study):
    image = image_make(study)
    assert refused(
        lambda: Image.objects.create(
            study=study, is_real=True, sha256=image.sha256, width=8, height=8, file="x.png"
        )
    )


def test_it_rejects_two_models_with_one_name_in_a_study(study):
    assert refused(lambda: GenerativeModel.objects.create(study=study, name="model-a"))


def test_it_rejects_a_staircase_that_starts_outside_its_bounds():
    owner = user_make()
    assert refused(lambda: Study.objects.create(owner=owner, name="bad", staircase_start_ms=50))


def test_it_rejects_a_real_fraction_outside_zero_and_one():
    owner = user_make()
    assert refused(lambda: Study.objects.create(owner=owner, name="bad", real_fraction=1.5))


def test_it_rejects_a_negative_reaction_time(study, session):
    trial = trial_make(block_make(session), image=image_make(study), index=0)
    assert refused(
        lambda: Answer.objects.create(trial=trial, response="real", correct=True, rt_ms=-1)
    )
