"""How raters arrive from Prolific, MTurk and a plain link: the platforms' ids are read and
stored, a bad parameter gets a clear page and creates nothing, MTurk's preview creates nothing,
a worker who finished sees their code again, and the rater pages may be framed by MTurk's
worker sites only."""

import io

import pytest
from django.test import Client
from PIL import Image as PILImage

from experiments.models import RaterSession, Study
from experiments.recruiting.arrival import ArrivalRefused, arrival_read
from tests.factories import session_make, study_make
from tests.raters import MTURK_WORKER

pytestmark = pytest.mark.django_db

PROLIFIC = {"PROLIFIC_PID": "5f1e2d3c4b5a69788796a5b4", "STUDY_ID": "65aa11", "SESSION_ID": "s1"}


@pytest.fixture
def study():
    return study_make(status=Study.Status.LIVE)


def start(study, **params):
    return Client().post(f"/s/{study.public_id}/start", {"consent": "on", **params})


def test_a_prolific_link_gives_the_participant_and_the_studys_and_sessions_ids():
    arrival = arrival_read(PROLIFIC)
    assert (arrival.source, arrival.external_id) == ("prolific", PROLIFIC["PROLIFIC_PID"])
    assert (arrival.platform_study_id, arrival.platform_session_id) == ("65aa11", "s1")
    assert arrival.passed_on() == list(PROLIFIC.items())


def test_an_mturk_link_gives_the_worker_the_hit_the_assignment_and_the_worker_site():
    arrival = arrival_read({**MTURK_WORKER, "turkSubmitTo": "https://workersandbox.mturk.com/"})
    assert (arrival.source, arrival.external_id) == ("mturk", "A1WORKER")
    assert (arrival.platform_study_id, arrival.platform_session_id) == ("3HIT", "3ASSIGNMENT")
    assert arrival.submit_to == "https://workersandbox.mturk.com"
    assert not arrival.preview


def test_mturks_preview_is_a_preview_and_names_no_worker():
    arrival = arrival_read({"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "3HIT"})
    assert arrival.preview and arrival.external_id == ""


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"PROLIFIC_PID": "x" * 65}, "PROLIFIC_PID is not a platform id"),
        ({"PROLIFIC_PID": "5f1e<script>"}, "PROLIFIC_PID is not a platform id"),
        ({**PROLIFIC, "SESSION_ID": "s 1"}, "SESSION_ID is not a platform id"),
        ({"workerId": "A1", "assignmentId": "3A\u00e9"}, "assignmentId is not a platform id"),
        ({"workerId": "A1", "turkSubmitTo": "https://www.mturk.com"}, "both the workerId"),
        ({"workerId": "A1", "assignmentId": "3A"}, "needs turkSubmitTo"),
        ({**MTURK_WORKER, "turkSubmitTo": "https://evil.example"}, "not one of MTurk's"),
        ({**MTURK_WORKER, "turkSubmitTo": "https://www.mturk.com.evil.example"}, "not one of"),
        ({**MTURK_WORKER, "turkSubmitTo": "https://user@www.mturk.com"}, "not one of"),
        ({**MTURK_WORKER, "turkSubmitTo": "https://www.mturk.com/elsewhere"}, "not one of"),
        ({**MTURK_WORKER, "turkSubmitTo": "javascript:alert(1)"}, "not one of"),
        ({**PROLIFIC, **MTURK_WORKER}, "both a Prolific participant and an MTurk worker"),
        ({"external_id": "x" * 201}, "longer than 200"),
        ({"external_id": "rater\x00one"}, "control character"),
        ({"external_id": "rater\none"}, "control character"),
        ({"external_id": "rater\ud800"}, "control character"),
    ],
)
def test_a_bad_platform_parameter_is_refused_with_its_reason(params, says):
    with pytest.raises(ArrivalRefused, match=says):
        arrival_read(params)


@pytest.mark.parametrize(
    "params",
    [
        {"PROLIFIC_PID": "x" * 300, "STUDY_ID": "a", "SESSION_ID": "b"},
        {**MTURK_WORKER, "turkSubmitTo": "https://evil.example"},
        {"workerId": "A1\x00", "assignmentId": "3A", "turkSubmitTo": "https://www.mturk.com"},
        {"external_id": "demo\x00-1"},
        {"external_id": "demo\x1b[31m"},
    ],
)
def test_a_link_with_a_bad_parameter_gets_a_clear_page_and_creates_nothing(study, params):
    landing = Client().get(f"/s/{study.public_id}/", params)
    assert landing.status_code == 400
    assert b"This link is not valid" in landing.content
    started = start(study, **params)
    assert started.status_code == 400
    assert RaterSession.objects.count() == 0


def test_a_plain_links_own_id_may_be_any_printable_text(study):
    assert start(study, external_id="Ærøskøbing №7 🙂").status_code == 302
    assert RaterSession.objects.get().external_id == "Ærøskøbing №7 🙂"


def test_the_platforms_ids_are_stored_on_the_session(study):
    assert start(study, **PROLIFIC).status_code == 302
    session = RaterSession.objects.get()
    assert (session.source, session.external_id) == ("prolific", PROLIFIC["PROLIFIC_PID"])
    assert (session.platform_study_id, session.platform_session_id) == ("65aa11", "s1")
    session.delete()
    assert start(study, **MTURK_WORKER).status_code == 302
    session = RaterSession.objects.get()
    assert (session.platform_study_id, session.platform_session_id) == ("3HIT", "3ASSIGNMENT")
    assert session.submit_to == "https://workersandbox.mturk.com"


