"""A study's raters, for its researchers: the list of rater sessions, and one rater's page
with their staircase trace, qualification result, flags and display. Raters appear under
their pseudonymous public id only; their Prolific/MTurk worker id is never shown here."""

from __future__ import annotations

import contextlib
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from experiments.models import Answer, Block, RaterSession, Study, Trial
from experiments.services.access import study_for_viewer
from hype.science.thresholds import block_threshold, rater_time_score

Status = RaterSession.Status

# What each flag the rater service sets on an answer means (experiments.services.raters).
FLAG_NOTES = {
    "page_hidden": "the page lost visibility during the trial",
    "presentation_not_reported": "the browser never reported showing the image",
    "no_timing": "a timed trial without a measured on-screen duration",
    "timing_off": "shown more than one frame longer or shorter than asked",
}


@dataclass(frozen=True)
class Qualification:
    """How a rater did on the qualification; `state` is passed, failed, pending or none."""

    state: str
    correct: int | None = None
    total: int | None = None

    @property
    def share(self) -> float | None:
        return self.correct / self.total if self.total else None

    def __str__(self) -> str:
        if self.state == "none":
            return "no qualification"
        if self.state == "pending":
            return "not finished"
        return f"{self.state} {self.correct}/{self.total} ({100 * self.share:.0f}%)"

    @property
    def short(self) -> str:
        """For the list: without the percentage."""
        if self.total is None:
            return str(self)
        return f"{self.state} {self.correct}/{self.total}"


def _qualification(session: RaterSession, study: Study) -> Qualification:
    if session.qualification_total is None:
        if not study.qualification_trials:
            return Qualification("none")
        if session.status == Status.FAILED_QUALIFICATION:
            return Qualification("failed")
        return Qualification("pending")
    failed = session.status == Status.FAILED_QUALIFICATION
    return Qualification(
        "failed" if failed else "passed",
        session.qualification_correct,
        session.qualification_total,
    )


def _hz_text(refresh_ms: float | None) -> str:
    return f"{1000 / refresh_ms:.0f} Hz" if refresh_ms else "—"


def _duration_text(session: RaterSession) -> str:
    if session.finished_at is None:
        return "—"
    minutes = (session.finished_at - session.started_at).total_seconds() / 60
    return f"{minutes:.0f} min" if minutes >= 1 else "< 1 min"


def _refresh_text(refresh_ms: float | None) -> str:
    if not refresh_ms:
        return "—"
    return f"{refresh_ms:.1f} ms ({1000 / refresh_ms:.0f} Hz)"


