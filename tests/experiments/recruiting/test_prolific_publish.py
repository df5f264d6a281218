"""`manage.py prolific_publish STUDY` creates the study on Prolific (a stand-in on 127.0.0.1)
as a draft with the study link, one completion code per outcome, the places, time and reward,
keeps its id, never creates a second one, and says clearly why when it cannot."""

from __future__ import annotations

import io
import socket

import pytest
from django.core.management import CommandError, call_command

from experiments.models import PlatformToken, Study
from tests.factories import study_make
from tests.fakes.prolific import prolific_serving

pytestmark = pytest.mark.django_db

STUDIES = r"^/api/v1/studies/$"
TRANSITION = r"^/api/v1/studies/[^/]+/transition/$"


@pytest.fixture
def prolific(settings):
    with prolific_serving(settings) as fake:
        yield fake


@pytest.fixture
def study():
    return study_make(
        name="Faces at a glance",
        models=("StyleGAN", "ProGAN"),
        raters_per_model=30,
        pay_base_cents=150,
        pay_per_correct_cents=2,
        estimated_minutes=12,
        instructions="Say whether each face is real or generated.",
    )


def publish(*args: str) -> str:
    out = io.StringIO()
    call_command("prolific_publish", *args, stdout=out)
    return out.getvalue()


def test_it_creates_a_draft_with_the_link_the_five_codes_the_places_the_time_and_the_reward(
    prolific, study
):
    text = publish(study.public_id)

    (request,) = prolific.requests_to("POST", STUDIES)
    assert request.headers["Authorization"] == f"Token {prolific.token}"
    assert request.body == {
        "name": "Faces at a glance",
        "internal_name": f"HYPE {study.public_id}",
        "description": "Say whether each face is real or generated. You also earn a bonus of "
        "0.02 USD for each correct answer in the main task, paid after the study.",
        "external_study_url": f"https://hype.example.org/s/{study.public_id}/"
        "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}",
        "prolific_id_option": "url_parameters",
        "completion_codes": [
            {
                "code": study.code_completed,
                "code_type": "COMPLETED",
                "actions": [{"action": "MANUALLY_REVIEW"}],
            },
            {
                "code": study.code_screened_out,
                "code_type": "FAILED_ATTENTION_CHECK",
                "actions": [{"action": "MANUALLY_REVIEW"}],
            },
            {
                "code": study.code_no_consent,
                "code_type": "NO_CONSENT",
                "actions": [{"action": "MANUALLY_REVIEW"}],
            },
            {
                "code": study.code_full,
                "code_type": "OTHER",
                "actions": [{"action": "MANUALLY_REVIEW"}],
            },
            {
                "code": study.code_device,
                "code_type": "INCOMPATIBLE_DEVICE",
                "actions": [{"action": "MANUALLY_REVIEW"}],
            },
        ],
        "total_available_places": 60,
        "estimated_completion_time": 12,
        "reward": 150,
        "device_compatibility": ["desktop"],
    }
    (created,) = prolific.studies.values()
    study.refresh_from_db()
    assert study.prolific_study_id == created["id"]
    assert created["status"] == "UNPUBLISHED"
    assert prolific.requests_to("POST", TRANSITION) == []
    assert f"Created Prolific study {created['id']}" in text
    assert "places     60 (2 models x 30 raters)" in text
    assert "reward     1.50 USD" in text
    assert "Review it on Prolific" in text


def test_the_link_is_made_on_the_address_given_with_url(prolific, study):
    publish(study.public_id, "--url", "https://rate.example.net/")
    (request,) = prolific.requests_to("POST", STUDIES)
    assert request.body["external_study_url"].startswith(
        f"https://rate.example.net/s/{study.public_id}/?PROLIFIC_PID="
    )


def test_publish_also_publishes_the_new_draft(prolific, study):
    text = publish(study.public_id, "--publish")
    (request,) = prolific.requests_to("POST", TRANSITION)
    assert request.body == {"action": "PUBLISH"}
    study.refresh_from_db()
    assert prolific.studies[study.prolific_study_id]["status"] == "ACTIVE"
    assert f"Published Prolific study {study.prolific_study_id}." in text


def test_a_second_publish_is_refused_and_names_the_study_already_on_prolific(prolific, study):
    publish(study.public_id)
    study.refresh_from_db()
    with pytest.raises(CommandError) as error:
        publish(study.public_id)
    assert f"already on Prolific as {study.prolific_study_id}" in str(error.value)
    assert "no second study was created" in str(error.value)
    assert len(prolific.requests_to("POST", STUDIES)) == 1
    assert len(prolific.studies) == 1


