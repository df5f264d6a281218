"""What a study owes its raters: per rater, the base pay (the platform pays it when the
submission is approved) and the bonus (pay_per_correct_cents for each correct task answer of a
completed rater), and what has been paid. The payments page, its downloads and the payment
commands all take their amounts from here. Amounts are whole cents of the study's currency."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from experiments.models import Payment, RaterSession, Study
from experiments.services.raters import sessions_counted


@dataclass(frozen=True)
class RaterPay:
    """One rater's pay: what is due, and what each kind of payment has come to so far."""

    session_id: int
    public_id: str
    source: str
    worker_id: str  # the platform's id of the worker (Prolific PID, MTurk workerId)
    platform_session_id: str
    status: str
    completion_code: str
    answers: int
    task_correct: int
    base_cents: int
    bonus_cents: int
    currency: str
    base_status: str | None  # Payment.Status of the base pay, None before one is recorded
    bonus_status: str | None

    @property
    def due_cents(self) -> int:
        return self.base_cents + self.bonus_cents


def bonus_due_cents(study: Study, *, status: str, task_correct: int) -> int:
    """The bonus a rater has earned: pay_per_correct_cents per correct task answer, for a rater
    who completed the study (the paper's $0.02 per correct answer); nothing otherwise."""
    if status != RaterSession.Status.COMPLETED:
        return 0
    return study.pay_per_correct_cents * task_correct


def base_due_cents(study: Study, *, status: str) -> int:
    """The base pay: for a completed rater; the platform pays it on approval."""
    return study.pay_base_cents if status == RaterSession.Status.COMPLETED else 0


def rater_pay_list(study: Study) -> list[RaterPay]:
    """Every rater session of the study with its pay, in the order they started."""
    recorded = {
        (session_id, kind): status
        for session_id, kind, status in Payment.objects.filter(session__study=study).values_list(
            "session_id", "kind", "status"
        )
    }
    rows = []
    for session in sessions_counted(study, order=("started_at", "id")):
        rows.append(
            RaterPay(
                session_id=session.id,
                public_id=session.public_id,
                source=session.source,
                worker_id=session.external_id,
                platform_session_id=session.platform_session_id,
                status=session.status,
                completion_code=session.completion_code,
                answers=session.answers,
                task_correct=session.task_correct,
                base_cents=base_due_cents(study, status=session.status),
                bonus_cents=bonus_due_cents(
                    study, status=session.status, task_correct=session.task_correct
                ),
                currency=study.currency,
                base_status=recorded.get((session.id, Payment.Kind.BASE)),
                bonus_status=recorded.get((session.id, Payment.Kind.BONUS)),
            )
        )
    return rows


def cents_as_amount(cents: int) -> str:
    """Whole cents as the decimal amount the platforms take: 150 -> "1.50"."""
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))
