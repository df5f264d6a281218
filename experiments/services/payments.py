"""What a study owes its raters: per rater, the base pay (the platform pays it when the
submission is approved) and the bonus (pay_per_correct_cents for each correct task answer of a
completed rater), and what has been paid. An exclusion changes what is scored, not what was
earned: a rater excluded after completing is due what a completed rater is, and the automatic
payment paths leave them for the researcher to decide (payment_excluded). The payments page,
its downloads and the payment commands all take their amounts from here. Amounts are whole
cents of the study's currency."""

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
    platform_study_id: str  # Prolific's STUDY_ID, MTurk's hitId
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
    # An exclusion: the reason (empty when not excluded), and whether the rater had completed.
    excluded_reason: str = ""
    completed: bool = False  # completed, or excluded after completing: earned a completed pay

    @property
    def due_cents(self) -> int:
        return self.base_cents + self.bonus_cents

    @property
    def excluded(self) -> bool:
        return self.status == RaterSession.Status.EXCLUDED

    @property
    def decide(self) -> bool:
        """Excluded after completing: earned the pay, and the researcher decides on the
        platform whether to pay it (the automatic paths leave them out)."""
        return self.excluded and self.completed


def earned_status(*, status: str, status_before_exclusion: str = "") -> str:
    """The status a rater's pay follows: an exclusion changes what is scored, not what was
    earned, so a rater excluded after completing earned what a completed rater did."""
    if status == RaterSession.Status.EXCLUDED and (
        status_before_exclusion == RaterSession.Status.COMPLETED
    ):
        return RaterSession.Status.COMPLETED
    return status


def session_earned_status(session: RaterSession) -> str:
    """earned_status of a session."""
    return earned_status(
        status=session.status, status_before_exclusion=session.status_before_exclusion
    )


def payment_excluded(session: RaterSession) -> bool:
    """A rater excluded after completing: the automatic payment paths (prolific_sync
    --approve, prolific_bonus, mturk_review) leave them out unless told to include them."""
    return (
        session.status == RaterSession.Status.EXCLUDED
        and session.status_before_exclusion == RaterSession.Status.COMPLETED
    )


def bonus_due_cents(study: Study, *, status: str, task_correct: int) -> int:
    """The bonus a rater has earned: pay_per_correct_cents per correct task answer, for a rater
    who completed the study (the paper's $0.02 per correct answer); nothing otherwise. `status`:
    the earned status (earned_status), for a rater excluded after completing."""
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
        earned = session_earned_status(session)
        rows.append(
            RaterPay(
                session_id=session.id,
                public_id=session.public_id,
                source=session.source,
                worker_id=session.external_id,
                platform_study_id=session.platform_study_id,
                platform_session_id=session.platform_session_id,
                status=session.status,
                completion_code=session.completion_code,
                answers=session.answers,
                task_correct=session.task_correct,
                base_cents=base_due_cents(study, status=earned),
                bonus_cents=bonus_due_cents(
                    study, status=earned, task_correct=session.task_correct
                ),
                currency=study.currency,
                base_status=recorded.get((session.id, Payment.Kind.BASE)),
                bonus_status=recorded.get((session.id, Payment.Kind.BONUS)),
                excluded_reason=session.excluded_reason
                if session.status == RaterSession.Status.EXCLUDED
                else "",
                completed=earned == RaterSession.Status.COMPLETED,
            )
        )
    return rows


def cents_as_amount(cents: int) -> str:
    """Whole cents as the decimal amount the platforms take: 150 -> "1.50"."""
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


# --- What has been recorded, and the study's cost ------------------------------------------


@dataclass(frozen=True)
class RecordedPayment:
    """A Payment as the payment commands recorded it: what was (or is being) paid."""

    status: str
    amount_cents: int
    currency: str


def payments_recorded(*, study: Study) -> dict[tuple[int, str], RecordedPayment]:
    """Every Payment of the study by (session id, kind)."""
    return {
        (session_id, kind): RecordedPayment(status, amount_cents, currency)
        for session_id, kind, status, amount_cents, currency in Payment.objects.filter(
            session__study=study
        ).values_list("session_id", "kind", "status", "amount_cents", "currency")
    }


