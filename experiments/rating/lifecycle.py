"""A rater session's life (docs/raters.md): started from the study link, or continued by the
browser that holds it; then consented -> qualifying -> in task -> completed, or failed
qualification, or no place left; abandoned when idle (experiments.rating.expiry) and excluded
by the researcher (experiments.services.exclusions). The statuses that end a session and the
outcome a finished rater is shown."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, MutableMapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from experiments.models import Answer, Block, RaterSession, Study
from experiments.rating.blocks import (
    NoPlace,
    block_create,
    model_assign,
    study_complete,
    study_full,
    study_lock,
)
from experiments.rating.groups import group_seen, pool_qualification
from experiments.rating.messages import ProtocolError
from experiments.recruiting.arrival import Arrival
from experiments.services.exclusions import rules_apply
from experiments.services.progress import progress_announce

# What a finished (or stopped) rater is told, by the status their session ended in.
OUTCOMES = {
    RaterSession.Status.COMPLETED: "completed",
    RaterSession.Status.FAILED_QUALIFICATION: "failed_qualification",
    RaterSession.Status.NO_PLACE: "full",
    RaterSession.Status.EXCLUDED: "excluded",
    RaterSession.Status.ABANDONED: "abandoned",
}
# Where the browser keeps its own random id (in its Django session, behind the session cookie).
BROWSER_KEY = "rater:browser"
Source = RaterSession.Source


class SessionRefused(ProtocolError):
    """This browser may not start or continue a session here: `code` says why (docs/raters.md,
    "Who may resume a session"). Nothing is started, and nothing of any session is shown."""


def rater_session_key(study_public_id: str) -> str:
    """Where the rater's session id lives in their browser's (cookie-backed) Django session."""
    return f"rater:{study_public_id}"


def browser_id(browser_session: MutableMapping[str, Any]) -> str:
    """This browser's random id, made on its first visit and kept in its Django session."""
    value = browser_session.get(BROWSER_KEY)
    if not isinstance(value, str) or not value:
        value = secrets.token_urlsafe(24)
        browser_session[BROWSER_KEY] = value
    return value


def session_held(*, study: Study, browser_session: Mapping[str, Any]) -> RaterSession | None:
    """The rater session of this study that this browser holds, if any."""
    session_id = browser_session.get(rater_session_key(study.public_id))
    if session_id is None:
        return None
    return RaterSession.objects.filter(pk=session_id, study=study).select_related("study").first()


def session_outcome(session: RaterSession) -> str:
    """What the rater is told once the session has ended (completed, failed_qualification,
    full, excluded, abandoned; a rater excluded after completing still sees their completion);
    otherwise in_progress while the study is live, and closed when it is not."""
    if (
        session.status == RaterSession.Status.EXCLUDED
        and session.status_before_exclusion == RaterSession.Status.COMPLETED
    ):
        return OUTCOMES[RaterSession.Status.COMPLETED]
    if session.status in OUTCOMES:
        return OUTCOMES[session.status]
    return "in_progress" if session.study.status == Study.Status.LIVE else "closed"


def _platform_name(source: str) -> str:
    return {Source.PROLIFIC: "Prolific ID", Source.MTURK: "MTurk worker ID"}.get(source, "id")


def session_resumable(
    *, study: Study, held: RaterSession | None, arrival: Arrival
) -> RaterSession | None:
    """The session an arriving rater may continue, None when they would start a new one, or
    SessionRefused. A session is continued only by the browser that holds it, or by a crowd
    platform's id together with that platform's own session id (Prolific's SESSION_ID, MTurk's
    assignmentId) from another browser; an id typed into a form or a link never resumes
    anything, and one browser holds one session per study."""
    if held is not None:
        if arrival.external_id and arrival.external_id != held.external_id:
            raise SessionRefused(
                "other_rater",
                "This browser has already taken part in this study under another id. Each "
                "person takes part once.",
            )
        return held
    if not arrival.external_id:
        return None
    existing = RaterSession.objects.filter(study=study, external_id=arrival.external_id).first()
    if existing is None:
        return None
    if (
        arrival.source != Source.LINK
        and existing.source == arrival.source
        and arrival.platform_session_id
        and existing.platform_session_id == arrival.platform_session_id
    ):
        return existing
    raise SessionRefused(
        "started_elsewhere",
        f"This {_platform_name(arrival.source)} has already started this study in another "
        "browser. Please continue in the browser where you started it.",
    )


