"""A study's payments page and its downloads, for the owner and staff only: each rater's worker
id, what they are due and what has been paid. Thin: the amounts come from
experiments.services.payments, the files from experiments.services.exports.payments."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from experiments.models import Payment, RaterSession
from experiments.services.access import study_for_owner
from experiments.services.exports.payments import (
    payment_download_response,
    payment_downloads_summary,
)
from experiments.services.payments import (
    RaterPay,
    RecordedPayment,
    cents_as_amount,
    payment_differs,
    payments_recorded,
    rater_pay_list,
    study_cost,
)

# Where a recorded payment stands, in the page's words (and a second line).
PAYMENT_STATES = {
    Payment.Status.PREPARED: ("prepared", "not sent yet"),
    Payment.Status.SENT: ("sent", "outcome unknown"),
    Payment.Status.PAID: ("paid", None),
}


def _payment_state(
    pay: RaterPay, *, kind: str, due: int, recorded: RecordedPayment | None
) -> dict[str, str | None]:
    if recorded is None:
        return {"state": "none" if due else "nothing", "text": "not recorded" if due else "—"}
    differs = payment_differs(pay, kind=kind, recorded=recorded)
    text, note = PAYMENT_STATES[recorded.status]
    return {
        "state": recorded.status,
        "text": text,
        "note": note,
        "recorded": (
            f"recorded as {cents_as_amount(recorded.amount_cents)} {recorded.currency}"
            if differs
            else None
        ),
    }


def _row(pay: RaterPay, recorded: dict[tuple[int, str], RecordedPayment]) -> dict:
    return {
        "pay": pay,
        "platform": RaterSession.Source(pay.source).label,
        "status": RaterSession.Status(pay.status).label,
        "base": cents_as_amount(pay.base_cents),
        "bonus": cents_as_amount(pay.bonus_cents),
        "due": cents_as_amount(pay.due_cents),
        # The base pay's, then the bonus's.
        "paid": [
            _payment_state(pay, kind=kind, due=due, recorded=recorded.get((pay.session_id, kind)))
            for kind, due in (
                (Payment.Kind.BASE, pay.base_cents),
                (Payment.Kind.BONUS, pay.bonus_cents),
            )
        ],
    }


@login_required
@require_GET
def study_payments(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = study_for_owner(request.user, study)
    pays = rater_pay_list(study_obj)
    recorded = payments_recorded(study=study_obj)
    cost = study_cost(study=study_obj, pays=pays, recorded=recorded)
    return render(
        request,
        "researcher/payments.html",
        {
            "study": study_obj,
            "base_rate": cents_as_amount(study_obj.pay_base_cents),
            "bonus_rate": cents_as_amount(study_obj.pay_per_correct_cents),
            "rows": [_row(pay, recorded) for pay in pays],
            "cost": cost,
            "totals": {
                "raters": len(pays),
                "answers": sum(p.answers for p in pays),
                "task_correct": sum(p.task_correct for p in pays),
                "base": cents_as_amount(sum(p.base_cents for p in pays)),
                "bonus": cents_as_amount(sum(p.bonus_cents for p in pays)),
                "due": cents_as_amount(sum(p.due_cents for p in pays)),
            },
            "downloads": [
                (
                    summary,
                    reverse(
                        "experiments:study_payments_download",
                        args=[study_obj.public_id, summary.download.name],
                    ),
                )
                for summary in payment_downloads_summary(pays=pays)
            ],
        },
    )


@login_required
@require_GET
def study_payments_download(request: HttpRequest, study: str, kind: str) -> HttpResponse:
    # study_for_owner first: a colleague or an outsider learns nothing of the kinds.
    study_obj = study_for_owner(request.user, study)
    return payment_download_response(study=study_obj, kind=kind)