def payment_differs(pay: RaterPay, *, kind: str, recorded: RecordedPayment) -> bool:
    """The recorded payment is not the amount (or not the currency) the rater is due now: the
    study's pay changed after it was recorded, or it was recorded by hand."""
    due = pay.base_cents if kind == Payment.Kind.BASE else pay.bonus_cents
    return recorded.amount_cents != due or recorded.currency != pay.currency


@dataclass(frozen=True)
class StudyCost:
    """What the study costs in raters' pay (platform fees not included): so far, and at its
    target of models x raters_per_model completed raters."""

    currency: str
    completed: int
    base_cents: int  # due to the completed raters so far
    bonus_cents: int
    paid_cents: int  # recorded as paid, in the study's currency
    unpaid_cents: int  # due and not recorded as paid
    differing: int  # recorded payments that are not what is due (payment_differs)
    models: int
    target_raters: int  # models x raters_per_model
    projected_base_cents: int
    # target_raters x the completed raters' mean bonus, to the nearest cent; None before any
    # rater has completed (there is no bonus to project from) unless the study pays none.
    projected_bonus_cents: int | None

    @property
    def due_cents(self) -> int:
        return self.base_cents + self.bonus_cents

    @property
    def projected_cents(self) -> int | None:
        if self.projected_bonus_cents is None:
            return None
        return self.projected_base_cents + self.projected_bonus_cents

    # The amounts as the pages write them (cents_as_amount), for the templates.
    @property
    def amounts(self) -> dict[str, str | None]:
        cents = {
            "base": self.base_cents,
            "bonus": self.bonus_cents,
            "due": self.due_cents,
            "paid": self.paid_cents,
            "unpaid": self.unpaid_cents,
            "projected_base": self.projected_base_cents,
            "projected_bonus": self.projected_bonus_cents,
            "projected": self.projected_cents,
        }
        return {name: None if c is None else cents_as_amount(c) for name, c in cents.items()}


def study_cost(
    *,
    study: Study,
    pays: list[RaterPay] | None = None,
    recorded: dict[tuple[int, str], RecordedPayment] | None = None,
) -> StudyCost:
    """The study's cost so far and projected. pays and recorded: rater_pay_list(study) and
    payments_recorded(study=study), when the caller has read them already (the payments page,
    so that its rows and its totals come from the same reading)."""
    pays = rater_pay_list(study) if pays is None else pays
    recorded = payments_recorded(study=study) if recorded is None else recorded
    # What raters earned: those excluded after completing too (exclusion changes the scores).
    completed = [p for p in pays if p.completed]
    unpaid = paid = differing = 0
    for pay in pays:
        for kind, due in (
            (Payment.Kind.BASE, pay.base_cents),
            (Payment.Kind.BONUS, pay.bonus_cents),
        ):
            payment = recorded.get((pay.session_id, kind))
            if payment is not None and payment.status == Payment.Status.PAID:
                if payment.currency == study.currency:
                    paid += payment.amount_cents
            else:
                unpaid += due
            if payment is not None and payment_differs(pay, kind=kind, recorded=payment):
                differing += 1
    bonus_total = sum(p.bonus_cents for p in completed)
    models = study.models.count()
    target = models * study.raters_per_model
    projected_bonus = None if study.pay_per_correct_cents else 0
    if completed:
        # target x (bonus_total / completed), rounded half up in whole integers: exact.
        projected_bonus = (2 * target * bonus_total + len(completed)) // (2 * len(completed))
    return StudyCost(
        currency=study.currency,
        completed=len(completed),
        base_cents=sum(p.base_cents for p in completed),
        bonus_cents=bonus_total,
        paid_cents=paid,
        unpaid_cents=unpaid,
        differing=differing,
        models=models,
        target_raters=target,
        projected_base_cents=target * study.pay_base_cents,
        projected_bonus_cents=projected_bonus,
    )