def arrival_session(
    *, study: Study, browser_session: Mapping[str, Any], arrival: Arrival
) -> RaterSession | None:
    """The session an arriving rater may continue (session_resumable), or None."""
    held = session_held(study=study, browser_session=browser_session)
    return session_resumable(study=study, held=held, arrival=arrival)


def study_takes_new_raters(study: Study) -> bool:
    """Whether a new rater may start: the study is live and not full (stale sessions are
    expired first, so their places count as free)."""
    if study.status != Study.Status.LIVE:
        return False
    with transaction.atomic():
        return not study_full(study_lock(study))


def rater_arrive(
    *,
    study: Study,
    browser_session: MutableMapping[str, Any],
    arrival: Arrival,
    user_agent: str,
) -> RaterSession:
    """A rater who consented on the landing page: the session they may continue
    (session_resumable), or a new one if the study can take them; then this browser holds it.
    One transaction under the study's lock, stale sessions expired first. The researcher's
    live progress counts raters from their consent on, so it is told."""
    browser = browser_id(browser_session)
    with transaction.atomic():
        locked = study_lock(study)
        held = session_held(study=locked, browser_session=browser_session)
        session = session_resumable(study=locked, held=held, arrival=arrival)
        if session is None:
            session = _session_new(
                study=locked, arrival=arrival, browser=browser, user_agent=user_agent
            )
        else:
            session = _platform_ids_update(session, arrival, browser=browser)
    browser_session[rater_session_key(study.public_id)] = session.id
    progress_announce(study)
    return session


def new_session_refusal(study: Study, *, external_id: str, browser: str) -> SessionRefused | None:
    """Why this browser (or platform id) may not start a new session here, if it may not:
    it took part before under a session its cookie no longer names, or it took part in another
    study of the study's exclusive group."""
    if browser and RaterSession.objects.filter(study=study, browser_id=browser).exists():
        return SessionRefused(
            "other_rater",
            "This browser has already taken part in this study. Each person takes part once.",
        )
    if group_seen(study, external_id=external_id, browser=browser):
        return SessionRefused(
            "other_study",
            "You have already taken part in a related study. These studies need raters who "
            "have not seen the others, so this one cannot take you.",
        )
    return None


def _session_new(*, study: Study, arrival: Arrival, browser: str, user_agent: str) -> RaterSession:
    """A new session for this arrival, if the (locked) study is live, this browser has no
    session in it, the group allows the rater, and there is a place. A plain link rater
    without an id gets a random one."""
    if study.status != Study.Status.LIVE:
        raise ProtocolError("study_closed", "This study is not open at the moment.")
    if arrival.source not in RaterSession.Source.values:
        raise ProtocolError("bad_message", f"Unknown rater source {arrival.source!r}.")
    refused = new_session_refusal(study, external_id=arrival.external_id, browser=browser)
    if refused is not None:
        raise refused
    if study_full(study):
        raise ProtocolError(
            "study_full", "This study has all the raters it needs; thank you for your interest."
        )
    external_id = arrival.external_id.strip()[:200] or f"link-{secrets.token_hex(8)}"
    try:
        with transaction.atomic():
            return RaterSession.objects.create(
                study=study,
                external_id=external_id,
                source=arrival.source,
                user_agent=user_agent[:500],
                browser_id=browser,
                platform_study_id=arrival.platform_study_id[:200],
                platform_session_id=arrival.platform_session_id[:200],
                submit_to=arrival.submit_to[:200],
            )
    except IntegrityError:
        # The same browser, or the same platform id, started a session at this very moment
        # (a double click, two tabs): that one stands.
        mine = RaterSession.objects.filter(study=study, browser_id=browser).first()
        if mine is not None and (not arrival.external_id or mine.external_id == external_id):
            return mine
        raise SessionRefused(
            "started_elsewhere",
            f"This {_platform_name(arrival.source)} has already started this study in another "
            "browser. Please continue in the browser where you started it.",
        ) from None


