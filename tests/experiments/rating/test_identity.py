"""Who may continue a session: the browser that holds it, or a crowd platform's id together
with that platform's own session id. Another rater's external id, PROLIFIC_PID or workerId
posted from another browser never shows their trial, their progress or their code; one
browser holds one session per study, and one per exclusive group of studies."""

import json

import pytest
from asgiref.sync import async_to_sync
from django.db import IntegrityError, transaction
from django.test import Client

from experiments.models import RaterSession, Study, StudyGroup
from tests.raters import MTURK_WORKER, RaterSocket, join, live_study_make

pytestmark = pytest.mark.django_db(transaction=True)

PROLIFIC = {"PROLIFIC_PID": "5f1e2d3c4b5a69788796a5b4", "STUDY_ID": "65aa11", "SESSION_ID": "s1"}


def start(client: Client, study: Study, **params):
    return client.post(f"/s/{study.public_id}/start", {"consent": "on", **params})


@async_to_sync
async def first_trial(study: Study, client: Client) -> dict | None:
    """The trial message the browser gets over the socket, or None if it is refused (the
    server then says no_session and closes it with 4401, and tells it nothing else)."""
    socket = RaterSocket(study, client)
    connected, _ = await socket.open()
    assert connected
    if not await socket.communicator.receive_nothing(timeout=0.5):
        # A socket of ours hears nothing before its hello; a refused one is told at once.
        refused = json.loads((await socket.communicator.receive_output(timeout=10))["text"])
        assert refused["code"] == "no_session"
        assert (await socket.communicator.receive_output(timeout=10))["code"] == 4401
        return None
    hello = await socket.hello()
    trial = await socket.until("trial", "finished", "error")
    await socket.close()
    return {"hello": hello, "trial": trial}


def nothing_of(victim: RaterSession, client: Client, response) -> None:
    """The intruder's browser was shown nothing of the victim's session and can fetch none."""
    study = victim.study
    page = response.content.decode()
    trial_ids = list(victim.trials.values_list("public_id", flat=True))
    assert victim.completion_code not in page
    assert victim.public_id not in page and all(t not in page for t in trial_ids)
    # No session in this browser: the task and done pages send it to the landing page, the
    # socket refuses it, and the victim's current image is not its to fetch.
    assert client.get(f"/s/{study.public_id}/task")["Location"] == f"/s/{study.public_id}/"
    assert client.get(f"/s/{study.public_id}/done")["Location"] == f"/s/{study.public_id}/"
    assert first_trial(study, client) is None
    for trial_id in trial_ids:
        assert client.get(f"/rate/image/{trial_id}").status_code == 404


@pytest.fixture
def study():
    return live_study_make(
        real=40, fakes_per_model=40, qualification_trials=4, inf_trials=6, method=Study.Method.INF
    )


@pytest.mark.parametrize(
    ("label", "victim_params", "intruder_params"),
    [
        ("a link's external id", {"external_id": "demo-0002"}, {"external_id": "demo-0002"}),
        ("a PROLIFIC_PID alone", PROLIFIC, {"PROLIFIC_PID": PROLIFIC["PROLIFIC_PID"]}),
        ("a PROLIFIC_PID, another SESSION_ID", PROLIFIC, {**PROLIFIC, "SESSION_ID": "s2"}),
        ("a workerId, another assignment", MTURK_WORKER, {**MTURK_WORKER, "assignmentId": "3B"}),
    ],
)
def test_another_raters_id_from_another_browser_shows_nothing_of_their_session(
    study, label, victim_params, intruder_params
):
    victim_browser = Client()
    assert start(victim_browser, study, **victim_params).status_code == 302
    played = first_trial(study, victim_browser)
    assert played["trial"]["type"] == "trial"
    victim = RaterSession.objects.get()

    intruder = Client()
    response = start(intruder, study, **intruder_params)
    assert response.status_code == 409, label
    assert "another browser" in response.content.decode() or "used" in response.content.decode()
    nothing_of(victim, intruder, response)
    # The landing page from that browser says the same, and shows no consent form.
    landing = intruder.get(f"/s/{study.public_id}/", intruder_params)
    assert landing.status_code == 409 and b'name="consent"' not in landing.content
    assert RaterSession.objects.count() == 1


