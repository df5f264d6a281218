"""manage.py mturk_review against the MTurk stand-in (tests/fakes/mturk.py): qualifications,
matching, approvals and bonuses, each paid once however often the review is rerun, and
nothing paid for an assignment whose worker and session disagree."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from experiments.models import Payment, RaterSession, Study
from experiments.recruiting import mturk as mturk_module
from tests.factories import answered_session_make, session_make, study_make
from tests.fakes.mturk import fake_mturk_serving

pytestmark = pytest.mark.django_db

Status = RaterSession.Status


@pytest.fixture
def mturk(monkeypatch, settings):
    with fake_mturk_serving(monkeypatch, settings, page_size=2) as fake:
        yield fake


@pytest.fixture
def study(mturk):
    """A live study paying 1.50 USD and 0.02 USD per correct answer, published on the stand-in."""
    study = study_make(
        status=Study.Status.LIVE,
        pay_base_cents=150,
        pay_per_correct_cents=2,
        estimated_minutes=20,
    )
    call_command(
        "mturk_publish", study.public_id, "--url", "https://hype.example.org", stdout=io.StringIO()
    )
    study.refresh_from_db()
    return study


def worker(study, mturk, worker_id, *, correct=0, wrong=0, status=Status.COMPLETED):
    """A worker who accepted and submitted the HIT, with their session here: `correct` and
    `wrong` task answers."""
    assignment = mturk.assignment_accept(study.mturk_hit_id, worker_id)
    trials = [(500, True, True)] * correct + [(500, False, False)] * wrong
    session = answered_session_make(study, study.models.first(), [trials], status=status)
    session.external_id = worker_id
    session.source = RaterSession.Source.MTURK
    session.platform_study_id = study.mturk_hit_id
    session.platform_session_id = assignment["AssignmentId"]
    session.save()
    return session


def review(study, *options):
    out, err = io.StringIO(), io.StringIO()
    call_command("mturk_review", study.public_id, *options, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def payments(study, kind):
    return {
        p.session.external_id: (p.status, p.amount_cents)
        for p in Payment.objects.filter(session__study=study, kind=kind)
    }


def test_every_worker_who_started_is_given_the_qualification_silently_and_again_changes_nothing(
    study, mturk
):
    worker(study, mturk, "A1FINISHED")
    session_make(study, external_id="A1STILLGOING", source=RaterSession.Source.MTURK)
    session_make(study, external_id="link-3f2a")  # a link rater: no MTurk worker

    review(study)
    review(study)

    qualification = study.mturk_qualification_id
    assert mturk.worker_qualifications == {
        (qualification, "A1FINISHED"): 1,
        (qualification, "A1STILLGOING"): 1,
    }
    granted = mturk.requests_of("AssociateQualificationWithWorker")
    assert len(granted) == 4
    assert all(request["SendNotification"] is False for request in granted)
    with pytest.raises(Exception, match="does not meet the requirements"):
        mturk.assignment_accept(study.mturk_hit_id, "A1STILLGOING")


def test_the_review_reads_every_page_of_assignments_and_counts_them(study, mturk):
    for number in range(5):
        worker(study, mturk, f"A1WORKER{number}")
    mturk.assignment_accept(study.mturk_hit_id, "A1NOSESSION")

    output = review(study)

    assert len(mturk.requests_of("ListAssignmentsForHIT")) == 3  # pages of two
    assert "Assignments: 6 (6 submitted, 0 approved, 0 rejected)" in output
    assert "matched to a session here: 5, of which completed: 5; not matched: 1" in output
    assert "A1NOSESSION (Submitted): no session here; nothing done." in output
    assert mturk.approvals == [] and mturk.bonuses == []


def test_approve_approves_each_submitted_assignment_of_a_completed_session_and_records_it(
    study, mturk
):
    done = worker(study, mturk, "A1DONE")
    failed = worker(study, mturk, "A1FAILED", status=Status.FAILED_QUALIFICATION)

    output = review(study, "--approve")

    assert mturk.approvals == [done.platform_session_id]
    assert payments(study, Payment.Kind.BASE) == {"A1DONE": ("paid", 150)}
    payment = Payment.objects.get(session=done)
    assert payment.request_token == f"hype-{done.public_id}-base"
    assert payment.sent_at <= payment.paid_at
    done.refresh_from_db()
    failed.refresh_from_db()
    assert done.approved_at is not None and failed.approved_at is None
    assert "approved now: 1" in output
    assert "submitted without completing the study here: not approved: 1" in output


def test_a_rerun_of_approve_approves_nothing_twice(study, mturk):
    worker(study, mturk, "A1DONE")
    review(study, "--approve")

    output = review(study, "--approve")

    assert len(mturk.requests_of("ApproveAssignment")) == 1
    assert "approved and recorded before: 1" in output
    assert payments(study, Payment.Kind.BASE) == {"A1DONE": ("paid", 150)}


def test_an_assignment_mturk_approved_already_is_recorded_as_paid_not_approved_again(study, mturk):
    done = worker(study, mturk, "A1DONE")
    mturk.assignments[done.platform_session_id]["AssignmentStatus"] = "Approved"

    output = review(study, "--approve")

    assert mturk.requests_of("ApproveAssignment") == []
    assert payments(study, Payment.Kind.BASE) == {"A1DONE": ("paid", 150)}
    assert "approved at MTurk before, recorded as paid now: 1" in output


def test_an_assignment_approved_at_mturk_without_a_completed_session_records_no_pay(study, mturk):
    failed = worker(study, mturk, "A1FAILED", status=Status.FAILED_QUALIFICATION)
    mturk.assignments[failed.platform_session_id]["AssignmentStatus"] = "Approved"

    output = review(study, "--approve", "--bonus")

    assert Payment.objects.count() == 0 and mturk.requests_of("ApproveAssignment") == []
    assert "approved at MTurk without completing the study here: 1" in output


def test_an_approval_whose_answer_was_lost_stays_sent_and_the_rerun_records_it(
    study, mturk, monkeypatch
):
    monkeypatch.setattr(mturk_module, "READ_TIMEOUT_S", 0.5)
    mturk.answer_late("ApproveAssignment", 1.5)
    worker(study, mturk, "A1DONE")

    with pytest.raises(CommandError, match="not settled"):
        review(study, "--approve")
    assert payments(study, Payment.Kind.BASE) == {"A1DONE": ("sent", 150)}

    review(study, "--approve")
    assert payments(study, Payment.Kind.BASE) == {"A1DONE": ("paid", 150)}
    assert len(mturk.requests_of("ApproveAssignment")) == 1


def test_bonus_pays_each_approved_rater_per_correct_answer_under_a_token_made_from_the_session(
    study, mturk
):
    seven = worker(study, mturk, "A1SEVEN", correct=7, wrong=3)
    three = worker(study, mturk, "A1THREE", correct=3, wrong=7)
    worker(study, mturk, "A1NONE", correct=0, wrong=10)

    output = review(study, "--approve", "--bonus")

    sent = {bonus["WorkerId"]: bonus for bonus in mturk.bonuses}
    assert {w: (b["BonusAmount"], b["AssignmentId"]) for w, b in sent.items()} == {
        "A1SEVEN": ("0.14", seven.platform_session_id),
        "A1THREE": ("0.06", three.platform_session_id),
    }
    assert sent["A1SEVEN"]["UniqueRequestToken"] == f"hype-{seven.public_id}-bonus"
    assert "0.02 USD for each correct answer, and you gave 7" in sent["A1SEVEN"]["Reason"]
    assert payments(study, Payment.Kind.BONUS) == {
        "A1SEVEN": ("paid", 14),
        "A1THREE": ("paid", 6),
    }
    assert "bonuses sent now: 2" in output
    assert "bonuses paid in this run: 0.20 USD" in output


def test_a_rerun_of_bonus_pays_nobody_twice(study, mturk):
    worker(study, mturk, "A1SEVEN", correct=7)
    worker(study, mturk, "A1THREE", correct=3)
    review(study, "--approve", "--bonus")

    output = review(study, "--approve", "--bonus")
    review(study, "--bonus")

    assert sorted(bonus["WorkerId"] for bonus in mturk.bonuses) == ["A1SEVEN", "A1THREE"]
    assert len(mturk.requests_of("SendBonus")) == 2
    assert "bonuses paid before: 2" in output


def test_a_bonus_waits_until_its_assignment_is_approved(study, mturk):
    worker(study, mturk, "A1SEVEN", correct=7)

    output = review(study, "--bonus")

    assert mturk.bonuses == []
    assert payments(study, Payment.Kind.BONUS) == {}
    assert "bonuses that wait for their assignment's approval: 1" in output


def test_a_bonus_whose_answer_timed_out_stays_sent_and_the_rerun_with_its_token_pays_once(
    study, mturk, monkeypatch
):
    monkeypatch.setattr(mturk_module, "READ_TIMEOUT_S", 0.5)
    first = worker(study, mturk, "A1FIRST", correct=5)
    worker(study, mturk, "A1SECOND", correct=4)
    review(study, "--approve")
    mturk.answer_late("SendBonus", 1.5)  # MTurk pays the first, but its answer comes too late

    with pytest.raises(CommandError, match="not settled"):
        review(study, "--bonus")
    assert payments(study, Payment.Kind.BONUS) == {"A1FIRST": ("sent", 10)}

    output = review(study, "--bonus")

    requests = mturk.requests_of("SendBonus")
    first_token = f"hype-{first.public_id}-bonus"
    assert [r["UniqueRequestToken"] for r in requests].count(first_token) == 2
    assert sorted(bonus["WorkerId"] for bonus in mturk.bonuses) == ["A1FIRST", "A1SECOND"]
    assert payments(study, Payment.Kind.BONUS) == {
        "A1FIRST": ("paid", 10),
        "A1SECOND": ("paid", 8),
    }
    assert "bonuses an earlier run had sent, recorded as paid now: 1" in output


def test_the_first_runs_message_says_the_outcome_is_not_known(study, mturk, monkeypatch):
    monkeypatch.setattr(mturk_module, "READ_TIMEOUT_S", 0.5)
    worker(study, mturk, "A1FIRST", correct=5)
    review(study, "--approve")
    mturk.answer_late("SendBonus", 1.5)

    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("mturk_review", study.public_id, "--bonus", stdout=io.StringIO(), stderr=err)

    assert "Outcome not known: left sent" in err.getvalue()
    assert "did not answer the request to send a bonus" in err.getvalue()
    assert "the same token keeps MTurk from paying twice" in err.getvalue()


def test_a_bonus_mturk_refuses_is_not_paid_and_is_sent_by_the_rerun(study, mturk):
    worker(study, mturk, "A1SEVEN", correct=7)
    review(study, "--approve")
    mturk.fail_next("SendBonus", "You do not have enough funds to pay this bonus.")

    with pytest.raises(CommandError, match="not settled"):
        review(study, "--bonus")
    assert payments(study, Payment.Kind.BONUS) == {"A1SEVEN": ("prepared", 14)}
    assert mturk.bonuses == []

    review(study, "--bonus")
    assert [bonus["WorkerId"] for bonus in mturk.bonuses] == ["A1SEVEN"]
    assert payments(study, Payment.Kind.BONUS) == {"A1SEVEN": ("paid", 14)}


def test_a_bonus_sent_over_a_day_ago_is_looked_up_at_mturk_before_it_is_sent_again(study, mturk):
    worker(study, mturk, "A1PAID", correct=7)
    worker(study, mturk, "A1NOTPAID", correct=3)
    review(study, "--approve", "--bonus")
    # A day later, MTurk has forgotten the tokens. One bonus was paid (its answer lost), the
    # other never reached MTurk: both are recorded as sent.
    mturk.bonus_tokens.clear()
    mturk.bonuses = [b for b in mturk.bonuses if b["WorkerId"] == "A1PAID"]
    Payment.objects.filter(kind=Payment.Kind.BONUS).update(
        status=Payment.Status.SENT, sent_at=timezone.now() - timedelta(hours=25), paid_at=None
    )

    review(study, "--bonus")

    assert sorted(bonus["WorkerId"] for bonus in mturk.bonuses) == ["A1NOTPAID", "A1PAID"]
    resent = [r["WorkerId"] for r in mturk.requests_of("SendBonus")][2:]
    assert resent == ["A1NOTPAID"]  # the paid one was found in MTurk's list, not sent again
    assert payments(study, Payment.Kind.BONUS) == {
        "A1PAID": ("paid", 14),
        "A1NOTPAID": ("paid", 6),
    }


def test_credentials_mturk_refuses_give_a_clear_error_and_change_nothing(study, mturk, monkeypatch):
    worker(study, mturk, "A1SEVEN", correct=7)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSOMEONEELSE")

    with pytest.raises(CommandError, match="MTurk refused the AWS credentials"):
        review(study, "--approve", "--bonus")

    assert Payment.objects.count() == 0
    assert mturk.approvals == [] and mturk.bonuses == [] and mturk.worker_qualifications == {}
    assert RaterSession.objects.get(external_id="A1SEVEN").approved_at is None


def test_a_mismatched_assignment_and_worker_pair_changes_nothing(study, mturk):
    theirs = mturk.assignment_accept(study.mturk_hit_id, "A1REALWORKER")
    impostor = worker(study, mturk, "A1IMPOSTOR", correct=9)
    impostor.platform_session_id = theirs["AssignmentId"]  # claims another worker's assignment
    impostor.save()
    elsewhere = worker(study, mturk, "A1ELSEWHERE", correct=9)
    elsewhere.platform_session_id = "3SOMEOTHERASSIGNMENT"
    elsewhere.save()

    output = review(study, "--approve", "--bonus")

    assert mturk.approvals == [] and mturk.bonuses == []
    assert Payment.objects.count() == 0
    assert (
        f"{theirs['AssignmentId']} of worker A1REALWORKER (Submitted): the session here for "
        "this assignment is worker A1IMPOSTOR's; nothing done." in output
    )
    assert (
        "of worker A1ELSEWHERE (Submitted): this worker's session here is for "
        "3SOMEOTHERASSIGNMENT; nothing done." in output
    )
    assert "matched to a session here: 0" in output


def test_a_session_from_another_hit_is_not_paid(study, mturk):
    session = worker(study, mturk, "A1DONE", correct=5)
    session.platform_study_id = "3ANOTHERHIT"
    session.save()

    output = review(study, "--approve", "--bonus")

    assert mturk.approvals == [] and Payment.objects.count() == 0
    assert "came from HIT 3ANOTHERHIT" in output


def test_a_study_without_a_hit_is_refused(mturk):
    study = study_make(status=Study.Status.LIVE, pay_base_cents=150)

    with pytest.raises(CommandError, match="has no MTurk HIT: publish it with mturk_publish"):
        review(study)
    assert mturk.requests == []


def test_a_study_whose_currency_changed_from_usd_pays_nothing(study, mturk):
    worker(study, mturk, "A1SEVEN", correct=7)
    Study.objects.filter(pk=study.pk).update(currency="EUR")
    study.refresh_from_db()

    with pytest.raises(CommandError, match="MTurk pays in US dollars only.*EUR"):
        review(study, "--approve", "--bonus")
    assert mturk.requests_of("ApproveAssignment") == [] and Payment.objects.count() == 0


def test_approving_is_refused_when_the_base_pay_no_longer_is_the_hits_reward(study, mturk):
    worker(study, mturk, "A1SEVEN", correct=7)
    Study.objects.filter(pk=study.pk).update(pay_base_cents=200)
    study.refresh_from_db()

    with pytest.raises(CommandError, match="The HIT pays 1.50 USD, but the study's base pay is"):
        review(study, "--approve")
    assert mturk.approvals == [] and Payment.objects.count() == 0


def test_a_sandbox_study_is_reviewed_on_the_sandbox(mturk, settings):
    study = study_make(status=Study.Status.LIVE, pay_base_cents=150)
    call_command(
        "mturk_publish",
        study.public_id,
        "--sandbox",
        "--url",
        "https://h.example.org",
        stdout=io.StringIO(),
    )
    study.refresh_from_db()
    settings.HYPE_MTURK_ENDPOINT = "http://127.0.0.1:9"  # the marketplace: never reached
    worker(study, mturk, "A1TESTER")

    output = review(study, "--approve")

    assert "on MTurk's sandbox" in output
    assert len(mturk.approvals) == 1