def _platform_ids_update(session: RaterSession, arrival: Arrival, *, browser: str) -> RaterSession:
    """A continued session keeps up with its platform's ids (MTurk gives a new assignment for a
    new accept) and with the browser now holding it; an ended session keeps the ids it ended
    with, since its code and submission are settled."""
    if session.status in RaterSession.ENDED:
        return session
    platform = {
        "platform_study_id": arrival.platform_study_id[:200],
        "platform_session_id": arrival.platform_session_id[:200],
        "submit_to": arrival.submit_to[:200],
        "browser_id": browser,
    }
    changed = [
        name for name, value in platform.items() if value and getattr(session, name) != value
    ]
    for name in changed:
        setattr(session, name, platform[name])
    if changed:
        session.save(update_fields=changed)
    return session


def trials_total(session: RaterSession) -> int:
    """Every trial this rater answers if they complete the study: the study's, without the
    qualification when they keep one from the study's qualified pool."""
    study = session.study
    skipped = study.qualification_trials if session.qualification_from_id else 0
    return study.trials_per_rater - skipped


def task_begin(session: RaterSession) -> None:
    """The rater passed the qualification (or there is none, or they kept one): assign a model
    below its target and start the task; if every model has reached its target, the session
    ends with nothing more to do (no_place), and the rater leaves with the "full" outcome."""
    study_lock(session.study)
    try:
        session.model = model_assign(session)
    except NoPlace:
        session.status = RaterSession.Status.NO_PLACE
        session.finished_at = timezone.now()
        session.end_reason = "every model had its raters when the task would have begun"
        session.save(update_fields=["status", "finished_at", "end_reason"])
        return
    session.status = RaterSession.Status.IN_TASK
    session.save(update_fields=["model", "status"])
    block_create(session, kind=Block.Kind.TASK)


def session_begin(session: RaterSession) -> None:
    """A consented rater's first block: the qualification, or the task if there is none or the
    rater keeps a qualification passed in the study's qualified pool."""
    if session.study.qualification_trials:
        kept = pool_qualification(session)
        if kept is None:
            block_create(session, kind=Block.Kind.QUALIFICATION)
            session.status = RaterSession.Status.QUALIFYING
            session.save(update_fields=["status"])
            return
        session.qualification_from = kept
        session.save(update_fields=["qualification_from"])
    task_begin(session)


def block_finished(session: RaterSession, block: Block) -> list[dict[str, Any]]:
    """Move the session on once `block` is fully answered; returns messages to announce."""
    study = session.study
    messages: list[dict[str, Any]] = []
    if block.completed_at is None:
        block.completed_at = timezone.now()
        block.save(update_fields=["completed_at"])
    if block.kind == Block.Kind.QUALIFICATION:
        correct = Answer.objects.filter(trial__block=block, correct=True).count()
        session.qualification_correct = correct
        session.qualification_total = block.trial_count
        passed = correct >= study.qualification_pass * block.trial_count
        messages.append(
            {
                "type": "qualification",
                "passed": passed,
                "correct": correct,
                "total": block.trial_count,
            }
        )
        if passed:
            session.qualified_at = timezone.now()
            session.save(
                update_fields=["qualification_correct", "qualification_total", "qualified_at"]
            )
            task_begin(session)
        else:
            session.status = RaterSession.Status.FAILED_QUALIFICATION
            session.finished_at = timezone.now()
            session.save()
        return messages
    done_blocks = session.blocks.filter(kind=Block.Kind.TASK).count()
    if done_blocks < study.task_blocks[0]:
        block_create(session, kind=Block.Kind.TASK)
    else:
        session.status = RaterSession.Status.COMPLETED
        session.finished_at = timezone.now()
        session.save(update_fields=["status", "finished_at"])
        # The study's exclusion rules, on the answers as they now stand (off by default).
        rules_apply(session)
        if study.close_when_full and study_complete(study):
            Study.objects.filter(pk=study.pk, status=Study.Status.LIVE).update(
                status=Study.Status.CLOSED
            )
            study.status = Study.Status.CLOSED
    return messages
