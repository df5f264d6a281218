"""A study's rater sessions as its researchers see them: each with its answers counted (all,
task, flagged, page hidden), its qualification's result, and one rater's blocks with their
staircase traces. Scores and thresholds come from experiments.services.scores."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter
from typing import Any

from django.db.models import Count, Q, QuerySet

from experiments.models import Answer, Block, RaterSession, Study, Trial
from experiments.services.scores import block_threshold_of

Status = RaterSession.Status
# Flagged answers read per round trip.
FLAG_CHUNK_ROWS = 2_000


def sessions_counted(study: Study, *, order: tuple[str, ...] = ("id",)) -> QuerySet[RaterSession]:
    """The study's sessions, each annotated with `answers`, `task_answers`, `task_correct`,
    `flagged` (answers with a quality flag) and `hidden` (answers given after the page lost
    visibility)."""
    answered = Q(trials__answer__isnull=False)
    return (
        RaterSession.objects.filter(study=study)
        .annotate(
            answers=Count("trials__answer"),
            task_answers=Count(
                "trials__answer", filter=answered & Q(trials__block__kind=Block.Kind.TASK)
            ),
            task_correct=Count(
                "trials__answer",
                filter=Q(trials__answer__correct=True, trials__block__kind=Block.Kind.TASK),
            ),
            flagged=Count("trials__answer", filter=answered & ~Q(trials__answer__flags=[])),
            hidden=Count("trials__answer", filter=Q(trials__answer__page_hidden=True)),
        )
        .order_by(*order)
    )


def flags_by_session(study: Study) -> Iterator[tuple[int, Counter]]:
    """(session id, answers per quality flag) of every session of the study with a flagged
    answer, in session order: one query over the flagged answers, read in chunks."""
    flagged = (
        Answer.objects.filter(trial__session__study=study)
        .exclude(flags=[])
        .order_by("trial__session_id")
        .values_list("trial__session_id", "flags")
        .iterator(chunk_size=FLAG_CHUNK_ROWS)
    )
    for session_id, rows in groupby(flagged, key=itemgetter(0)):
        yield session_id, Counter(flag for _, flags in rows for flag in flags or ())


def qualification_state(*, study: Study, status: str, total: int | None, kept: bool = False) -> str:
    """passed, failed, pending (not finished yet), kept (passed in an earlier study of the
    session's qualified pool, so skipped here) or none (the study has no qualification)."""
    if total is None:
        if kept:
            return "kept"
        if not study.qualification_trials:
            return "none"
        return "failed" if status == Status.FAILED_QUALIFICATION else "pending"
    return "failed" if status == Status.FAILED_QUALIFICATION else "passed"


def qualification_kept_from(session: RaterSession) -> str:
    """Which earlier session's passed qualification this one kept, in words ("" if none); read
    with select_related("qualification_from__study") to cost no query."""
    earlier = session.qualification_from
    if earlier is None:
        return ""
    return f"rater {earlier.public_id} in {earlier.study.name}"


def session_trials(session: RaterSession) -> list[dict[str, Any]]:
    """Every trial of the session so far, in order, with its block and its answer (None
    fields where it is not answered yet)."""
    return list(
        Trial.objects.filter(session=session)
        .order_by("index")
        .values(
            "block__index",
            "block__kind",
            "block__trial_count",
            "position",
            "is_real",
            "requested_ms",
            "answer__correct",
            "answer__shown_ms",
            "answer__refresh_ms",
            "answer__page_hidden",
            "answer__flags",
        )
    )


def session_blocks(session: RaterSession, trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per block the rater has reached (trials: session_trials): its answered trials
    and what they add up to (correct answers, fakes and reals called wrong; for a timed block
    the staircase trace, [trial number, exposure, correct] per answer, and its threshold)."""
    by_block: dict[int, list[dict[str, Any]]] = defaultdict(list)
    blocks: dict[int, dict[str, Any]] = {}
    for trial in trials:
        blocks.setdefault(
            trial["block__index"],
            {"index": trial["block__index"], "kind": trial["block__kind"]},
        )
        blocks[trial["block__index"]]["size"] = trial["block__trial_count"]
        if trial["answer__correct"] is not None:
            by_block[trial["block__index"]].append(trial)
    task_number = 0
    summaries = []
    for index in sorted(blocks):
        block = blocks[index]
        answered = by_block[index]
        if block["kind"] == Block.Kind.TASK:
            task_number += 1
        fakes = [t for t in answered if not t["is_real"]]
        reals = [t for t in answered if t["is_real"]]
        block.update(
            task_number=task_number if block["kind"] == Block.Kind.TASK else None,
            answered=len(answered),
            correct=sum(t["answer__correct"] for t in answered),
            fakes=len(fakes),
            fakes_wrong=sum(not t["answer__correct"] for t in fakes),
            reals=len(reals),
            reals_wrong=sum(not t["answer__correct"] for t in reals),
            trace=[],
            threshold=None,
        )
        exposures = [t["requested_ms"] for t in answered if t["requested_ms"] is not None]
        if exposures:
            block["trace"] = [
                [t["position"] + 1, t["requested_ms"], bool(t["answer__correct"])]
                for t in answered
                if t["requested_ms"] is not None
            ]
            block["first_ms"], block["last_ms"] = exposures[0], exposures[-1]
            block["min_ms"], block["max_ms"] = min(exposures), max(exposures)
            block["threshold"] = block_threshold_of(session.study, exposures)
        summaries.append(block)
    return summaries
