"""`manage.py prolific_bonus STUDY` pays each completed Prolific rater's bonus through
Prolific's two-step bulk bonus (a stand-in on 127.0.0.1) exactly once: every payment is recorded
before it is sent, a rerun pays nothing twice, and a payment whose outcome is unknown is never
paid again until the researcher confirms it."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from experiments.models import Payment, RaterSession
from experiments.recruiting import prolific as prolific_module
from tests.factories import answered_session_make, study_make
from tests.fakes.prolific import object_id, prolific_serving

pytestmark = pytest.mark.django_db

Status = RaterSession.Status
SETUP = r"^/api/v1/submissions/bonus-payments/$"
PAY = r"^/api/v1/bulk-bonus-payments/[^/]+/pay/$"


@pytest.fixture
def prolific(settings):
    with prolific_serving(settings) as fake:
        yield fake


@pytest.fixture
def study(prolific):
    on_prolific = prolific.study_add(name="Faces", status="AWAITING REVIEW")
    return study_make(
        name="Faces",
        pay_base_cents=150,
        pay_per_correct_cents=2,
        currency="USD",
        prolific_study_id=on_prolific["id"],
    )


def rater(study, prolific, *, correct: int, there: str = "APPROVED", status=Status.COMPLETED):
    """A Prolific rater with `correct` correct task answers (and one wrong one), whose
    submission on Prolific is `there`."""
    answers = [(500, True, True)] * correct + [(500, False, False)]
    session = answered_session_make(study, study.models.first(), [answers], status=status)
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
    return session


@pytest.fixture
def raters(study, prolific):
    """Two raters due a bonus (25 and 10 correct: 0.50 and 0.20 USD) and two due none."""
    return (
        rater(study, prolific, correct=25),
        rater(study, prolific, correct=10),
        rater(study, prolific, correct=0),
        rater(study, prolific, correct=30, there="AWAITING REVIEW", status=Status.EXCLUDED),
    )


def bonus(*args: str) -> str:
    out = io.StringIO()
    call_command("prolific_bonus", *args, stdout=out)
    return out.getvalue()


def interrupt(*args, **kwargs):
    """Stands for the process dying (Ctrl-C, a crash) at the step it replaces."""
    raise KeyboardInterrupt


def bonuses() -> list[Payment]:
    return list(Payment.objects.filter(kind=Payment.Kind.BONUS).order_by("session_id"))


def test_it_pays_each_bonus_due_through_one_bulk_bonus_with_its_csv_lines(prolific, study, raters):
    a, b, *_ = raters
    text = bonus(study.public_id)

    (setup,) = prolific.requests_to("POST", SETUP)
    assert setup.body == {
        "study_id": study.prolific_study_id,
        "csv_bonuses": f"{a.external_id},0.50\n{b.external_id},0.20\n",
    }
    (bulk,) = prolific.bulk_bonuses.values()
    (pay,) = prolific.requests_to("POST", PAY)
    assert pay.path == f"/api/v1/bulk-bonus-payments/{bulk['id']}/pay/"
    assert prolific.paid_to(a.external_id) == [Decimal("0.50")]
    assert prolific.paid_to(b.external_id) == [Decimal("0.20")]
    rows = bonuses()
    assert [(p.session_id, p.amount_cents, p.currency, p.status) for p in rows] == [
        (a.pk, 50, "USD", "paid"),
        (b.pk, 20, "USD", "paid"),
    ]
    assert {p.platform_batch_id for p in rows} == {bulk["id"]}
    assert len({p.request_token for p in rows}) == 2
    assert all(p.sent_at and p.paid_at for p in rows)
    assert f"Paid bulk bonus {bulk['id']}: 2 bonuses, 0.70 USD:" in text
    assert f"{a.external_id}  0.50 USD" in text


def test_a_rerun_pays_nothing(prolific, study, raters):
    bonus(study.public_id)
    text = bonus(study.public_id)
    assert len(prolific.requests_to("POST", SETUP)) == 1
    assert len(prolific.requests_to("POST", PAY)) == 1
    assert len(prolific.payments) == 1
    assert "Nothing to pay." in text
    assert "Already paid before: 2 bonuses, 0.70 USD." in text


def test_a_dry_run_prints_what_would_be_paid_and_calls_nothing(prolific, study, raters):
    a, b, *_ = raters
    text = bonus(study.public_id, "--dry-run")
    assert prolific.requests == []
    assert not Payment.objects.exists()
    assert "Would pay 2 bonuses" in text
    assert f"{a.external_id}  0.50 USD" in text and f"{b.external_id}  0.20 USD" in text
    assert "Total: 0.70 USD to 2 participants" in text


def test_the_rows_are_committed_as_sent_before_prolific_is_asked_to_pay(transactional_db, settings):
    seen = []

    def read_from_another_connection(bulk_id):
        # The fake's thread has its own database connection: it sees only what is committed.
        seen.extend(
            Payment.objects.filter(platform_batch_id=bulk_id).values_list("status", flat=True)
        )
        connection.close()

    with prolific_serving(settings) as prolific:
        prolific.on_pay = read_from_another_connection
        study = study_make(
            pay_base_cents=150,
            pay_per_correct_cents=2,
            prolific_study_id=prolific.study_add(status="ACTIVE")["id"],
        )
        rater(study, prolific, correct=5)
        rater(study, prolific, correct=7)
        bonus(study.public_id)
    assert seen == ["sent", "sent"]
    assert [p.status for p in bonuses()] == ["paid", "paid"]


def test_a_pay_call_whose_answer_is_lost_is_never_paid_again_until_confirmed(
    prolific, study, raters, monkeypatch
):
    monkeypatch.setattr(prolific_module, "REQUEST_TIMEOUT_S", 0.5)
    # Prolific pays, then its answer never arrives.
    prolific.fail("POST", PAY, act_first=True, hang_s=5)
    with pytest.raises(CommandError) as error:
        bonus(study.public_id)
    (bulk,) = prolific.bulk_bonuses.values()
    assert "did not answer within 0.5 s while paying bulk bonus" in str(error.value)
    assert f"--confirm-paid {bulk['id']}" in str(error.value)
    assert [p.status for p in bonuses()] == ["sent", "sent"]
    assert len(prolific.payments) == 1

    with pytest.raises(CommandError) as again:
        bonus(study.public_id)
    message = str(again.value)
    assert f"bulk bonus {bulk['id']} (2 raters, 0.70 USD)" in message
    assert "Check on Prolific whether they were paid" in message
    assert f"manage.py prolific_bonus {study.public_id} --confirm-paid {bulk['id']}" in message
    assert len(prolific.requests_to("POST", PAY)) == 1
    assert len(prolific.requests_to("POST", SETUP)) == 1

    text = bonus(study.public_id, "--confirm-paid", bulk["id"])
    assert f"Recorded bulk bonus {bulk['id']} as paid: 2 bonuses, 0.70 USD." in text
    assert [p.status for p in bonuses()] == ["paid", "paid"]

    assert "Nothing to pay." in bonus(study.public_id)
    assert len(prolific.requests_to("POST", PAY)) == 1
    assert len(prolific.payments) == 1


def test_a_pay_call_that_fails_on_prolifics_side_is_left_sent_and_never_retried(
    prolific, study, raters
):
    prolific.fail("POST", PAY, status=500)
    with pytest.raises(CommandError, match="whether it acted on the request is unknown"):
        bonus(study.public_id)
    assert [p.status for p in bonuses()] == ["sent", "sent"]
    with pytest.raises(CommandError, match="--confirm-paid"):
        bonus(study.public_id)
    assert len(prolific.requests_to("POST", PAY)) == 1
    assert prolific.payments == []


def test_a_run_interrupted_between_sent_and_paid_leaves_the_rows_sent(
    prolific, study, raters, monkeypatch
):
    monkeypatch.setattr(prolific_module.ProlificClient, "bulk_bonus_pay", interrupt)
    with pytest.raises(KeyboardInterrupt):
        bonus(study.public_id)
    assert [p.status for p in bonuses()] == ["sent", "sent"]
    monkeypatch.undo()

    with pytest.raises(CommandError, match="never confirmed"):
        bonus(study.public_id)
    assert prolific.requests_to("POST", PAY) == []


def test_a_dry_run_shows_that_a_run_would_stop_for_unconfirmed_bonuses(prolific, study, raters):
    prolific.fail("POST", PAY, status=500)
    with pytest.raises(CommandError):
        bonus(study.public_id)
    text = bonus(study.public_id, "--dry-run")
    assert "A run would stop first: Bonuses were sent to Prolific" in text


def test_a_pay_call_prolific_refuses_keeps_the_bulk_bonus_and_the_next_run_pays_it_once(
    prolific, study, raters
):
    refusal = {"error": {"status": 400, "title": "Bad Request", "detail": "Insufficient funds."}}
    prolific.fail("POST", PAY, status=400, body=refusal)
    with pytest.raises(CommandError, match="Insufficient funds. Nothing was paid; bulk bonus"):
        bonus(study.public_id)
    (bulk,) = prolific.bulk_bonuses.values()
    assert [(p.status, p.platform_batch_id) for p in bonuses()] == [("prepared", bulk["id"])] * 2

    bonus(study.public_id)

    assert len(prolific.requests_to("POST", SETUP)) == 1
    assert [r.path for r in prolific.requests_to("POST", PAY)] == [
        f"/api/v1/bulk-bonus-payments/{bulk['id']}/pay/"
    ] * 2
    assert len(prolific.payments) == 1
    assert [p.status for p in bonuses()] == ["paid", "paid"]


def test_a_bulk_bonus_prolific_reads_as_another_total_is_never_paid(prolific, study, raters):
    prolific.fail(
        "POST", SETUP, status=201, body={"id": "65aa00bb11cc22dd33ee44ff", "amount": 7000.0}
    )
    with pytest.raises(CommandError, match=r"as 70.00 rather than 0.70 USD, so it was not paid"):
        bonus(study.public_id)
    assert prolific.requests_to("POST", PAY) == []
    assert [(p.status, p.platform_batch_id) for p in bonuses()] == [("prepared", "")] * 2


def test_bonuses_go_only_to_submissions_approved_on_prolific(prolific, study):
    paid = rater(study, prolific, correct=5)
    waiting = rater(study, prolific, correct=5, there="AWAITING REVIEW")
    returned = rater(study, prolific, correct=5, there="RETURNED")
    text = bonus(study.public_id)
    assert prolific.paid_to(paid.external_id) == [Decimal("0.10")]
    assert prolific.paid_to(waiting.external_id) == []
    assert prolific.paid_to(returned.external_id) == []
    assert f"{waiting.external_id}: their submission is AWAITING REVIEW on Prolific" in text
    assert f"{returned.external_id}: their submission is RETURNED on Prolific" in text
    assert [p.session_id for p in bonuses()] == [paid.pk]


def test_many_raters_are_paid_in_several_bulk_bonuses_each_paid_once(prolific, study, monkeypatch):
    monkeypatch.setattr(prolific_module, "BONUSES_PER_BATCH", 2)
    for correct in (1, 2, 3, 4, 5):
        rater(study, prolific, correct=correct)
    bonus(study.public_id)
    assert len(prolific.bulk_bonuses) == 3
    assert sorted(b["paid"] for b in prolific.bulk_bonuses.values()) == [1, 1, 1]
    assert sum(a for p in prolific.payments for _, a in p["rows"]) == Decimal("0.30")


def test_a_token_prolific_refuses_is_a_clear_error_and_records_nothing(
    prolific, study, raters, settings
):
    settings.HYPE_PROLIFIC_TOKEN = "rejected-token-3k3k"
    with pytest.raises(CommandError) as error:
        bonus(study.public_id)
    assert "Prolific refused the API token (…3k3k)" in str(error.value)
    assert "No bonus was paid." in str(error.value)
    assert not Payment.objects.exists()


def test_without_any_token_it_says_how_to_give_one(prolific, study, raters, settings):
    settings.HYPE_PROLIFIC_TOKEN = ""
    with pytest.raises(CommandError, match="No Prolific API token"):
        bonus(study.public_id)
    assert prolific.requests == []
    assert not Payment.objects.exists()


def test_a_prolific_study_in_another_currency_is_refused_before_anything_is_paid(
    settings, study, raters
):
    with prolific_serving(settings, currency="GBP") as prolific:
        prolific.studies.update(
            {study.prolific_study_id: {"id": study.prolific_study_id, "currency_code": "GBP"}}
        )
        with pytest.raises(CommandError, match="is in GBP, but this study's pay is in USD"):
            bonus(study.public_id)
        assert prolific.requests_to("POST", SETUP) == []
    assert not Payment.objects.exists()


def test_confirming_a_bulk_bonus_that_was_never_sent_is_refused(prolific, study, raters):
    with pytest.raises(CommandError, match="Nothing to confirm for bulk bonus 'nope'"):
        bonus(study.public_id, "--confirm-paid", "nope")
    bonus(study.public_id)
    (bulk,) = prolific.bulk_bonuses
    with pytest.raises(CommandError, match="already recorded as paid"):
        bonus(study.public_id, "--confirm-paid", bulk)


def test_a_lost_answer_to_setting_up_the_bonuses_pays_nothing_and_the_rerun_pays_once(
    prolific, study, raters, monkeypatch
):
    monkeypatch.setattr(prolific_module, "REQUEST_TIMEOUT_S", 0.5)
    prolific.fail("POST", SETUP, act_first=True, hang_s=5)
    with pytest.raises(CommandError, match="Nothing was paid by this step"):
        bonus(study.public_id)
    assert [(p.status, p.platform_batch_id) for p in bonuses()] == [("prepared", "")] * 2

    bonus(study.public_id)

    assert len(prolific.bulk_bonuses) == 2
    assert sorted(b["paid"] for b in prolific.bulk_bonuses.values()) == [0, 1]
    assert len(prolific.payments) == 1


def test_a_run_interrupted_before_sending_reuses_its_bulk_bonus(
    prolific, study, raters, monkeypatch
):
    monkeypatch.setattr(prolific_module, "_batch_pay", interrupt)
    with pytest.raises(KeyboardInterrupt):
        bonus(study.public_id)
    (bulk,) = prolific.bulk_bonuses
    assert [(p.status, p.platform_batch_id) for p in bonuses()] == [("prepared", bulk)] * 2
    monkeypatch.undo()

    bonus(study.public_id)

    assert len(prolific.requests_to("POST", SETUP)) == 1
    assert [p["bulk"] for p in prolific.payments] == [bulk]
    assert [p.status for p in bonuses()] == ["paid", "paid"]


def test_a_prepared_bulk_bonus_with_a_rater_no_longer_payable_is_left_unpaid(
    prolific, study, raters, monkeypatch
):
    a, b, *_ = raters
    monkeypatch.setattr(prolific_module, "_batch_pay", interrupt)
    with pytest.raises(KeyboardInterrupt):
        bonus(study.public_id)
    monkeypatch.undo()
    (first,) = prolific.bulk_bonuses
    prolific.submissions[b.platform_session_id]["status"] = "RETURNED"

    text = bonus(study.public_id)

    assert f"Bulk bonus {first} was set up but never paid" in text
    assert prolific.bulk_bonuses[first]["paid"] == 0
    assert prolific.paid_to(a.external_id) == [Decimal("0.50")]
    assert prolific.paid_to(b.external_id) == []
    assert [(p.session_id, p.status) for p in bonuses()] == [(a.pk, "paid"), (b.pk, "prepared")]