_BROWSERS = (
    ("Edge", r"Edg/(\d+)"),
    ("Firefox", r"Firefox/(\d+)"),
    ("Chrome", r"Chrom(?:e|ium)/(\d+)"),
    ("Safari", r"Version/(\d+)[.\d]* .*Safari/"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iOS", "iPhone"),
    ("iOS", "iPad"),
    ("Windows", "Windows"),
    ("macOS", "Mac OS X"),
    ("Linux", "Linux"),
)


def browser_name(user_agent: str) -> str:
    """'Chrome 126 on Linux' from a User-Agent header: enough to spot an odd setup."""
    if not user_agent:
        return "—"
    browser = "Unknown browser"
    for name, pattern in _BROWSERS:
        if match := re.search(pattern, user_agent):
            browser = f"{name} {match.group(1)}"
            break
    system = next((name for name, token in _SYSTEMS if token in user_agent), None)
    return f"{browser} on {system}" if system else browser


def _rater_scores(study: Study) -> dict[int, float]:
    """Each rater's score from their task answers, as the study's results compute it: the
    mean modal exposure of their blocks (HYPE_time, in ms) or their error rate (HYPE_inf)."""
    rows = (
        Answer.objects.filter(trial__session__study=study, trial__block__kind=Block.Kind.TASK)
        .order_by("trial__session_id", "trial__block__index", "trial__position")
        .values_list("trial__session_id", "trial__block_id", "trial__requested_ms", "correct")
    )
    exposures: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    rights: dict[int, list[bool]] = defaultdict(list)
    for session_id, block_id, requested_ms, correct in rows:
        if requested_ms is not None:
            exposures[session_id][block_id].append(requested_ms)
        rights[session_id].append(correct)
    if study.method == Study.Method.INF:
        return {s: sum(not c for c in r) / len(r) for s, r in rights.items()}
    scores = {}
    for session_id, blocks in exposures.items():
        # A burn-in longer than the block so far leaves no threshold yet.
        with contextlib.suppress(ValueError):
            scores[session_id] = rater_time_score(
                list(blocks.values()),
                burn_in=study.threshold_burn_in,
                tie_rule=study.threshold_tie_rule,
            )
    return scores


def _score_text(study: Study, score: float | None) -> str:
    if score is None:
        return "—"
    return f"{100 * score:.1f}%" if study.method == Study.Method.INF else f"{score:.1f} ms"


@login_required
@require_GET
def rater_list(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = study_for_viewer(request.user, study)
    flagged = ~Q(trials__answer__flags=[]) & Q(trials__answer__isnull=False)
    sessions = (
        RaterSession.objects.filter(study=study_obj)
        .select_related("model")
        .annotate(
            answers=Count("trials__answer"),
            flagged=Count("trials__answer", filter=flagged),
            hidden=Count("trials__answer", filter=Q(trials__answer__page_hidden=True)),
        )
        .order_by("started_at", "id")
    )
    scores = _rater_scores(study_obj)
    rows = []
    for session in sessions:
        # The study's scores count completed raters only; others' numbers are not final.
        score = scores.get(session.id) if session.status == Status.COMPLETED else None
        rows.append(
            {
                "session": session,
                "qualification": _qualification(session, study_obj),
                "score": _score_text(study_obj, score),
                "refresh": _refresh_text(session.refresh_ms),
                "hz": _hz_text(session.refresh_ms),
                "took": _duration_text(session),
            }
        )
    counts = Counter(session.status for session in sessions)
    return render(
        request,
        "researcher/raters.html",
        {
            "study": study_obj,
            "rows": rows,
            "counts": [(label, counts[value]) for value, label in Status.choices if counts[value]],
            "score_label": "Error" if study_obj.method == Study.Method.INF else "HYPE_time",
        },
    )


def _block_summaries(study: Study, trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per block the rater has reached: its answered trials and what they add up
    to (accuracy; for a timed block the staircase trace and its modal exposure)."""
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
            block["title"] = f"Task block {task_number}"
        else:
            block["title"] = "Qualification"
        correct = sum(t["answer__correct"] for t in answered)
        fakes = [t for t in answered if not t["is_real"]]
        reals = [t for t in answered if t["is_real"]]
        block.update(
            answered=len(answered),
            correct=correct,
            accuracy=f"{100 * correct / len(answered):.0f}%" if answered else "—",
            fake_error=_share(sum(not t["answer__correct"] for t in fakes), len(fakes)),
            real_error=_share(sum(not t["answer__correct"] for t in reals), len(reals)),
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
            try:
                block["threshold"] = block_threshold(
                    exposures, burn_in=study.threshold_burn_in, tie_rule=study.threshold_tie_rule
                )
            except ValueError:
                block["threshold"] = None
        summaries.append(block)
    return summaries


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}% ({part}/{whole})" if whole else "—"


@login_required
@require_GET
def rater_detail(request: HttpRequest, study: str, rater: str) -> HttpResponse:
    study_obj = study_for_viewer(request.user, study)
    session = (
        RaterSession.objects.filter(study=study_obj, public_id=rater)
        .select_related("model")
        .first()
    )
    if session is None:
        raise Http404("No such rater in this study.")
    trials = list(
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
    blocks = _block_summaries(study_obj, trials)
    answered = [t for t in trials if t["answer__correct"] is not None]
    flag_counts = Counter(flag for t in answered for flag in (t["answer__flags"] or []))
    answer_refresh = [t["answer__refresh_ms"] for t in answered if t["answer__refresh_ms"]]
    timing_gaps = [
        abs(t["answer__shown_ms"] - t["requested_ms"])
        for t in answered
        if t["answer__shown_ms"] is not None and t["requested_ms"] is not None
    ]
    timed = study_obj.method == Study.Method.TIME
    task = [b for b in blocks if b["kind"] == Block.Kind.TASK]
    score = _rater_scores_one(study_obj, task)
    trace_data = {
        "floor": study_obj.staircase_floor_ms,
        "ceiling": study_obj.staircase_ceiling_ms,
        "blocks": [
            {
                "id": f"trace-{b['index']}",
                "title": b["title"],
                "threshold": b["threshold"],
                "trace": b["trace"],
            }
            for b in task
            if b["trace"]
        ],
    }
    return render(
        request,
        "researcher/rater.html",
        {
            "study": study_obj,
            "session": session,
            "timed": timed,
            "qualification": _qualification(session, study_obj),
            "blocks": blocks,
            "task_blocks": task,
            "score": _score_text(study_obj, score),
            "score_final": session.status == Status.COMPLETED,
            "answered": len(answered),
            "total": study_obj.trials_per_rater,
            "flag_counts": [
                (flag, n, FLAG_NOTES.get(flag, ""))
                for flag, n in sorted(flag_counts.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "flagged": sum(bool(t["answer__flags"]) for t in answered),
            "hidden": sum(bool(t["answer__page_hidden"]) for t in answered),
            "refresh": _refresh_text(session.refresh_ms),
            "answer_refresh": _refresh_text(statistics.median(answer_refresh))
            if answer_refresh
            else "—",
            "timing_gap": f"{statistics.median(timing_gaps):.1f} ms" if timing_gaps else None,
            "browser": browser_name(session.user_agent),
            "trace_data": trace_data,
        },
    )


def _rater_scores_one(study: Study, task_blocks: list[dict[str, Any]]) -> float | None:
    """This rater's score so far from the block summaries (same rule as _rater_scores)."""
    if study.method == Study.Method.INF:
        answered = sum(b["answered"] for b in task_blocks)
        wrong = sum(b["answered"] - b["correct"] for b in task_blocks)
        return wrong / answered if answered else None
    traces = [[ms for _, ms, _ in b["trace"]] for b in task_blocks if b["trace"]]
    if not traces:
        return None
    try:
        return rater_time_score(
            traces, burn_in=study.threshold_burn_in, tie_rule=study.threshold_tie_rule
        )
    except ValueError:
        return None
