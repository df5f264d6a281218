"""Raters across the studies of a group (experiments.models.StudyGroup). In an exclusive group
nobody takes part in two studies: a rater id or a browser seen in any study of the group is
refused in the others (HYPE's raters are independent across models and methods). In a
qualified pool, a rater who passed the qualification in one study keeps it for the group's
number of days and skips it in the group's later studies (the paper's retainer)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from experiments.models import RaterSession, Study, StudyGroup


def _same_rater(*, external_id: str, browser: str) -> Q:
    """Sessions of the same person: the same platform (or link) id, or the same browser."""
    same = Q(pk__in=[])
    if external_id:
        same |= Q(external_id=external_id)
    if browser:
        same |= Q(browser_id=browser)
    return same


def _other_studies(study: Study):
    return RaterSession.objects.filter(study__group_id=study.group_id).exclude(study=study)


def group_seen(study: Study, *, external_id: str, browser: str) -> bool:
    """An exclusive group's rule: this rater id or browser has a session (whatever became of
    it) in another study of the group."""
    group = study.group
    if group is None or group.kind != StudyGroup.Kind.EXCLUSIVE:
        return False
    if not external_id and not browser:
        return False
    return (
        _other_studies(study).filter(_same_rater(external_id=external_id, browser=browser)).exists()
    )


def pool_cutoff(group: StudyGroup, *, now: datetime | None = None) -> datetime:
    """Qualifications passed before this have lapsed."""
    return (now or timezone.now()) - timedelta(days=group.qualification_days)


def pool_qualification(
    session: RaterSession, *, now: datetime | None = None
) -> RaterSession | None:
    """The session, in another study of this one's qualified pool, in which the same rater (id
    or browser) passed the qualification within the pool's days: the most recent one. None
    outside a pool, or when there is none."""
    return pool_kept(
        session.study, external_id=_stable_id(session), browser=session.browser_id, now=now
    )


def pool_kept(
    study: Study, *, external_id: str, browser: str, now: datetime | None = None
) -> RaterSession | None:
    """pool_qualification for a rater who has no session here yet (the landing page tells
    them they will skip the practice round): by their platform id or their browser."""
    group = study.group
    if group is None or group.kind != StudyGroup.Kind.POOL:
        return None
    if not external_id and not browser:
        return None
    same = _same_rater(external_id=external_id, browser=browser)
    return (
        _other_studies(study)
        .filter(same, qualified_at__gte=pool_cutoff(group, now=now))
        .order_by("-qualified_at")
        .first()
    )


def _stable_id(session: RaterSession) -> str:
    return pool_id(source=session.source, external_id=session.external_id)


def pool_id(*, source: str, external_id: str) -> str:
    """The id by which a qualified pool knows a rater: a crowd platform's id. A link rater's id
    is random or typed in, and a typed id proves nothing (it may be someone else's), so a link
    rater is known by their browser alone."""
    return "" if source == RaterSession.Source.LINK else external_id


def pool_size(group: StudyGroup, *, now: datetime | None = None) -> int:
    """Raters whose passed qualification the pool still keeps: one per rater id (a link rater
    without an id of their own counts once per session)."""
    passed = RaterSession.objects.filter(
        study__group=group, qualified_at__gte=pool_cutoff(group, now=now)
    ).values_list("external_id", flat=True)
    return len(set(passed))
