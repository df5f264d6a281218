"""The rater's pages over HTTP: the study link, consent, the task page and the finish page."""

import pytest
from django.test import Client

from experiments.models import RaterSession, Study
from experiments.rating.lifecycle import rater_session_key
from tests.factories import session_make, study_make
from tests.raters import MTURK_WORKER

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    return study_make(status=Study.Status.LIVE, models=("model-a", "model-b"))


def test_the_study_link_explains_the_task_without_naming_the_study_or_models(client, study):
    page = client.get(f"/s/{study.public_id}/").content.decode()
    assert "Half of the images are real" in page
    assert '<kbd class="key">F</kbd><span>fake</span>' in page
    assert '<kbd class="key">J</kbd><span>real</span>' in page
    assert "practice round" in page
    assert study.name not in page and "model-a" not in page and "model-b" not in page


def test_an_unknown_study_link_is_not_found(client):
    assert client.get("/s/no-such-study/").status_code == 404


def test_a_closed_study_says_so_on_its_link(client, study):
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    assert b"not open" in client.get(f"/s/{study.public_id}/").content


def test_starting_without_consent_is_refused_and_creates_nothing(client, study):
    response = client.post(f"/s/{study.public_id}/start", {})
    assert response.status_code == 400
    assert RaterSession.objects.count() == 0


def test_a_prolific_link_carries_the_worker_id_into_the_session(client, study):
    params = {"PROLIFIC_PID": "5f1a", "STUDY_ID": "s1", "SESSION_ID": "x9"}
    landing = client.get(f"/s/{study.public_id}/", params).content.decode()
    assert 'name="PROLIFIC_PID" value="5f1a"' in landing
    response = client.post(f"/s/{study.public_id}/start", {"consent": "on", **params})
    assert response.status_code == 302 and response["Location"].endswith("/task")
    session = RaterSession.objects.get()
    assert (session.external_id, session.source) == ("5f1a", RaterSession.Source.PROLIFIC)
    assert client.session[rater_session_key(study.public_id)] == session.id


def test_a_returning_worker_resumes_their_session_instead_of_starting_a_second(study):
    for _ in range(2):
        Client().post(f"/s/{study.public_id}/start", {"consent": "on", **MTURK_WORKER})
    session = RaterSession.objects.get()
    assert session.source == RaterSession.Source.MTURK


def test_a_plain_link_rater_who_consents_twice_keeps_one_session(client, study):
    client.post(f"/s/{study.public_id}/start", {"consent": "on"})
    client.post(f"/s/{study.public_id}/start", {"consent": "on"})
    assert RaterSession.objects.count() == 1
    assert RaterSession.objects.get().external_id.startswith("link-")


def test_the_task_page_sends_a_visitor_without_a_session_to_the_study_link(client, study):
    response = client.get(f"/s/{study.public_id}/task")
    assert response.status_code == 302 and response["Location"] == f"/s/{study.public_id}/"


def test_the_task_page_gives_the_browser_its_socket_and_nothing_else(client, study):
    client.post(f"/s/{study.public_id}/start", {"consent": "on"})
    page = client.get(f"/s/{study.public_id}/task").content.decode()
    assert f'"ws_url": "/ws/rate/{study.public_id}/"' in page
    assert "js/rater.js" in page
    assert "model-a" not in page


def test_the_finish_page_shows_the_completion_code_only_when_completed(client, study):
    client.post(f"/s/{study.public_id}/start", {"consent": "on"})
    session = RaterSession.objects.get()
    assert session.completion_code not in client.get(f"/s/{study.public_id}/done").content.decode()
    session.status = RaterSession.Status.COMPLETED
    session.save()
    assert session.completion_code in client.get(f"/s/{study.public_id}/done").content.decode()
    session.status = RaterSession.Status.FAILED_QUALIFICATION
    session.save()
    page = client.get(f"/s/{study.public_id}/done").content.decode()
    assert session.completion_code not in page and "practice round" in page


def test_a_rater_of_one_study_has_no_session_in_another(client, study):
    other = study_make(status=Study.Status.LIVE, owner=study.owner)
    session_make(other)
    client.post(f"/s/{study.public_id}/start", {"consent": "on"})
    assert client.get(f"/s/{other.public_id}/task").status_code == 302


@pytest.mark.parametrize(
    ("feedback", "qualification_trials", "says"),
    [
        ("every_trial", 100, "After each answer you are told whether it was correct."),
        ("qualification", 100, "In the practice round you are told after\n    each answer"),
        ("qualification", 0, "You are not told whether your answers are correct."),
        ("none", 100, "You are not told whether your answers are correct."),
    ],
)
def test_the_landing_page_says_truthfully_when_feedback_is_given(
    client, feedback, qualification_trials, says
):
    study = study_make(
        status=Study.Status.LIVE, feedback=feedback, qualification_trials=qualification_trials
    )
    page = client.get(f"/s/{study.public_id}/").content.decode()
    note = page[page.index('id="feedback-note"') :].split("</li>")[0]
    assert says in note
