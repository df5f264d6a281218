"""A study's live progress: raters by status and answers stored, per model and in total, as a
JSON-ready dict. The dashboard's progress panel renders it, and the progress websocket
(experiments.dashboard.progress_consumer) sends it again whenever progress_announce (or a
rater socket, for an answer) tells the study's group that something changed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db.models import Count, Max, Q
from django.utils import timezone

from experiments.models import Answer, RaterSession, Study
from experiments.rating.expiry import sessions_expire

Status = RaterSession.Status

# The counts every row carries, in the order the panel shows them.
STATUS_COUNTS = {
    "consented": Q(status=Status.CONSENTED),
    "qualifying": Q(status=Status.QUALIFYING),
    "in_task": Q(status=Status.IN_TASK),
    "in_progress": Q(status__in=RaterSession.IN_PROGRESS),
    "completed": Q(status=Status.COMPLETED),
    "failed_qualification": Q(status=Status.FAILED_QUALIFICATION),
    "no_place": Q(status=Status.NO_PLACE),
    "abandoned": Q(status=Status.ABANDONED),
    "excluded": Q(status=Status.EXCLUDED),
}
RATE_WINDOW = timedelta(minutes=1)
# The event the dashboards' progress sockets wake up on.
PROGRESS_EVENT = {"type": "study.progress"}


def progress_group(study_public_id: str) -> str:
    """The channel-layer group researchers' dashboards listen to for live progress."""
    return f"study.{study_public_id}"


def progress_announce(study: Study) -> None:
    """Tell the study's open dashboards that its progress changed (from synchronous code)."""
    async_to_sync(get_channel_layer().group_send)(progress_group(study.public_id), PROGRESS_EVENT)


def _row(name: str | None, target: int | None) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, "target": target}
    row.update(dict.fromkeys(STATUS_COUNTS, 0))
    row.update(raters=0, answers=0, answers_last_minute=0, last_answer_at=None)
    return row


def _add(total: dict[str, Any], row: dict[str, Any]) -> None:
    for key in (*STATUS_COUNTS, "raters", "answers", "answers_last_minute"):
        total[key] += row[key]
    if row["last_answer_at"] and (
        total["last_answer_at"] is None or row["last_answer_at"] > total["last_answer_at"]
    ):
        total["last_answer_at"] = row["last_answer_at"]


def study_progress(study: Study) -> dict[str, Any]:
    """Raters by status and answers stored, per model and in total, in four queries (the first
    abandons the sessions past the idle limit).

    Raters are assigned a model only once they pass the qualification (docs/hype-method.md),
    so those still qualifying, and their answers, are counted in `unassigned` (None when
    there are none). `answers_last_minute` is the answer rate: answers stored in the last 60
    seconds. Times are ISO 8601 strings in UTC.
    """
    now = timezone.now()
    # Served to a researcher's page: stale sessions are abandoned first, so the counts are true.
    sessions_expire(study, now=now)
    models = list(study.models.order_by("name").values_list("id", "name"))
    rows: dict[int | None, dict[str, Any]] = {
        model_id: _row(name, study.raters_per_model) for model_id, name in models
    }
    rows[None] = _row(None, None)

    raters = (
        RaterSession.objects.filter(study=study)
        .values("model_id")
        .order_by()
        .annotate(
            raters=Count("id"), **{key: Count("id", filter=q) for key, q in STATUS_COUNTS.items()}
        )
    )
    for counts in raters:
        row = rows.get(counts.pop("model_id"))
        if row is not None:
            row.update(counts)

    answers = (
        Answer.objects.filter(trial__session__study=study)
        .values("trial__session__model_id")
        .order_by()
        .annotate(
            answers=Count("id"),
            answers_last_minute=Count("id", filter=Q(answered_at__gte=now - RATE_WINDOW)),
            last_answer_at=Max("answered_at"),
        )
    )
    for counts in answers:
        row = rows.get(counts.pop("trial__session__model_id"))
        if row is not None:
            row.update(counts)

    total = _row(None, study.raters_per_model * len(models))
    for row in rows.values():
        _add(total, row)
    for row in (*rows.values(), total):
        if row["last_answer_at"] is not None:
            row["last_answer_at"] = row["last_answer_at"].isoformat()
    unassigned = rows.pop(None)
    return {
        "study": study.public_id,
        "status": study.status,
        "at": now.isoformat(),
        "total": total,
        "models": [rows[model_id] for model_id, _ in models],
        "unassigned": unassigned if unassigned["raters"] or unassigned["answers"] else None,
    }