def test_publish_on_a_study_with_a_draft_publishes_that_draft_and_creates_nothing(prolific, study):
    publish(study.public_id)
    study.refresh_from_db()
    publish(study.public_id, "--publish")
    assert len(prolific.requests_to("POST", STUDIES)) == 1
    assert prolific.studies[study.prolific_study_id]["status"] == "ACTIVE"


def test_a_study_that_pays_nothing_is_refused_before_anything_is_sent(prolific, study):
    Study.objects.filter(pk=study.pk).update(pay_base_cents=0)
    with pytest.raises(CommandError, match=r"pays nothing \(pay_base_cents is 0\)"):
        publish(study.public_id)
    assert prolific.requests == []


def test_without_a_public_address_it_asks_for_url_or_hype_public_url(prolific, study, settings):
    settings.HYPE_PUBLIC_URL = ""
    with pytest.raises(CommandError, match="give --url https://your.server or set HYPE_PUBLIC_URL"):
        publish(study.public_id)
    assert prolific.requests == []


def test_a_token_prolific_refuses_is_named_by_its_last_four_characters_and_changes_nothing(
    prolific, study, settings
):
    settings.HYPE_PROLIFIC_TOKEN = "a-wrong-secret-token-abcd"
    with pytest.raises(CommandError) as error:
        publish(study.public_id)
    message = str(error.value)
    assert "Prolific refused the API token (…abcd)" in message
    assert "check HYPE_PROLIFIC_TOKEN" in message
    assert "a-wrong-secret" not in message
    study.refresh_from_db()
    assert study.prolific_study_id == ""
    assert prolific.studies == {}


def test_the_token_stored_for_the_researcher_is_used_before_the_setting(prolific, study, settings):
    settings.HYPE_PROLIFIC_TOKEN = "the-setting-token-zzzz"
    PlatformToken.objects.create(owner=study.owner, platform="prolific", token=prolific.token)
    publish(study.public_id)
    (request,) = prolific.requests_to("POST", STUDIES)
    assert request.headers["Authorization"] == f"Token {prolific.token}"


def test_a_refused_stored_token_names_the_researcher_it_is_stored_for(prolific, study):
    PlatformToken.objects.create(owner=study.owner, platform="prolific", token="stale-token-9f9f")
    with pytest.raises(CommandError) as error:
        publish(study.public_id)
    assert "(…9f9f)" in str(error.value)
    assert f"the Prolific token stored for researcher {study.owner.username}" in str(error.value)


def test_without_any_token_it_says_how_to_give_one_and_sends_nothing(prolific, study, settings):
    settings.HYPE_PROLIFIC_TOKEN = ""
    with pytest.raises(CommandError, match="No Prolific API token: store one for researcher"):
        publish(study.public_id)
    assert prolific.requests == []


def test_a_request_prolific_refuses_is_shown_with_what_prolific_said(prolific, study):
    refusal = {"error": {"status": 400, "title": "Bad Request", "detail": {"reward": ["Too low."]}}}
    prolific.fail("POST", STUDIES, status=400, body=refusal)
    with pytest.raises(CommandError, match=r"Prolific refused the request .*reward: Too low\."):
        publish(study.public_id)
    study.refresh_from_db()
    assert study.prolific_study_id == ""


def test_a_failure_of_unknown_outcome_says_to_look_for_the_draft_before_rerunning(prolific, study):
    prolific.fail("POST", STUDIES, status=502)
    with pytest.raises(CommandError) as error:
        publish(study.public_id)
    assert "whether it acted on the request is unknown" in str(error.value)
    assert f"Look on Prolific for a draft named 'HYPE {study.public_id}'" in str(error.value)


def test_prolific_out_of_reach_is_a_clear_error(study, settings):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings.HYPE_PROLIFIC_API_URL = f"http://127.0.0.1:{port}"
    settings.HYPE_PROLIFIC_TOKEN = "some-token-1234"
    settings.HYPE_PUBLIC_URL = "https://hype.example.org"
    with pytest.raises(CommandError, match=r"Could not reach Prolific .*connection refused"):
        publish(study.public_id)


def test_a_prolific_workspace_in_another_currency_keeps_the_draft_unpublished(settings, study):
    with prolific_serving(settings, currency="GBP") as prolific:
        with pytest.raises(CommandError, match="not published"):
            publish(study.public_id, "--publish")
        study.refresh_from_db()
        assert prolific.studies[study.prolific_study_id]["status"] == "UNPUBLISHED"
        assert prolific.requests_to("POST", TRANSITION) == []
