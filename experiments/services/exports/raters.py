"""raters.csv: one row per rater session, with its score as the study's results count it
(experiments.services.scores), its exclusion, its qualification, its answers counted (and per
quality flag) and its display (docs/data-dictionary.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from experiments.models import RaterSession, Study
from experiments.rating.sessions import FLAG_NOTES
from experiments.services.exports.cells import csv_chunks, untrusted_text
from experiments.services.raters import flags_by_session, qualification_state, sessions_counted
from experiments.services.scores import EXCLUSIONS_NONE, RaterScore, rater_scores

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
    ("excluded", None),
    ("status_before_exclusion", "status_before_exclusion"),
    ("excluded_reason", "excluded_reason"),
    ("excluded_by", "excluded_by"),
    ("excluded_at", "excluded_at"),
    ("exclusion_undone_at", "exclusion_undone_at"),
    ("time_score_ms", None),
    # The rater's psychometric fit (HYPE_time): the threshold, or why and beyond what bound
    # it is censored.
    ("time_fit_threshold_ms", None),
    ("time_fit_censored", None),
    ("time_fit_bound_ms", None),
    ("inf_error", None),
    ("inf_fake_error", None),
    ("inf_real_error", None),
    ("qualification_correct", "qualification_correct"),
    ("qualification_total", "qualification_total"),
    ("qualification_passed", None),
    # A qualification kept from an earlier study of a qualified pool: that session.
    ("qualification_kept_from_study", "qualification_from__study__public_id"),
    ("qualification_kept_from_rater", "qualification_from__public_id"),
    ("answers", "answers"),
    ("task_answers", "task_answers"),
    ("flagged", "flagged"),
    # Answers carrying each quality flag (experiments.rating.sessions.FLAG_NOTES).
    *((f"flag_{flag}", None) for flag in FLAG_NOTES),
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


def _derived(
    study: Study, session: dict[str, Any], score: RaterScore | None, flags: Counter
) -> dict[str, Any]:
    """The columns that are not a session field: the study, the score, the exclusion, the
    qualification and the flags."""
    timed = study.method == Study.Method.TIME
    # score: of a rater who completed (excluded afterwards or not); in_score: the study's
    # result counts them.
    scored = score is not None and score.score is not None
    excluded = session["status"] == RaterSession.Status.EXCLUDED
    inf = score.inf if scored and not timed else None
    fit = score.fit if scored and timed else None
    state = qualification_state(
        study=study,
        status=session["status"],
        total=session["qualification_total"],
        kept=session["qualification_from__public_id"] is not None,
    )
    return {
        "study": study.public_id,
        "in_score": scored and not excluded,
        "excluded": excluded,
        "time_score_ms": score.score if scored and timed else None,
        "time_fit_threshold_ms": fit.threshold_ms if fit else None,
        "time_fit_censored": fit.censored if fit else None,
        "time_fit_bound_ms": fit.bound_ms if fit else None,
        "inf_error": score.score if scored and not timed else None,
        "inf_fake_error": inf.fake_error if inf else None,
        "inf_real_error": inf.real_error if inf else None,
        "qualification_passed": {"passed": True, "failed": False}.get(state),
        **{f"flag_{flag}": flags[flag] for flag in FLAG_NOTES},
    }


def _rater_row(
    study: Study, session: dict[str, Any], score: RaterScore | None, flags: Counter
) -> tuple:
    derived = _derived(study, session, score, flags)
    # Raters choose their browser's user agent, researchers the reasons: neither may run as a
    # spreadsheet formula.
    session = {
        **session,
        "user_agent": untrusted_text(session["user_agent"]),
        "excluded_reason": untrusted_text(session["excluded_reason"]),
        "excluded_by": untrusted_text(session["excluded_by"]),
    }
    return tuple(derived[name] if source is None else session[source] for name, source in _COLUMNS)


def _merged(stream: Iterator, session_id: int, pending):
    """(the item of `stream` for this session or None, the next pending item): the streams
    run in session order; items of a session the sessions query did not see (it began
    meanwhile) are skipped."""
    while pending is not None and pending[0] < session_id:
        pending = next(stream, None)
    if pending is not None and pending[0] == session_id:
        return pending[1], next(stream, None)
    return None, pending


def rater_rows(study: Study) -> Iterator[tuple[Any, ...]]:
    """One row per rater session of the study (RATER_COLUMNS), in the order they started.

    Sessions, the scores of the raters who completed (those excluded afterwards too) and the
    flags are streams in session order, merged as they go: memory holds one rater's answers
    at a time, whatever the size of the study."""
    sessions = sessions_counted(study).values(*_SESSION_FIELDS).iterator(SESSION_CHUNK_ROWS)
    scores = ((r.session_id, r) for r in rater_scores(study, exclusions=EXCLUSIONS_NONE))
    flags = flags_by_session(study)
    pending_score, pending_flags = next(scores, None), next(flags, None)
    for session in sessions:
        score, pending_score = _merged(scores, session["id"], pending_score)
        counts, pending_flags = _merged(flags, session["id"], pending_flags)
        yield _rater_row(study, session, score, counts or Counter())


def raters_csv(study: Study) -> Iterator[str]:
    return csv_chunks(RATER_COLUMNS, rater_rows(study), chunk_rows=SESSION_CHUNK_ROWS)
