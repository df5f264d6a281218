"""An exclusion changes what is scored, not what was earned: a rater excluded after completing
is shown with a completed rater's pay, and every automatic payment path (prolific_sync
--approve, prolific_bonus, mturk_review --approve --bonus, against the platforms' stand-ins)
leaves them out, says so, and pays them only with --include-excluded - once."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from experiments.models import Payment, RaterSession, Study
from experiments.services.exclusions import rater_exclude
from experiments.services.exports.payments import payment_csv
from experiments.services.payments import rater_pay_list, study_cost
from tests.factories import answered_session_make, study_make, user_make
from tests.fakes.mturk import fake_mturk_serving
from tests.fakes.prolific import object_id, prolific_serving

pytestmark = pytest.mark.django_db

Status = RaterSession.Status
APPROVALS = r"^/api/v1/submissions/[^/]+/transition/$"
PAY = r"^/api/v1/bulk-bonus-payments/[^/]+/pay/$"
REASON = "Pressed F throughout."


def run(command: str, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


# --- What they are due ------------------------------------------------------------------------


def test_a_rater_excluded_after_completing_is_due_a_completed_raters_pay():
    study = study_make(pay_base_cents=150, pay_per_correct_cents=2, currency="GBP")
    model = study.models.first()
    kept = answered_session_make(study, model, [[(500, True, True)] * 5])
    excluded = answered_session_make(study, model, [[(500, True, True)] * 5])
    RaterSession.objects.filter(pk__in=[kept.pk, excluded.pk]).update(
        source=RaterSession.Source.PROLIFIC
    )
    rater_exclude(excluded, reason=REASON, by="ada")
    pays = {pay.session_id: pay for pay in rater_pay_list(study)}
    for session in (kept, excluded):
        assert (pays[session.pk].base_cents, pays[session.pk].bonus_cents) == (150, 10)
    assert pays[excluded.pk].decide and not pays[kept.pk].decide
    assert pays[excluded.pk].excluded_reason == REASON
    assert study_cost(study=study).due_cents == 2 * 160
    # The approvals list gives them their pay and leaves the decision to the researcher.
    lines = payment_csv(study=study, kind="approvals.csv").split("\r\n")
    assert lines[1].endswith(",completed," + kept.completion_code + ",true,1.50,GBP,")
    assert lines[2].endswith(f",excluded,{excluded.completion_code},,1.50,GBP,{REASON}")
    # The bonus lists leave them out: decided on the platform.
    assert payment_csv(study=study, kind="prolific-bonuses.csv") == f"{kept.external_id},0.10\n"


def test_the_payments_page_marks_an_excluded_rater_decide_on_the_platform(client):
    owner = user_make("ada")
    study = study_make(owner=owner, pay_base_cents=150, pay_per_correct_cents=2)
    session = answered_session_make(study, study.models.first(), [[(500, True, True)] * 5])
    rater_exclude(session, reason=REASON, by="ada")
    client.force_login(owner)
    html = client.get(f"/studies/{study.public_id}/payments/").content.decode()
    row = html[html.index(f'data-session="{session.public_id}"') :].split("</tr>")[0]
    assert f"excluded: {REASON} — decide on the platform" in row
    assert "<strong>1.60</strong>" in row  # 1.50 base + 5 x 0.02 bonus


# --- Prolific ---------------------------------------------------------------------------------


@pytest.fixture
def prolific(settings):
    with prolific_serving(settings) as fake:
        yield fake


@pytest.fixture
def prolific_study(prolific):
    on_prolific = prolific.study_add(name="Faces", status="AWAITING REVIEW")
    return study_make(
        pay_base_cents=150,
        pay_per_correct_cents=2,
        currency="USD",
        prolific_study_id=on_prolific["id"],
    )


def prolific_rater(study, prolific, *, there: str, correct: int = 10) -> RaterSession:
    session = answered_session_make(study, study.models.first(), [[(500, True, True)] * correct])
    participant = object_id()
    submission = prolific.submission_add(
        study_id=study.prolific_study_id, participant_id=participant, status=there
    )
    RaterSession.objects.filter(pk=session.pk).update(
        source=RaterSession.Source.PROLIFIC,
        external_id=participant,
        platform_study_id=study.prolific_study_id,
        platform_session_id=submission["id"],
    )
    session.refresh_from_db()
    session.submission_id = submission["id"]
    return session


def test_prolific_sync_approve_leaves_an_excluded_rater_out_until_asked_and_then_once(
    prolific, prolific_study
):
    kept = prolific_rater(prolific_study, prolific, there="AWAITING REVIEW")
    excluded = prolific_rater(prolific_study, prolific, there="AWAITING REVIEW")
    rater_exclude(excluded, reason=REASON, by="ada")

    text = run("prolific_sync", prolific_study.public_id, "--approve")
    assert prolific.approvals == [kept.submission_id]
    assert "Left out: 1 awaiting review on Prolific and excluded here after completing" in text
    assert f"{excluded.external_id} (excluded: {REASON})" in text
    assert not Payment.objects.filter(session=excluded).exists()

    text = run("prolific_sync", prolific_study.public_id, "--approve", "--include-excluded")
    assert sorted(prolific.approvals) == sorted([kept.submission_id, excluded.submission_id])
    payment = Payment.objects.get(session=excluded, kind=Payment.Kind.BASE)
    assert (payment.status, payment.amount_cents) == (Payment.Status.PAID, 150)
    assert "Left out" not in text

    run("prolific_sync", prolific_study.public_id, "--approve", "--include-excluded")
    assert len(prolific.requests_to("POST", APPROVALS)) == 2, "nobody approved twice"


def test_prolific_bonus_leaves_an_excluded_rater_out_until_asked_and_pays_once(
    prolific, prolific_study
):
    kept = prolific_rater(prolific_study, prolific, there="APPROVED", correct=25)
    excluded = prolific_rater(prolific_study, prolific, there="APPROVED", correct=10)
    rater_exclude(excluded, reason=REASON, by="ada")

    plan = run("prolific_bonus", prolific_study.public_id, "--dry-run")
    assert f"{kept.external_id}  0.50 USD" in plan and excluded.external_id in plan
    assert "Left out: 1 rater excluded after completing" in plan

    text = run("prolific_bonus", prolific_study.public_id)
    assert [str(amount) for amount in prolific.paid_to(kept.external_id)] == ["0.50"]
    assert prolific.paid_to(excluded.external_id) == []
    assert f"{excluded.external_id} (excluded: {REASON})" in text

    run("prolific_bonus", prolific_study.public_id, "--include-excluded")
    run("prolific_bonus", prolific_study.public_id, "--include-excluded")
    assert [str(amount) for amount in prolific.paid_to(excluded.external_id)] == ["0.20"]
    assert [str(amount) for amount in prolific.paid_to(kept.external_id)] == ["0.50"]
    assert len(prolific.requests_to("POST", PAY)) == 2


# --- MTurk -------------------------------------------------------------------------------------


@pytest.fixture
def mturk(monkeypatch, settings):
    with fake_mturk_serving(monkeypatch, settings, page_size=2) as fake:
        yield fake


@pytest.fixture
def mturk_study(mturk):
    study = study_make(
        status=Study.Status.LIVE, pay_base_cents=150, pay_per_correct_cents=2, estimated_minutes=20
    )
    call_command(
        "mturk_publish", study.public_id, "--url", "https://hype.example.org", stdout=io.StringIO()
    )
    study.refresh_from_db()
    return study


def mturk_worker(study, mturk, worker_id: str, *, correct: int) -> RaterSession:
    assignment = mturk.assignment_accept(study.mturk_hit_id, worker_id)
    session = answered_session_make(study, study.models.first(), [[(500, True, True)] * correct])
    RaterSession.objects.filter(pk=session.pk).update(
        external_id=worker_id,
        source=RaterSession.Source.MTURK,
        platform_study_id=study.mturk_hit_id,
        platform_session_id=assignment["AssignmentId"],
    )
    session.refresh_from_db()
    return session


def test_mturk_review_leaves_an_excluded_rater_out_until_asked_and_pays_once(mturk, mturk_study):
    kept = mturk_worker(mturk_study, mturk, "A1KEPT", correct=10)
    excluded = mturk_worker(mturk_study, mturk, "A1EXCLUDED", correct=5)
    rater_exclude(excluded, reason=REASON, by="ada")

    text = run("mturk_review", mturk_study.public_id, "--approve", "--bonus")
    assert mturk.approvals == [kept.platform_session_id]
    assert [b["WorkerId"] for b in mturk.bonuses] == ["A1KEPT"]
    assert "Left out: 2 payments of raters excluded after completing" in text  # base, bonus
    assert f"A1EXCLUDED (approval of {excluded.platform_session_id}: excluded: {REASON})" in text

    run("mturk_review", mturk_study.public_id, "--approve", "--bonus", "--include-excluded")
    run("mturk_review", mturk_study.public_id, "--approve", "--bonus", "--include-excluded")
    assert sorted(mturk.approvals) == sorted(
        [kept.platform_session_id, excluded.platform_session_id]
    )
    assert sorted((b["WorkerId"], b["BonusAmount"]) for b in mturk.bonuses) == [
        ("A1EXCLUDED", "0.10"),
        ("A1KEPT", "0.20"),
    ]
    base = Payment.objects.get(session=excluded, kind=Payment.Kind.BASE)
    assert (base.status, base.amount_cents) == (Payment.Status.PAID, 150)
