"""A study's raters, for its researchers: the list of rater sessions, and one rater's page
with their staircase trace, qualification result, flags and display. Raters appear under
their pseudonymous public id only; their Prolific/MTurk worker id is never shown here."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from experiments.dashboard.formatting import score_formatter
from experiments.models import Block, RaterSession, Study
from experiments.rating.sessions import FLAG_NOTES
from experiments.services.access import study_for_viewer
from experiments.services.raters import (
    qualification_state,
    session_blocks,
    session_trials,
    sessions_counted,
)
from experiments.services.scores import RaterScore, rater_scores, session_score

Status = RaterSession.Status


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
    state = qualification_state(
        study=study, status=session.status, total=session.qualification_total
    )
    if session.qualification_total is None:
        return Qualification(state)
    return Qualification(state, session.qualification_correct, session.qualification_total)


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


def _score_text(study: Study, score: RaterScore | None) -> str:
    if score is None or score.score is None:
        return "—"
    return score_formatter(study.score_unit)(score.score)


@login_required
@require_GET
def rater_list(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = study_for_viewer(request.user, study)
    sessions = sessions_counted(study_obj, order=("started_at", "id")).select_related("model")
    # The study's scores count completed raters only; others' numbers are not final.
    scores = {score.session_id: score for score in rater_scores(study_obj)}
    rows = []
    for session in sessions:
        score = scores.get(session.id)
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


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}% ({part}/{whole})" if whole else "—"


def _block_texts(block: dict[str, Any]) -> dict[str, Any]:
    """A block summary (experiments.services.raters.session_blocks) with its shares in words."""
    return {
        **block,
        "title": "Qualification"
        if block["kind"] == Block.Kind.QUALIFICATION
        else f"Task block {block['task_number']}",
        "accuracy": f"{100 * block['correct'] / block['answered']:.0f}%"
        if block["answered"]
        else "—",
        "fake_error": _share(block["fakes_wrong"], block["fakes"]),
        "real_error": _share(block["reals_wrong"], block["reals"]),
    }


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
    trials = session_trials(session)
    blocks = [_block_texts(block) for block in session_blocks(session, trials)]
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
    score = session_score(session)
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
