"""manage.py mturk_publish against the MTurk stand-in (tests/fakes/mturk.py): the exact HIT it
asks for, what it stores, and what it refuses, with nothing sent or changed."""

import io
import json
import urllib.error
import urllib.request
from xml.etree import ElementTree

import pytest
from django.core.management import CommandError, call_command

from experiments.models import Study
from experiments.recruiting import mturk as mturk_module
from tests.factories import study_make
from tests.fakes.mturk import CONTENT_TYPE, TARGET_PREFIX, fake_mturk_serving

pytestmark = pytest.mark.django_db

BASE = "https://hype.example.org"
XMLNS = "{http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd}"


@pytest.fixture
def mturk(monkeypatch, settings):
    with fake_mturk_serving(monkeypatch, settings) as fake:
        yield fake


def paid_study(**fields) -> Study:
    values = {
        "models": ("model-a", "model-b"),
        "status": Study.Status.LIVE,
        "raters_per_model": 30,
        "pay_base_cents": 150,
        "pay_per_correct_cents": 2,
        "estimated_minutes": 20,
    }
    values.update(fields)
    return study_make(**values)


def publish(study: Study, *options: str) -> str:
    out = io.StringIO()
    call_command("mturk_publish", study.public_id, *options, stdout=out)
    return out.getvalue()


def test_publishing_asks_mturk_for_one_hit_on_the_study_link_paying_the_base_pay(mturk):
    study = paid_study()
    publish(study, "--url", BASE)

    (qualification,) = mturk.qualification_types.values()
    assert mturk.requests_of("CreateHIT") == [
        {
            "Title": "Real or computer-made? Judge images for a research study",
            "Description": "Look at images and say whether each is a real photograph or made "
            "by a computer. About 20 minutes. Pays 1.50 USD, plus 0.02 USD for each correct "
            "answer. The bonus is sent after approval.",
            "Keywords": "images, photos, research, perception, real or fake",
            "Question": (
                '<ExternalQuestion xmlns="http://mechanicalturk.amazonaws.com/'
                'AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd">'
                f"<ExternalURL>{BASE}/s/{study.public_id}/</ExternalURL>"
                "<FrameHeight>0</FrameHeight></ExternalQuestion>"
            ),
            "Reward": "1.50",
            "MaxAssignments": 60,  # 2 models x 30 raters
            "AssignmentDurationInSeconds": 60 * 60,  # 3 x the 20 minutes raters are told
            "LifetimeInSeconds": 72 * 3600,
            "QualificationRequirements": [
                {
                    "QualificationTypeId": qualification["QualificationTypeId"],
                    "Comparator": "DoesNotExist",
                    "ActionsGuarded": "DiscoverPreviewAndAccept",
                }
            ],
            "RequesterAnnotation": f"hype:{study.public_id}",
            "UniqueRequestToken": f"hype-{study.public_id}-hit",
        }
    ]


def test_the_question_is_an_external_question_whose_url_is_the_study_link(mturk):
    study = paid_study()
    publish(study, "--url", BASE + "/")

    question = ElementTree.fromstring(mturk.requests_of("CreateHIT")[0]["Question"])
    assert question.tag == f"{XMLNS}ExternalQuestion"
    assert question.find(f"{XMLNS}ExternalURL").text == f"{BASE}/s/{study.public_id}/"
    assert question.find(f"{XMLNS}FrameHeight").text == "0"


def test_the_link_comes_from_hype_public_url_when_no_url_is_given(mturk, settings):
    settings.HYPE_PUBLIC_URL = "https://public.example.org"
    study = paid_study()
    publish(study)

    question = mturk.requests_of("CreateHIT")[0]["Question"]
    assert f"https://public.example.org/s/{study.public_id}/" in question


def test_a_short_study_still_gives_workers_half_an_hour_more_than_it_takes(mturk):
    study = paid_study(estimated_minutes=5)
    publish(study, "--url", BASE, "--hours", "12")

    (request,) = mturk.requests_of("CreateHIT")
    assert request["AssignmentDurationInSeconds"] == (5 + 30) * 60
    assert request["LifetimeInSeconds"] == 12 * 3600


def test_the_qualification_is_the_studys_own_and_is_not_granted_automatically(mturk):
    study = paid_study()
    publish(study, "--url", BASE)

    (request,) = mturk.requests_of("CreateQualificationType")
    assert request["Name"] == f"HYPE {study.public_id}: took part"
    assert request["AutoGranted"] is False
    assert request["QualificationTypeStatus"] == "Active"


def test_the_hit_qualification_and_marketplace_are_stored_on_the_study(mturk):
    study = paid_study()
    output = publish(study, "--url", BASE)

    study.refresh_from_db()
    (hit_id,) = mturk.hits
    (qualification_id,) = mturk.qualification_types
    assert (study.mturk_hit_id, study.mturk_qualification_id) == (hit_id, qualification_id)
    assert study.mturk_sandbox is False
    assert f"is HIT {hit_id} on MTurk." in output


