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

# A session row is larger than an answer row: fewer at a time, read and written.
SESSION_CHUNK_ROWS = 100

# Each column, and the session field it is read from; None: made from the rater's score or
# qualification (_derived below).
_COLUMNS = (
    ("study", None),
    ("rater", "public_id"),
    ("model", "model__name"),
    ("source", "source"),
    ("status", "status"),
    ("in_score", None),
    ("time_score_ms", None),
    ("inf_error", None),
    ("inf_fake_error", None),
    ("inf_real_error", None),
    ("qualification_correct", "qualification_correct"),
    ("qualification_total", "qualification_total"),
    ("qualification_passed", None),
    ("answers", "answers"),
    ("task_answers", "task_answers"),
    ("flagged", "flagged"),
    ("user_agent", "user_agent"),
    ("screen_width", "screen_width"),
    ("screen_height", "screen_height"),
    ("device_pixel_ratio", "device_pixel_ratio"),
    ("refresh_ms", "refresh_ms"),
    ("started_at", "started_at"),
    ("finished_at", "finished_at"),
)
RATER_COLUMNS = tuple(name for name, _ in _COLUMNS)
_SESSION_FIELDS = ("id", *(source for _, source in _COLUMNS if source is not None))


def _derived(study: Study, session: dict[str, Any], score: RaterScore | None) -> dict[str, Any]:
    """The columns that are not a session field: the study, the score, the qualification."""
    timed = study.method == Study.Method.TIME
    in_score = score is not None and score.score is not None
    inf = score.inf if in_score and not timed else None
    state = qualification_state(
        study=study, status=session["status"], total=session["qualification_total"]
    )
    return {
        "study": study.public_id,
        "in_score": in_score,
        "time_score_ms": score.score if in_score and timed else None,
        "inf_error": score.score if in_score and not timed else None,
        "inf_fake_error": inf.fake_error if inf else None,
        "inf_real_error": inf.real_error if inf else None,
        "qualification_passed": {"passed": True, "failed": False}.get(state),
    }


def _rater_row(study: Study, session: dict[str, Any], score: RaterScore | None) -> tuple:
    derived = _derived(study, session, score)
    # Raters choose their browser's user agent: it must not run as a spreadsheet formula.
    session = {**session, "user_agent": untrusted_text(session["user_agent"])}
    return tuple(derived[name] if source is None else session[source] for name, source in _COLUMNS)


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
        yield _rater_row(study, session, score)


def raters_csv(study: Study) -> Iterator[str]:
    return csv_chunks(RATER_COLUMNS, rater_rows(study), chunk_rows=SESSION_CHUNK_ROWS)
