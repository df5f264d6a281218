"""A rater session's life: started (or resumed) from the study link, then consented ->
qualifying -> in task -> completed, or failed qualification; the statuses that end a session
and the outcome a finished rater is shown."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from experiments.models import Answer, Block, RaterSession, Study
from experiments.rating.blocks import block_create, model_assign, study_full
from experiments.rating.messages import ProtocolError
from experiments.recruiting.arrival import Arrival
from experiments.services.progress import progress_announce

# What a finished (or stopped) rater is told, by the status their session ended in.
OUTCOMES = {
    RaterSession.Status.COMPLETED: "completed",
    RaterSession.Status.FAILED_QUALIFICATION: "failed_qualification",
    RaterSession.Status.EXCLUDED: "excluded",
    RaterSession.Status.ABANDONED: "excluded",
}


def rater_session_key(study_public_id: str) -> str:
    """Where the rater's session id lives in their browser's (cookie-backed) Django session."""
    return f"rater:{study_public_id}"


def session_held(*, study: Study, browser_session: Mapping[str, Any]) -> RaterSession | None:
    """The rater session of this study that this browser holds, if any."""
    session_id = browser_session.get(rater_session_key(study.public_id))
    if session_id is None:
        return None
    return RaterSession.objects.filter(pk=session_id, study=study).first()


def session_outcome(session: RaterSession) -> str:
    """completed, failed_qualification or excluded once the session has ended; otherwise
    in_progress while the study is live, and closed when it is not."""
    if session.status in OUTCOMES:
        return OUTCOMES[session.status]
    return "in_progress" if session.study.status == Study.Status.LIVE else "closed"


def arrival_session(
    *, study: Study, browser_session: Mapping[str, Any], arrival: Arrival
) -> RaterSession | None:
    """The session an arriving rater already has in this study: the one this browser holds,
    or the one of the platform id the link names."""
    held = session_held(study=study, browser_session=browser_session)
    if held is not None and not arrival.external_id:
        return held
    if arrival.external_id:
        return RaterSession.objects.filter(study=study, external_id=arrival.external_id).first()
    return held


def study_takes_new_raters(study: Study) -> bool:
    """Whether a new rater may start: the study is live and not full."""
    return study.status == Study.Status.LIVE and not study_full(study)


def rater_arrive(
    *,
    study: Study,
    held: RaterSession | None,
    arrival: Arrival,
    user_agent: str,
) -> RaterSession:
    """A rater who consented on the landing page: the session this browser holds when the link
    names no rater, otherwise the named rater's session (resumed or new). The researcher's
    live progress counts raters from their consent on, so it is told."""
    if held is not None and not arrival.external_id:
        session = held
    else:
        session = session_start(
            study=study,
            external_id=arrival.external_id,
            source=arrival.source,
            user_agent=user_agent,
            platform_study_id=arrival.platform_study_id,
            platform_session_id=arrival.platform_session_id,
            submit_to=arrival.submit_to,
        )
    progress_announce(study)
    return session


def session_start(
    *,
    study: Study,
    external_id: str = "",
    source: str = RaterSession.Source.LINK,
    user_agent: str = "",
    platform_study_id: str = "",
    platform_session_id: str = "",
    submit_to: str = "",
) -> RaterSession:
    """The rater's session in this study: the existing one for a returning external id,
    otherwise a new one, if the study is live and not full. A plain link rater without an id
    gets a random one. The platform's ids are stored with it; a returning worker whose session
    is still under way keeps the latest (MTurk gives a new assignment for a new accept)."""
    if study.status != Study.Status.LIVE:
        raise ProtocolError("study_closed", "This study is not open at the moment.")
    external_id = external_id.strip()[:200]
    if source not in RaterSession.Source.values:
        raise ProtocolError("bad_message", f"Unknown rater source {source!r}.")
    if not external_id:
        external_id = f"link-{secrets.token_hex(8)}"
    platform = {
        "platform_study_id": platform_study_id[:200],
        "platform_session_id": platform_session_id[:200],
        "submit_to": submit_to[:200],
    }
    existing = RaterSession.objects.filter(study=study, external_id=external_id).first()
    if existing:
        return _platform_ids_update(existing, platform)
    if study_full(study):
        raise ProtocolError(
            "study_full", "This study has all the raters it needs; thank you for your interest."
        )
    try:
        with transaction.atomic():
            return RaterSession.objects.create(
                study=study,
                external_id=external_id,
                source=source,
                user_agent=user_agent[:500],
                **platform,
            )
    except IntegrityError:
        # Two requests for one worker at once: the other one created the session.
        return RaterSession.objects.get(study=study, external_id=external_id)


def _platform_ids_update(session: RaterSession, platform: dict[str, str]) -> RaterSession:
    # An ended session keeps the ids it ended with: its code and submission are settled.
    if session.status in RaterSession.ENDED:
        return session
    changed = [
        name for name, value in platform.items() if value and getattr(session, name) != value
    ]
    for name in changed:
        setattr(session, name, platform[name])
    if changed:
        session.save(update_fields=changed)
    return session


def task_begin(session: RaterSession) -> None:
    """The rater passed the qualification (or there is none): assign a model, start the task."""
    session.model = model_assign(session)
    session.status = RaterSession.Status.IN_TASK
    session.save(update_fields=["model", "status"])
    block_create(session, kind=Block.Kind.TASK)


def session_begin(session: RaterSession) -> None:
    """A consented rater's first block: the qualification, or the task if there is none."""
    if session.study.qualification_trials:
        block_create(session, kind=Block.Kind.QUALIFICATION)
        session.status = RaterSession.Status.QUALIFYING
        session.save(update_fields=["status"])
    else:
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
            session.save(update_fields=["qualification_correct", "qualification_total"])
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
    return messages
