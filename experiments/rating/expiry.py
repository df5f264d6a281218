"""Dropouts: a session under way with no answer for the study's idle limit is abandoned, and
its model's place is free for someone else. Nobody has to run anything: every rater page of a
study, every assignment of a model and the researcher's pages of the study expire what is
stale first, in the same transaction as what they do next; `manage.py expire_sessions` does it
for every study at once (for a server where nobody looks for a while)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from experiments.models import RaterSession, Study

Status = RaterSession.Status


def idle_reason(study: Study) -> str:
    """What an expired session's end_reason says."""
    minutes = study.idle_minutes
    return f"no answer for {minutes} minute{'s' if minutes != 1 else ''} (the study's idle limit)"


def idle_cutoff(study: Study, *, now: datetime | None = None) -> datetime:
    """Sessions whose last answer (or start) is older than this are abandoned."""
    return (now or timezone.now()) - timedelta(minutes=study.idle_minutes)


def session_is_idle(session: RaterSession, *, now: datetime | None = None) -> bool:
    """Whether this session is under way and past its study's idle limit."""
    return session.status in RaterSession.IN_PROGRESS and session.last_activity_at < idle_cutoff(
        session.study, now=now
    )


def sessions_expire(study: Study, *, now: datetime | None = None) -> int:
    """Abandon every session of `study` under way whose last answer (or start) is older than
    the idle limit; returns how many. One UPDATE: a session whose answer is being stored at the
    same moment holds its row lock, and once that answer commits it is no longer stale (the
    database checks the condition again on the row it waited for)."""
    now = now or timezone.now()
    return RaterSession.objects.filter(
        study=study,
        status__in=RaterSession.IN_PROGRESS,
        last_activity_at__lt=idle_cutoff(study, now=now),
    ).update(status=Status.ABANDONED, finished_at=now, end_reason=idle_reason(study))


def session_expire_if_idle(session: RaterSession, *, now: datetime | None = None) -> bool:
    """Abandon this (locked) session if it is past the idle limit; True if it was. A rater who
    comes back after the limit finds their session over, whether or not anything else expired
    it first."""
    if not session_is_idle(session, now=now):
        return False
    session.status = Status.ABANDONED
    session.finished_at = now or timezone.now()
    session.end_reason = idle_reason(session.study)
    session.save(update_fields=["status", "finished_at", "end_reason"])
    return True


def all_sessions_expire(*, now: datetime | None = None) -> dict[str, int]:
    """sessions_expire for every study with a session under way: {study public id: count}
    for the studies where some were abandoned."""
    now = now or timezone.now()
    expired = {}
    under_way = RaterSession.objects.filter(status__in=RaterSession.IN_PROGRESS)
    for study in Study.objects.filter(pk__in=under_way.values("study_id")).order_by("id"):
        count = sessions_expire(study, now=now)
        if count:
            expired[study.public_id] = count
    return expired