def test_a_finished_raters_code_is_never_shown_to_another_browser(study):
    victim_browser = Client()
    start(victim_browser, study, external_id="demo-0002")
    victim = RaterSession.objects.get()
    RaterSession.objects.filter(pk=victim.pk).update(status=RaterSession.Status.COMPLETED)
    assert (
        victim.completion_code in victim_browser.get(f"/s/{study.public_id}/done").content.decode()
    )
    intruder = Client()
    nothing_of(victim, intruder, start(intruder, study, external_id="demo-0002"))


def test_a_prolific_participant_continues_in_a_new_browser_with_their_session_id(study):
    first = Client()
    start(first, study, **PROLIFIC)
    before = first_trial(study, first)["trial"]
    second = Client()
    assert start(second, study, **PROLIFIC)["Location"] == f"/s/{study.public_id}/task"
    after = first_trial(study, second)
    assert after["trial"]["trial"] == before["trial"]  # the same session, where it was
    assert RaterSession.objects.count() == 1


def test_an_mturk_worker_continues_in_a_new_browser_with_their_assignment(study):
    start(Client(), study, **MTURK_WORKER)
    second = Client()
    assert start(second, study, **MTURK_WORKER).status_code == 302
    assert first_trial(study, second)["trial"]["type"] == "trial"


def test_one_browser_cannot_hold_two_sessions_in_one_study(study):
    browser = Client()
    assert start(browser, study, external_id="me").status_code == 302
    refused = start(browser, study, external_id="someone-else")
    assert refused.status_code == 409
    assert b"already taken part in this study" in refused.content
    refused = start(browser, study, **PROLIFIC)
    assert refused.status_code == 409
    # The same link again continues the same session.
    assert start(browser, study).status_code == 302
    assert start(browser, study, external_id="me").status_code == 302
    assert RaterSession.objects.count() == 1


def test_the_database_refuses_a_second_session_of_one_browser_in_a_study(study):
    RaterSession.objects.create(study=study, external_id="a", browser_id="browser-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        RaterSession.objects.create(study=study, external_id="b", browser_id="browser-1")
    # Sessions made without a browser (imports, tests) are not constrained.
    RaterSession.objects.create(study=study, external_id="c")
    RaterSession.objects.create(study=study, external_id="d")


def second_study(study: Study) -> Study:
    """Another study of the same researcher, small and untimed."""
    return live_study_make(
        real=40,
        fakes_per_model=40,
        qualification_trials=4,
        inf_trials=6,
        method=Study.Method.INF,
        owner=study.owner,
    )


def test_one_browser_or_one_id_cannot_take_part_in_two_studies_of_an_exclusive_group(study):
    group = StudyGroup.objects.create(owner=study.owner, name="Faces 2026")
    other = second_study(study)
    Study.objects.filter(pk__in=[study.pk, other.pk]).update(group=group)

    browser = Client()
    assert start(browser, study).status_code == 302
    refused = start(browser, other)
    page = refused.content.decode()
    assert "already taken part in a related study" in page
    assert 'name="consent"' not in browser.get(f"/s/{other.public_id}/").content.decode()

    # The same Prolific participant from a fresh browser is refused too, and told to return
    # the submission; no code is given.
    start(Client(), study, **PROLIFIC)
    refused = start(Client(), other, **{**PROLIFIC, "SESSION_ID": "s9", "STUDY_ID": "66bb"})
    page = refused.content.decode()
    assert "already taken part in a related study" in page
    assert "return your submission on Prolific" in page
    assert other.code_completed not in page and other.code_screened_out not in page
    assert RaterSession.objects.filter(study=other).count() == 0

    # Outside the group, the same browser may take part.
    Study.objects.filter(pk=other.pk).update(group=None)
    assert start(browser, other).status_code == 302


def test_a_pool_group_lets_the_same_rater_take_part_in_each_study(study):
    group = StudyGroup.objects.create(owner=study.owner, name="Retainer", kind=StudyGroup.Kind.POOL)
    other = second_study(study)
    Study.objects.filter(pk__in=[study.pk, other.pk]).update(group=group)
    browser = Client()
    assert start(browser, study).status_code == 302
    assert start(browser, other).status_code == 302
    assert RaterSession.objects.count() == 2


def test_join_helper_still_works_for_many_raters(study):
    # Each join is its own browser: many raters, one session each.
    for n in range(3):
        join(study, external_id=f"r{n}")
    assert RaterSession.objects.count() == 3