def test_a_worker_who_accepts_again_continues_with_the_latest_assignment(study):
    browser = Client()
    browser.post(f"/s/{study.public_id}/start", {"consent": "on", **MTURK_WORKER})
    browser.post(
        f"/s/{study.public_id}/start",
        {"consent": "on", **MTURK_WORKER, "assignmentId": "3SECOND"},
    )
    session = RaterSession.objects.get()
    assert session.platform_session_id == "3SECOND"


def test_a_worker_who_finished_sees_their_code_again_and_never_gets_a_second_session(study):
    session = session_make(
        study,
        external_id="A1WORKER",
        source=RaterSession.Source.MTURK,
        status=RaterSession.Status.COMPLETED,
        platform_session_id="3ASSIGNMENT",
        submit_to="https://workersandbox.mturk.com",
    )
    # From another browser, with MTurk's own assignment id: the worker's own session.
    client = Client()
    client.post(f"/s/{study.public_id}/start", {"consent": "on", **MTURK_WORKER})
    done = client.get(f"/s/{study.public_id}/done").content.decode()
    assert session.completion_code in done
    # A new assignment from a new browser is not proof of being that worker: no code.
    other = Client()
    refused = other.post(
        f"/s/{study.public_id}/start", {"consent": "on", **MTURK_WORKER, "assignmentId": "3NEW"}
    )
    assert refused.status_code == 409
    assert session.completion_code not in refused.content.decode()
    session.refresh_from_db()
    assert session.platform_session_id == "3ASSIGNMENT"  # an ended session keeps its ids
    assert RaterSession.objects.count() == 1


def test_mturks_preview_shows_the_task_and_creates_nothing(study):
    study.instructions = "Look closely at the eyes."
    study.save()
    response = Client().get(
        f"/s/{study.public_id}/", {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "3H"}
    )
    page = response.content.decode()
    assert response.status_code == 200 and "Accept the HIT to start" in page
    assert "Look closely at the eyes." in page
    assert "<form" not in page and "<button" not in page
    assert RaterSession.objects.count() == 0


def test_the_landing_page_says_what_the_study_asks_pays_and_stores(study):
    study.instructions = "Look at each face."
    study.estimated_minutes = 12
    study.pay_base_cents = 150
    study.pay_per_correct_cents = 2
    study.currency = "GBP"
    study.contact = "lab@example.org"
    study.save()
    page = Client().get(f"/s/{study.public_id}/", PROLIFIC).content.decode()
    assert "Look at each face." in page and "12 minutes" in page
    assert "1.50 GBP, plus 0.02 GBP for each correct answer" in page
    assert "lab@example.org" in page
    # The default consent says what is stored, the worker id among it; nothing "anonymous".
    assert "my worker id is stored too" in page and "anonymously" not in page
    assert 'name="decline"' in page
    study.consent_text = "I agree to the lab's terms."
    study.save()
    assert (
        "I agree to the lab&#x27;s terms."
        in Client().get(f"/s/{study.public_id}/").content.decode()
    )


def test_a_plain_link_offers_no_decline_button(study):
    assert b'name="decline"' not in Client().get(f"/s/{study.public_id}/").content


def test_an_mturk_worker_who_declines_is_asked_to_return_the_hit_and_nothing_is_stored(study):
    response = Client().post(f"/s/{study.public_id}/start", {**MTURK_WORKER, "decline": "1"})
    assert b"Please return the HIT" in response.content
    assert RaterSession.objects.count() == 0


def test_a_link_rater_who_arrives_when_every_model_is_full_is_told_so(study):
    Study.objects.filter(pk=study.pk).update(raters_per_model=1)
    session_make(study, model=study.models.get(), status=RaterSession.Status.COMPLETED)
    page = Client().get(f"/s/{study.public_id}/")
    assert b"This study is full" in page.content
    assert start(study).status_code == 200
    assert RaterSession.objects.count() == 1


def test_the_rater_pages_may_be_framed_by_mturks_worker_sites_and_no_one_else(study, client):
    landing = Client().get(f"/s/{study.public_id}/")
    assert "X-Frame-Options" not in landing
    assert landing["Content-Security-Policy"] == (
        "frame-ancestors https://www.mturk.com https://workersandbox.mturk.com"
    )
    client.force_login(study.owner)
    dashboard = client.get(f"/studies/{study.public_id}/")
    assert dashboard["X-Frame-Options"] == "DENY"
    assert Client().get("/accounts/login/")["X-Frame-Options"] == "DENY"


def test_the_previews_example_is_any_task_image_with_equal_chance_and_the_same_length(study):
    # Asked for often, an example that favoured reals (or fakes) would tell them apart by how
    # often each comes up; and its length must be the served one of every task image.
    from tests.factories import image_make

    model = study.models.get()
    reals = [image_make(study) for _ in range(2)]
    fake = image_make(study, model=model)
    with fake.file.open("rb") as handle:
        fake_pixels = PILImage.open(handle).convert("RGB").tobytes()
    draws, fakes, lengths = 600, 0, set()
    for _ in range(draws):
        response = Client().get(f"/s/{study.public_id}/example")
        lengths.add(len(response.content))
        shown = PILImage.open(io.BytesIO(response.content)).convert("RGB").tobytes()
        fakes += shown == fake_pixels
    assert len(lengths) == 1 and len(reals) == 2
    # Each of the 3 images is equally likely: the fake comes up 200 times in 600, give or
    # take 4 SDs (46); an example drawn half from reals and half from fakes would give 300.
    assert abs(fakes - draws / 3) <= 46, fakes
