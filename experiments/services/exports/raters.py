"""raters.csv: one row per rater session, with its score as the study's results count it
(experiments.services.scores), its qualification, its answers counted and its display
(docs/data-dictionary.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from experiments.models import Study
from experiments.services.exports.cells import csv_chunks, untrusted_text
from experiments.services.raters import qualification_state, sessions_counted
from experiments.services.scores import RaterScore, rater_scores

# A session row is larger than an answer row: fewer at a time.
SESSION_CHUNK_ROWS = 100

RATER_COLUMNS = (
    "study",
    "rater",
    "model",
    "source",
    "status",
    "in_score",
    "time_score_ms",
    "inf_error",
    "inf_fake_error",
    "inf_real_error",
    "qualification_correct",
    "qualification_total",
    "qualification_passed",
    "answers",
    "task_answers",
    "flagged",
    "user_agent",
    "screen_width",
    "screen_height",
    "device_pixel_ratio",
    "refresh_ms",
    "started_at",
    "finished_at",
)

_SESSION_FIELDS = (
    "id",
    "public_id",
    "model__name",
    "source",
    "status",
    "qualification_correct",
    "qualification_total",
    "answers",
    "task_answers",
    "flagged",
    "user_agent",
    "screen_width",
    "screen_height",
    "device_pixel_ratio",
    "refresh_ms",
    "started_at",
    "finished_at",
)


def _rater_row(study: Study, session: dict[str, Any], score: RaterScore | None) -> dict[str, Any]:
    timed = study.method == Study.Method.TIME
    in_score = score is not None and score.score is not None
    state = qualification_state(
        study=study, status=session["status"], total=session["qualification_total"]
    )
    inf = score.inf if in_score and not timed else None
    return {
        "study": study.public_id,
        "rater": session["public_id"],
        "model": session["model__name"],
        "source": session["source"],
        "status": session["status"],
        "in_score": in_score,
        "time_score_ms": score.score if in_score and timed else None,
        "inf_error": score.score if in_score and not timed else None,
        "inf_fake_error": inf.fake_error if inf else None,
        "inf_real_error": inf.real_error if inf else None,
        "qualification_correct": session["qualification_correct"],
        "qualification_total": session["qualification_total"],
        "qualification_passed": {"passed": True, "failed": False}.get(state),
        "answers": session["answers"],
        "task_answers": session["task_answers"],
        "flagged": session["flagged"],
        "user_agent": untrusted_text(session["user_agent"]),
        "screen_width": session["screen_width"],
        "screen_height": session["screen_height"],
        "device_pixel_ratio": session["device_pixel_ratio"],
        "refresh_ms": session["refresh_ms"],
        "started_at": session["started_at"],
        "finished_at": session["finished_at"],
    }


def rater_rows(study: Study) -> Iterator[tuple[Any, ...]]:
    """One row per rater session of the study (RATER_COLUMNS), in the order they started.

    Sessions and the completed raters' scores are two streams in session order, merged as
    they go: memory holds one rater's answers at a time, whatever the size of the study."""
    sessions = sessions_counted(study).values(*_SESSION_FIELDS).iterator(SESSION_CHUNK_ROWS)
    scores = rater_scores(study)
    pending = next(scores, None)
    for session in sessions:
        # Scores of a session the sessions query did not see (it began meanwhile): skip.
        while pending is not None and pending.session_id < session["id"]:
            pending = next(scores, None)
        score = None
        if pending is not None and pending.session_id == session["id"]:
            score, pending = pending, next(scores, None)
        row = _rater_row(study, session, score)
        yield tuple(row[column] for column in RATER_COLUMNS)


def raters_csv(study: Study) -> Iterator[str]:
    return csv_chunks(RATER_COLUMNS, rater_rows(study))