def test_a_worker_who_has_the_qualification_cannot_take_the_hit(mturk):
    study = paid_study()
    publish(study, "--url", BASE)
    study.refresh_from_db()
    mturk.worker_qualifications[(study.mturk_qualification_id, "A1TOOKPART")] = 1

    with pytest.raises(Exception, match="does not meet the requirements"):
        mturk.assignment_accept(study.mturk_hit_id, "A1TOOKPART")
    assert mturk.assignment_accept(study.mturk_hit_id, "A1NEWCOMER")["WorkerId"] == "A1NEWCOMER"


def test_a_second_publish_is_refused_and_names_the_hit_the_study_has(mturk):
    study = paid_study()
    publish(study, "--url", BASE)
    study.refresh_from_db()

    with pytest.raises(CommandError, match=f"already has a HIT on MTurk: {study.mturk_hit_id}"):
        publish(study, "--url", BASE)
    assert len(mturk.requests_of("CreateHIT")) == 1
    assert len(mturk.hits) == 1


def test_a_study_paid_in_another_currency_is_refused_and_nothing_is_sent(mturk):
    study = paid_study(currency="GBP")

    with pytest.raises(CommandError, match="MTurk pays in US dollars only.*GBP"):
        publish(study, "--url", BASE)
    assert mturk.requests == []
    study.refresh_from_db()
    assert (study.mturk_hit_id, study.mturk_qualification_id) == ("", "")


def test_a_study_without_base_pay_is_refused(mturk):
    with pytest.raises(CommandError, match="base pay is 0"):
        publish(paid_study(pay_base_cents=0), "--url", BASE)
    assert mturk.requests == []


def test_a_study_that_is_not_open_is_refused(mturk):
    with pytest.raises(CommandError, match="is draft: open it first"):
        publish(paid_study(status=Study.Status.DRAFT), "--url", BASE)
    assert mturk.requests == []


def test_the_marketplace_needs_an_https_link_and_says_so(mturk):
    with pytest.raises(CommandError, match="is not https"):
        publish(paid_study(), "--url", "http://hype.example.org")
    assert mturk.requests == []


def test_without_url_or_hype_public_url_publishing_is_refused(mturk, settings):
    settings.HYPE_PUBLIC_URL = ""
    with pytest.raises(CommandError, match="--url https://your.server or set HYPE_PUBLIC_URL"):
        publish(paid_study())
    assert mturk.requests == []


def test_the_sandbox_flag_publishes_on_the_sandbox_endpoint_and_records_it(mturk, settings):
    settings.HYPE_MTURK_ENDPOINT = "http://127.0.0.1:9"  # the marketplace: never reached
    study = paid_study()
    output = publish(study, "--sandbox", "--url", BASE)

    study.refresh_from_db()
    assert study.mturk_sandbox is True
    assert study.mturk_hit_id in mturk.hits
    assert "on MTurk's sandbox" in output


def test_credentials_mturk_refuses_give_a_clear_error_and_change_nothing(mturk, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSOMEONEELSE")
    study = paid_study()

    with pytest.raises(CommandError, match="MTurk refused the AWS credentials") as raised:
        publish(study, "--url", BASE)
    assert "AWS_ACCESS_KEY_ID" in str(raised.value)
    study.refresh_from_db()
    assert (study.mturk_hit_id, study.mturk_qualification_id) == ("", "")
    assert mturk.qualification_types == {} and mturk.hits == {}


def test_missing_credentials_give_a_clear_error_and_nothing_is_sent(mturk, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    with pytest.raises(CommandError, match="No AWS credentials found"):
        publish(paid_study(), "--url", BASE)
    assert mturk.requests == []


def test_an_mturk_that_cannot_be_reached_gives_a_clear_error(mturk, settings):
    settings.HYPE_MTURK_ENDPOINT = "http://127.0.0.1:9"
    study = paid_study()

    with pytest.raises(CommandError, match="Could not connect to MTurk at http://127.0.0.1:9"):
        publish(study, "--url", BASE)
    study.refresh_from_db()
    assert study.mturk_hit_id == ""


def test_a_publish_whose_answer_was_lost_finds_its_hit_on_the_rerun_and_makes_no_second(
    mturk, monkeypatch
):
    monkeypatch.setattr(mturk_module, "READ_TIMEOUT_S", 0.5)
    mturk.answer_late("CreateHIT", 1.5)
    study = paid_study()

    with pytest.raises(CommandError, match="did not answer.*Run mturk_publish again"):
        publish(study, "--url", BASE)
    study.refresh_from_db()
    assert study.mturk_hit_id == "" and len(mturk.hits) == 1

    output = publish(study, "--url", BASE)
    study.refresh_from_db()
    (hit_id,) = mturk.hits
    assert study.mturk_hit_id == hit_id
    assert "An earlier run had made the HIT" in output
    tokens = [request["UniqueRequestToken"] for request in mturk.requests_of("CreateHIT")]
    assert tokens == [f"hype-{study.public_id}-hit"] * 2
    assert len(mturk.requests_of("CreateQualificationType")) == 1  # the stored one, reused


def test_the_stand_in_refuses_a_request_without_an_authorization_header(mturk):
    request = urllib.request.Request(
        mturk.url,
        data=b"{}",
        headers={"X-Amz-Target": TARGET_PREFIX + "ListHITs", "Content-Type": CONTENT_TYPE},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 403
    assert json.loads(refused.value.read())["__type"] == "MissingAuthenticationTokenException"
