"""`manage.py prolific_sync STUDY [--approve]` reads every submission of the study on Prolific
(a stand-in on 127.0.0.1): sessions still in progress here whose submission was returned or
timed out become abandoned, completed ones are never touched, and --approve approves each
completed rater once, its base pay recorded before and after."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from experiments.models import Answer, Payment, RaterSession
from experiments.recruiting import prolific as prolific_module
from tests.factories import answered_session_make, session_make, study_make
from tests.fakes.prolific import object_id, prolific_serving

pytestmark = pytest.mark.django_db

Status = RaterSession.Status
APPROVALS = r"^/api/v1/submissions/[^/]+/transition/$"


@pytest.fixture
def prolific(settings):
    with prolific_serving(settings) as fake:
        yield fake


@pytest.fixture
def study(prolific):
    on_prolific = prolific.study_add(name="Faces", status="ACTIVE")
    return study_make(
        name="Faces",
        pay_base_cents=150,
        currency="USD",
        prolific_study_id=on_prolific["id"],
    )


def rater(study, prolific, *, here: str, there: str, session_id_known: bool = True):
    """A Prolific rater: their session here (status `here`) and their submission there."""
    participant = object_id()
    submission = prolific.submission_add(
        study_id=study.prolific_study_id, participant_id=participant, status=there
    )
    session = session_make(
        study,
        external_id=participant,
        source=RaterSession.Source.PROLIFIC,
        status=here,
        platform_study_id=study.prolific_study_id,
        platform_session_id=submission["id"] if session_id_known else "",
    )
    return session, submission


def sync(*args: str) -> str:
    out = io.StringIO()
    call_command("prolific_sync", *args, stdout=out)
    return out.getvalue()


def status_of(session) -> str:
    session.refresh_from_db()
    return session.status


def test_returned_and_timed_out_sessions_still_in_progress_become_abandoned(prolific, study):
    returned, _ = rater(study, prolific, here=Status.IN_TASK, there="RETURNED")
    timed_out, _ = rater(study, prolific, here=Status.QUALIFYING, there="TIMED-OUT")
    active, _ = rater(study, prolific, here=Status.IN_TASK, there="ACTIVE")

    text = sync(study.public_id)

    assert status_of(returned) == Status.ABANDONED
    assert status_of(timed_out) == Status.ABANDONED
    assert status_of(active) == Status.IN_TASK
    assert returned.finished_at is not None
    assert "Marked abandoned here (2):" in text
    assert f"{returned.external_id} (RETURNED on Prolific)" in text
    assert "ACTIVE 1, RETURNED 1, TIMED-OUT 1" in text


def test_a_completed_session_returned_on_prolific_keeps_its_status_and_its_answers(prolific, study):
    completed = answered_session_make(study, study.models.first(), [[(500, True, True)] * 3])
    submission = prolific.submission_add(
        study_id=study.prolific_study_id,
        participant_id="5f1e2d3c4b5a697887766554",
        status="RETURNED",
    )
    RaterSession.objects.filter(pk=completed.pk).update(
        source=RaterSession.Source.PROLIFIC,
        external_id="5f1e2d3c4b5a697887766554",
        platform_session_id=submission["id"],
    )
    text = sync(study.public_id)
    assert status_of(completed) == Status.COMPLETED
    assert Answer.objects.filter(trial__session=completed).count() == 3
    assert "completed here but their submission is RETURNED on Prolific" in text
    assert "Nothing changed here." in text


def test_an_abandoned_session_keeps_its_answers(prolific, study):
    session = answered_session_make(
        study, study.models.first(), [[(500, True, True)] * 4], status=Status.IN_TASK
    )
    submission = prolific.submission_add(
        study_id=study.prolific_study_id,
        participant_id="60aa11bb22cc33dd44ee55ff",
        status="RETURNED",
    )
    RaterSession.objects.filter(pk=session.pk).update(
        source=RaterSession.Source.PROLIFIC,
        external_id="60aa11bb22cc33dd44ee55ff",
        platform_session_id=submission["id"],
    )
    sync(study.public_id)
    assert status_of(session) == Status.ABANDONED
    assert Answer.objects.filter(trial__session=session).count() == 4


def test_every_page_of_submissions_is_read(prolific, study, monkeypatch):
    monkeypatch.setattr(prolific_module, "SUBMISSIONS_PAGE_SIZE", 2)
    for _ in range(4):
        prolific.submission_add(
            study_id=study.prolific_study_id, participant_id=object_id(), status="ACTIVE"
        )
    last, _ = rater(study, prolific, here=Status.IN_TASK, there="RETURNED")

    text = sync(study.public_id)

    pages = [r.query["page"] for r in prolific.requests_to("GET", r"^/api/v1/submissions/$")]
    assert pages == ["1", "2", "3"]
    assert all(
        r.query == {"study": study.prolific_study_id, "page": r.query["page"], "page_size": "2"}
        for r in prolific.requests_to("GET", r"^/api/v1/submissions/$")
    )
    assert status_of(last) == Status.ABANDONED
    assert f"Prolific study {study.prolific_study_id}: 5 submissions" in text


def test_a_submission_that_is_not_the_sessions_own_changes_nothing(prolific, study):
    session, _ = rater(study, prolific, here=Status.IN_TASK, there="ACTIVE")
    other = prolific.submission_add(
        study_id=study.prolific_study_id, participant_id=session.external_id, status="RETURNED"
    )
    text = sync(study.public_id)
    assert status_of(session) == Status.IN_TASK
    assert f"submission {other['id']} is not their session's" in text


def test_a_participant_with_two_submissions_and_no_session_id_here_is_left_alone(prolific, study):
    session, _ = rater(
        study, prolific, here=Status.IN_TASK, there="RETURNED", session_id_known=False
    )
    prolific.submission_add(
        study_id=study.prolific_study_id, participant_id=session.external_id, status="ACTIVE"
    )
    text = sync(study.public_id)
    assert status_of(session) == Status.IN_TASK
    assert f"Participant {session.external_id} has 2 submissions" in text


def test_submissions_without_a_session_here_and_the_reverse_are_reported(prolific, study):
    stranger = prolific.submission_add(
        study_id=study.prolific_study_id, participant_id=object_id(), status="AWAITING REVIEW"
    )
    lonely = session_make(
        study, external_id=object_id(), source=RaterSession.Source.PROLIFIC, status=Status.COMPLETED
    )
    text = sync(study.public_id)
    assert f"Participant {stranger['participant_id']} has no session here" in text
    assert f"Participant {lonely.external_id} completed here but has no submission there" in text


def test_without_approve_it_says_how_many_wait_for_approval_and_approves_nothing(prolific, study):
    rater(study, prolific, here=Status.COMPLETED, there="AWAITING REVIEW")
    text = sync(study.public_id)
    assert "completed here: 1; rerun with --approve" in text
    assert prolific.requests_to("POST", APPROVALS) == []
    assert not Payment.objects.exists()


def test_approve_approves_each_completed_rater_once_and_records_the_base_pay(prolific, study):
    first, one = rater(study, prolific, here=Status.COMPLETED, there="AWAITING REVIEW")
    second, two = rater(study, prolific, here=Status.COMPLETED, there="AWAITING REVIEW")

    text = sync(study.public_id, "--approve")

    assert sorted(prolific.approvals) == sorted([one["id"], two["id"]])
    assert all(r.body == {"action": "APPROVE"} for r in prolific.requests_to("POST", APPROVALS))
    for session in (first, second):
        payment = Payment.objects.get(session=session, kind=Payment.Kind.BASE)
        assert (payment.status, payment.amount_cents, payment.currency) == ("paid", 150, "USD")
        assert payment.sent_at is not None and payment.paid_at is not None
        session.refresh_from_db()
        assert session.approved_at is not None
    assert "Approved on Prolific (2, base pay 3.00 USD in all):" in text
    assert f"{first.external_id}  1.50 USD" in text


def test_a_rerun_approves_nothing_twice(prolific, study):
    rater(study, prolific, here=Status.COMPLETED, there="AWAITING REVIEW")
    sync(study.public_id, "--approve")
    text = sync(study.public_id, "--approve")
    assert len(prolific.requests_to("POST", APPROVALS)) == 1
    assert Payment.objects.count() == 1
    assert "Nothing changed here." in text


def test_a_rater_who_failed_the_qualification_here_is_not_approved(prolific, study):
    session, _ = rater(study, prolific, here=Status.FAILED_QUALIFICATION, there="AWAITING REVIEW")
    text = sync(study.public_id, "--approve")
    assert prolific.requests_to("POST", APPROVALS) == []
    assert f"Participant {session.external_id} is awaiting review on Prolific" in text
    assert "review it on Prolific" in text


def test_an_approval_that_fails_is_left_sent_and_the_next_run_approves_it_once(prolific, study):
    session, submission = rater(study, prolific, here=Status.COMPLETED, there="AWAITING REVIEW")
    prolific.fail("POST", APPROVALS, status=503)
    with pytest.raises(CommandError, match="whether it acted on the request is unknown"):
        sync(study.public_id, "--approve")
    assert Payment.objects.get(session=session).status == Payment.Status.SENT

    sync(study.public_id, "--approve")

    assert prolific.approvals == [submission["id"]]
    assert Payment.objects.get(session=session).status == Payment.Status.PAID


def test_an_approval_whose_answer_was_lost_is_confirmed_without_approving_again(prolific, study):
    session, submission = rater(study, prolific, here=Status.COMPLETED, there="AWAITING REVIEW")
    prolific.fail("POST", APPROVALS, status=502, act_first=True)
    with pytest.raises(CommandError):
        sync(study.public_id, "--approve")
    assert Payment.objects.get(session=session).status == Payment.Status.SENT

    text = sync(study.public_id, "--approve")

    assert len(prolific.requests_to("POST", APPROVALS)) == 1
    assert Payment.objects.get(session=session).status == Payment.Status.PAID
    session.refresh_from_db()
    assert session.approved_at is not None
    assert "Earlier approvals Prolific now confirms (1):" in text


def test_a_token_prolific_refuses_is_a_clear_error_and_changes_nothing(prolific, study, settings):
    session, _ = rater(study, prolific, here=Status.IN_TASK, there="RETURNED")
    settings.HYPE_PROLIFIC_TOKEN = "not-the-token-wxyz"
    with pytest.raises(CommandError) as error:
        sync(study.public_id, "--approve")
    assert "Prolific refused the API token (…wxyz)" in str(error.value)
    assert "Nothing was changed." in str(error.value)
    assert status_of(session) == Status.IN_TASK


def test_without_any_token_it_says_how_to_give_one(prolific, study, settings):
    settings.HYPE_PROLIFIC_TOKEN = ""
    with pytest.raises(CommandError, match="No Prolific API token"):
        sync(study.public_id)
    assert prolific.requests == []


def test_a_study_not_on_prolific_yet_is_told_to_publish_first(prolific):
    study = study_make(name="Not yet")
    with pytest.raises(CommandError, match="is not on Prolific yet: run prolific_publish first"):
        sync(study.public_id)
