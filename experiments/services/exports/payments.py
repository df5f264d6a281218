"""A study's payment downloads, for its owner (worker ids are personal data): the approvals list,
Prolific's bulk bonus list and an MTurk bonus list. Amounts come from
experiments.services.payments; each download's columns are declared once, below."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

from django.http import Http404, HttpResponse

from experiments.models import RaterSession, Study
from experiments.services.exports.cells import text, untrusted_text
from experiments.services.exports.downloads import export_filename
from experiments.services.payments import RaterPay, cents_as_amount, rater_pay_list

Source = RaterSession.Source
COMPLETED = RaterSession.Status.COMPLETED


@dataclass(frozen=True)
class PayColumn:
    """One column of a payment download: its name and how its cell is written from a rater's
    pay. Worker and platform session ids come from the study link's address, which a rater
    can type: they go through untrusted_text, so that none runs as a spreadsheet formula."""

    name: str
    cell: Callable[[RaterPay], str]


def _worker(pay: RaterPay) -> str:
    return untrusted_text(pay.worker_id)


def _platform_session(pay: RaterPay) -> str:
    return untrusted_text(pay.platform_session_id)


def _bonus(pay: RaterPay) -> str:
    return cents_as_amount(pay.bonus_cents)


def _reason(pay: RaterPay) -> str:
    # MTurk shows the reason to the worker with the bonus: nothing of the study's name, which
    # may name the models under evaluation.
    answers = "answer" if pay.task_correct == 1 else "answers"
    return f"Bonus for {pay.task_correct} correct {answers} in the image study. Thank you!"


def _approve(pay: RaterPay) -> str:
    # Excluded after completing: they earned the pay, and the researcher decides (empty).
    if pay.decide:
        return ""
    return "true" if pay.status == COMPLETED else "false"


APPROVAL_COLUMNS = (
    PayColumn("platform", lambda pay: text(pay.source)),
    PayColumn("worker_id", _worker),
    PayColumn("platform_study_id", lambda pay: untrusted_text(pay.platform_study_id)),
    PayColumn("platform_session_id", _platform_session),
    PayColumn("status", lambda pay: text(pay.status)),
    PayColumn("completion_code", lambda pay: text(pay.completion_code)),
    PayColumn("approve", _approve),
    PayColumn("base_due", lambda pay: cents_as_amount(pay.base_cents)),
    PayColumn("currency", lambda pay: text(pay.currency)),
    PayColumn("excluded_reason", lambda pay: untrusted_text(pay.excluded_reason)),
)
# Prolific's bulk bonus format: "<participant_id>,<amount>" lines, no header, the amount in
# the Prolific study's currency with two decimals (its API docs, "Set up bonuses").
PROLIFIC_BONUS_COLUMNS = (PayColumn("id", _worker), PayColumn("amount", _bonus))
MTURK_BONUS_COLUMNS = (
    PayColumn("WorkerId", _worker),
    PayColumn("AssignmentId", _platform_session),
    PayColumn("BonusAmount", _bonus),
    PayColumn("Reason", _reason),
)


def _from_a_platform(pay: RaterPay) -> bool:
    return pay.source in (Source.PROLIFIC, Source.MTURK)


def _bonus_to_send(source: str) -> Callable[[RaterPay], bool]:
    """Completed raters of the platform with a bonus due and no bonus Payment recorded. A
    recorded one is left out whatever its status: paid, sent (it may have been paid) or
    prepared (a payment command has it in hand and will send it): never paid twice. Raters
    excluded after completing are left out too: the researcher decides on the platform."""

    def wanted(pay: RaterPay) -> bool:
        return (
            pay.source == source
            and pay.status == COMPLETED
            and pay.bonus_cents > 0
            and pay.bonus_status is None
        )

    return wanted


@dataclass(frozen=True)
class PaymentDownload:
    name: str  # the file's last part, e.g. approvals.csv
    label: str
    note: str
    columns: tuple[PayColumn, ...]
    wanted: Callable[[RaterPay], bool]  # whether a rater has a row
    cents: Callable[[RaterPay], int]  # the amount of a row, for the file's total
    header: bool = True
    # CRLF as every HYPE CSV; Prolific documents its list with "\n".
    line_end: str = "\r\n"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


PAYMENT_DOWNLOADS = (
    PaymentDownload(
        "approvals.csv",
        "Approvals",
        "every Prolific and MTurk rater: approve the completed ones",
        APPROVAL_COLUMNS,
        _from_a_platform,
        lambda pay: pay.base_cents,
    ),
    PaymentDownload(
        "prolific-bonuses.csv",
        "Prolific bonuses",
        "Prolific's bulk bonus format: the bonuses not yet paid",
        PROLIFIC_BONUS_COLUMNS,
        _bonus_to_send(Source.PROLIFIC),
        lambda pay: pay.bonus_cents,
        header=False,
        line_end="\n",
    ),
    PaymentDownload(
        "mturk-bonuses.csv",
        "MTurk bonuses",
        "worker, assignment and amount of each bonus not yet paid",
        MTURK_BONUS_COLUMNS,
        _bonus_to_send(Source.MTURK),
        lambda pay: pay.bonus_cents,
    ),
)
PAYMENT_DOWNLOAD_KINDS = tuple(download.name for download in PAYMENT_DOWNLOADS)


def _download(kind: str) -> PaymentDownload:
    found = {d.name: d for d in PAYMENT_DOWNLOADS}.get(kind)
    if found is None:
        raise Http404("No such download.")
    return found


@dataclass(frozen=True)
class DownloadSummary:
    """What one payment download holds now: its rows and the sum of their amounts."""

    download: PaymentDownload
    rows: int
    cents: int

    @property
    def amount(self) -> str:
        return cents_as_amount(self.cents)


def payment_downloads_summary(*, pays: list[RaterPay]) -> list[DownloadSummary]:
    """Each payment download with what it holds, from rater_pay_list(study)."""
    summaries = []
    for download in PAYMENT_DOWNLOADS:
        chosen = [pay for pay in pays if download.wanted(pay)]
        summaries.append(
            DownloadSummary(download, len(chosen), sum(download.cents(p) for p in chosen))
        )
    return summaries


def payment_rows(*, study: Study, kind: str) -> list[tuple[str, ...]]:
    """The rows of one payment download (its columns), in the order the raters started."""
    download = _download(kind)
    return [
        tuple(column.cell(pay) for column in download.columns)
        for pay in rater_pay_list(study)
        if download.wanted(pay)
    ]


def payment_csv(*, study: Study, kind: str) -> str:
    """The whole file. Built before it is sent, not streamed: a failure half-way is an error,
    never a list of payments that silently stops short (the file has one line per rater)."""
    download = _download(kind)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=download.line_end)
    if download.header:
        writer.writerow(download.column_names)
    writer.writerows(payment_rows(study=study, kind=kind))
    return out.getvalue()


def payment_download_response(*, study: Study, kind: str) -> HttpResponse:
    """The download of one payment file of the study; Http404 for an unknown kind."""
    body = payment_csv(study=study, kind=kind)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export_filename(study, kind)}"'
    # Worker ids and amounts: never kept by a shared cache.
    response["Cache-Control"] = "private, no-store"
    return response
