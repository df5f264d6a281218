"""A rater's path through a study: start or resume a session, draw blocks of images, serve
each trial with the server-side staircase, and record answers exactly once.

Each public function takes plain values and returns the messages for the rater's browser
(see docs/protocol.md); none of them knows about sockets.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from experiments.models import Answer, Block, GenerativeModel, Image, RaterSession, Study, Trial
from hype.science.staircase import StaircaseRule, StaircaseState, staircase_start, staircase_step

TERMINAL = {
    RaterSession.Status.COMPLETED,
    RaterSession.Status.FAILED_QUALIFICATION,
    RaterSession.Status.EXCLUDED,
    RaterSession.Status.ABANDONED,
}
# Raters who count towards a model's quota when new raters are assigned.
COUNTED = [RaterSession.Status.IN_TASK, RaterSession.Status.COMPLETED]
DEFAULT_REFRESH_MS = 1000 / 60


class ProtocolError(Exception):
    """A request the server refuses; `code` is the error code of docs/protocol.md."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def as_message(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Measurements:
    """What the browser measured for one trial (None where it could not measure)."""

    rt_ms: float
    shown_ms: float | None = None
    mask_ms: float | None = None
    refresh_ms: float | None = None
    page_hidden: bool = False


def staircase_rule(study: Study) -> StaircaseRule:
    return StaircaseRule(
        run_length=study.staircase_run_length,
        step_down_ms=study.staircase_step_down_ms,
        step_up_ms=study.staircase_step_up_ms,
        start_ms=study.staircase_start_ms,
        floor_ms=study.staircase_floor_ms,
        ceiling_ms=study.staircase_ceiling_ms,
    )


def task_blocks(study: Study) -> tuple[int, int]:
    """(number of task blocks, trials per task block) for the study's method."""
    if study.method == Study.Method.INF:
        return 1, study.inf_trials
    return study.time_blocks, study.time_trials_per_block


def total_trials(study: Study) -> int:
    blocks, per_block = task_blocks(study)
    return study.qualification_trials + blocks * per_block


# --- Starting a session -----------------------------------------------------------------


def session_start(
    *,
    study: Study,
    external_id: str = "",
    source: str = RaterSession.Source.LINK,
    user_agent: str = "",
) -> RaterSession:
    """The rater's session in this study: the existing one for a returning external id,
    otherwise a new one. A plain link rater without an id gets a random one."""
    if study.status != Study.Status.LIVE:
        raise ProtocolError("study_closed", "This study is not open at the moment.")
    external_id = external_id.strip()[:200]
    if source not in RaterSession.Source.values:
        raise ProtocolError("bad_message", f"Unknown rater source {source!r}.")
    if not external_id:
        external_id = f"link-{secrets.token_hex(8)}"
    existing = RaterSession.objects.filter(study=study, external_id=external_id).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            return RaterSession.objects.create(
                study=study, external_id=external_id, source=source, user_agent=user_agent[:500]
            )
    except IntegrityError:
        # Two requests for one worker at once: the other one created the session.
        return RaterSession.objects.get(study=study, external_id=external_id)


# --- Messages ---------------------------------------------------------------------------


def _finished_message(session: RaterSession) -> dict[str, Any]:
    outcome = {
        RaterSession.Status.COMPLETED: "completed",
        RaterSession.Status.FAILED_QUALIFICATION: "failed_qualification",
        RaterSession.Status.EXCLUDED: "excluded",
        RaterSession.Status.ABANDONED: "excluded",
    }.get(session.status, "closed")
    message = {
        "type": "finished",
        "outcome": outcome,
        "redirect": reverse("experiments:rater_done", args=[session.study.public_id]),
    }
    if outcome == "completed":
        message["completion_code"] = session.completion_code
    return message


def _progress_message(session: RaterSession) -> dict[str, Any]:
    return {
        "type": "progress",
        "phase": _phase(session),
        "done": Answer.objects.filter(trial__session=session).count(),
        "total": total_trials(session.study),
    }


def _phase(session: RaterSession) -> str:
    if session.status in (RaterSession.Status.CONSENTED, RaterSession.Status.QUALIFYING):
        return "qualification" if session.study.qualification_trials else "task"
    return "task"


def _frames(ms: float, refresh_ms: float) -> int:
    return max(1, round(ms / refresh_ms))


def _trial_message(session: RaterSession, trial: Trial) -> dict[str, Any]:
    study = session.study
    block = trial.block
    refresh_ms = session.refresh_ms or DEFAULT_REFRESH_MS
    if block.timed and trial.requested_ms is None:
        # The exposure is fixed when the trial is first served, from the block's staircase.
        state = StaircaseState.from_dict(block.staircase_state)
        trial.requested_ms = state.exposure_ms
        trial.frames = _frames(state.exposure_ms, refresh_ms)
        trial.save(update_fields=["requested_ms", "frames"])
    masks: list[dict[str, Any]] = []
    if block.timed and study.mask_count:
        chosen = list(
            Image.objects.filter(study=study, role=Image.Role.MASK)
            .order_by("?")
            .values_list("public_id", flat=True)[: study.mask_count]
        )
        masks = [
            {
                "url": reverse("experiments:rater_mask", args=[public_id]),
                "frames": _frames(study.mask_ms, refresh_ms),
            }
            for public_id in chosen
        ]
    if block.kind == Block.Kind.TASK:
        number = block.index + (0 if study.qualification_trials else 1)
        of = task_blocks(study)[0]
    else:
        number, of = 1, 1
    return {
        "type": "trial",
        "trial": trial.public_id,
        "index": trial.index,
        "phase": "qualification" if block.kind == Block.Kind.QUALIFICATION else "task",
        "timed": block.timed,
        "exposure_ms": trial.requested_ms,
        "frames": trial.frames,
        "countdown": block.timed,
        "answer_only": trial.presented_at is not None,
        "image_url": reverse("experiments:rater_image", args=[trial.public_id]),
        "masks": masks,
        "block": {
            "number": number,
            "of": of,
            "position": trial.position,
            "length": block.trial_count,
            "first": trial.position == 0 and trial.presented_at is None,
        },
    }


# --- Blocks and images ------------------------------------------------------------------


def _draw(candidates, count: int, *, exclude: set[int], what: str) -> list[Image]:
    """`count` images from `candidates` the rater has not seen: the least shown first (so
    images collect answers evenly across raters), at random among equals."""
    pool = list(
        candidates.exclude(id__in=exclude)
        .annotate(shown=Count("trials"))
        .order_by("shown", "?")[:count]
    )
    if len(pool) < count:
        raise ProtocolError(
            "not_ready",
            f"The study does not have enough {what} images for the next block "
            f"(needs {count}, {len(pool)} left for this rater).",
        )
    return pool


def _split_evenly(total: int, parts: list[GenerativeModel]) -> dict[int, int]:
    # Equal shares for every model; the remainder goes to models chosen at random.
    base, extra = divmod(total, len(parts))
    lucky = set(random.sample(range(len(parts)), extra))
    return {model.id: base + (i in lucky) for i, model in enumerate(parts)}


def _block_create(session: RaterSession, *, kind: str) -> Block:
    study = session.study
    seen = set(Trial.objects.filter(session=session).values_list("image_id", flat=True))
    index = session.blocks.count()
    if kind == Block.Kind.QUALIFICATION:
        count, timed = study.qualification_trials, False
        role = Image.Role.QUALIFICATION
        if not Image.objects.filter(study=study, role=role).exists():
            role = Image.Role.TASK
    else:
        count = task_blocks(study)[1]
        timed = study.method == Study.Method.TIME
        role = Image.Role.TASK
    n_real = round(count * study.real_fraction)
    images = Image.objects.filter(study=study, role=role)
    chosen = _draw(images.filter(is_real=True), n_real, exclude=seen, what="real")
    if kind == Block.Kind.QUALIFICATION:
        models = list(study.models.order_by("id"))
        if not models:
            raise ProtocolError("not_ready", "The study has no generative model yet.")
        for model_id, n in _split_evenly(count - n_real, models).items():
            chosen += _draw(images.filter(model_id=model_id), n, exclude=seen, what="fake")
    else:
        chosen += _draw(
            images.filter(model=session.model), count - n_real, exclude=seen, what="fake"
        )
    random.shuffle(chosen)

    block = Block.objects.create(
        session=session,
        index=index,
        kind=kind,
        timed=timed,
        trial_count=count,
        staircase_state=staircase_start(staircase_rule(study)).to_dict() if timed else None,
    )
    first_index = Trial.objects.filter(session=session).count()
    Trial.objects.bulk_create(
        Trial(
            session=session,
            block=block,
            index=first_index + position,
            position=position,
            image=image,
            is_real=image.is_real,
        )
        for position, image in enumerate(chosen)
    )
    return block


def _model_assign(session: RaterSession) -> GenerativeModel:
    """The model with the fewest raters (in task or completed); ties to the oldest model."""
    # Locking the study row serialises assignments, so two raters starting together are
    # counted one after the other.
    Study.objects.select_for_update().get(pk=session.study_id)
    model = (
        GenerativeModel.objects.filter(study_id=session.study_id)
        .annotate(raters=Count("rater_sessions", filter=Q(rater_sessions__status__in=COUNTED)))
        .order_by("raters", "id")
        .first()
    )
    if model is None:
        raise ProtocolError("not_ready", "The study has no generative model yet.")
    return model


def _task_begin(session: RaterSession) -> None:
    session.model = _model_assign(session)
    session.status = RaterSession.Status.IN_TASK
    session.save(update_fields=["model", "status"])
    _block_create(session, kind=Block.Kind.TASK)


def trial_current(session: RaterSession) -> Trial | None:
    """The trial the rater is on: their first unanswered one."""
    return (
        Trial.objects.filter(session=session, answer__isnull=True)
        .select_related("block")
        .order_by("index")
        .first()
    )


def _locked_session(session_id: int) -> RaterSession:
    try:
        return RaterSession.objects.select_for_update().select_related("study").get(pk=session_id)
    except RaterSession.DoesNotExist:
        raise ProtocolError("not_your_trial", "This rater session does not exist.") from None


def _session_begin(session: RaterSession) -> None:
    if session.study.qualification_trials:
        _block_create(session, kind=Block.Kind.QUALIFICATION)
        session.status = RaterSession.Status.QUALIFYING
        session.save(update_fields=["status"])
    else:
        _task_begin(session)


def _guarded(step, session: RaterSession, *args) -> list[dict[str, Any]]:
    """Run a step that creates blocks in a savepoint: if the study cannot serve it (too few
    images), that step alone is undone and reported, and the answer that led to it stays."""
    snapshot = (session.status, session.model_id)
    try:
        with transaction.atomic():
            return step(session, *args) or []
    except ProtocolError as error:
        session.status, session.model_id = snapshot
        return [error.as_message()]


def _next_messages(session: RaterSession) -> list[dict[str, Any]]:
    """The trial the rater should see next (creating blocks as needed), or the end."""
    if session.status in TERMINAL or session.study.status != Study.Status.LIVE:
        return [_finished_message(session)]
    if session.status == RaterSession.Status.CONSENTED:
        errors = _guarded(_session_begin, session)
        if errors:
            return errors
    trial = trial_current(session)
    if trial is None:
        # Every trial so far is answered but the session is not over: moving on failed
        # earlier (for instance, the images ran out), so try again now.
        messages = _guarded(_after_block, session, session.blocks.order_by("-index").first())
        if any(m["type"] == "error" for m in messages):
            return messages
        if session.status in TERMINAL:
            return [*messages, _finished_message(session)]
        trial = trial_current(session)
    return [_trial_message(session, trial)]


def _after_block(session: RaterSession, block: Block) -> list[dict[str, Any]]:
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
            _task_begin(session)
        else:
            session.status = RaterSession.Status.FAILED_QUALIFICATION
            session.finished_at = timezone.now()
            session.save()
        return messages
    done_blocks = session.blocks.filter(kind=Block.Kind.TASK).count()
    if done_blocks < task_blocks(study)[0]:
        _block_create(session, kind=Block.Kind.TASK)
    else:
        session.status = RaterSession.Status.COMPLETED
        session.finished_at = timezone.now()
        session.save(update_fields=["status", "finished_at"])
    return messages


# --- The protocol's three requests ------------------------------------------------------


@transaction.atomic
def session_hello(
    *,
    session_id: int,
    refresh_ms: float,
    screen_width: int | None = None,
    screen_height: int | None = None,
    device_pixel_ratio: float | None = None,
) -> list[dict[str, Any]]:
    """A (re)connected browser: record its display, then send the state and next trial."""
    session = _locked_session(session_id)
    session.refresh_ms = refresh_ms
    session.screen_width = screen_width
    session.screen_height = screen_height
    session.device_pixel_ratio = device_pixel_ratio
    session.save(
        update_fields=["refresh_ms", "screen_width", "screen_height", "device_pixel_ratio"]
    )
    study = session.study
    hello = {
        "type": "session",
        "phase": _phase(session),
        "done": Answer.objects.filter(trial__session=session).count(),
        "total": total_trials(study),
        "settings": {
            "feedback": study.feedback,
            "countdown_ms": study.countdown_step_ms,
            "real_fraction": study.real_fraction,
            "keys": {"fake": "f", "real": "j"},
        },
    }
    return [hello, *_next_messages(session)]


def _owned_trial(session: RaterSession, trial_public_id: str) -> Trial:
    trial = Trial.objects.filter(public_id=trial_public_id).select_related("block").first()
    if trial is None or trial.session_id != session.id:
        raise ProtocolError("not_your_trial", "That trial is not one of yours.")
    return trial


@transaction.atomic
def trial_presented(*, session_id: int, trial_public_id: str) -> list[dict[str, Any]]:
    """The image reached the rater's screen: from now on it is never served again."""
    session = _locked_session(session_id)
    trial = _owned_trial(session, trial_public_id)
    if session.status in TERMINAL:
        raise ProtocolError("session_over", "This session has finished.")
    current = trial_current(session)
    if current is None or current.id != trial.id:
        raise ProtocolError("not_current_trial", "That is not the trial being asked.")
    if trial.presented_at is None:
        trial.presented_at = timezone.now()
        trial.save(update_fields=["presented_at"])
    return []


def _flags(trial: Trial, measured: Measurements) -> list[str]:
    flags = []
    if measured.page_hidden:
        flags.append("page_hidden")
    if trial.presented_at is None:
        flags.append("presentation_not_reported")
    if trial.block.timed:
        if measured.shown_ms is None:
            flags.append("no_timing")
        elif trial.frames and measured.refresh_ms:
            expected = trial.frames * measured.refresh_ms
            if abs(measured.shown_ms - expected) > measured.refresh_ms:
                flags.append("timing_off")
    return flags


@transaction.atomic
def response_record(
    *, session_id: int, trial_public_id: str, choice: str, measured: Measurements
) -> list[dict[str, Any]]:
    """Store the answer to the current trial (once), step the staircase, serve what's next.

    A second answer to an answered trial changes nothing and is acknowledged as a duplicate,
    so a browser may resend freely after a dropped connection.
    """
    session = _locked_session(session_id)
    trial = _owned_trial(session, trial_public_id)
    if Answer.objects.filter(trial=trial).exists():
        return [{"type": "ack", "trial": trial.public_id, "duplicate": True}]
    if session.status in TERMINAL:
        raise ProtocolError("session_over", "This session has finished.")
    if session.study.status != Study.Status.LIVE:
        raise ProtocolError("study_closed", "This study has closed; the answer was not stored.")
    current = trial_current(session)
    if current is None or current.id != trial.id:
        raise ProtocolError("not_current_trial", "That is not the trial being asked.")
    if trial.block.timed and trial.requested_ms is None:
        raise ProtocolError("not_current_trial", "That trial has not been shown yet.")

    correct = (choice == Answer.Choice.REAL) == trial.is_real
    Answer.objects.create(
        trial=trial,
        response=choice,
        correct=correct,
        rt_ms=measured.rt_ms,
        shown_ms=measured.shown_ms,
        mask_ms=measured.mask_ms,
        refresh_ms=measured.refresh_ms,
        page_hidden=measured.page_hidden,
        flags=_flags(trial, measured),
    )
    block = trial.block
    if block.timed:
        state = StaircaseState.from_dict(block.staircase_state)
        if state.exposure_ms != trial.requested_ms:
            raise RuntimeError(
                f"staircase at {state.exposure_ms} ms but trial {trial.index} showed "
                f"{trial.requested_ms} ms"
            )
        block.staircase_state = staircase_step(
            staircase_rule(session.study), state, correct=correct
        ).to_dict()
        block.save(update_fields=["staircase_state"])

    messages: list[dict[str, Any]] = [{"type": "ack", "trial": trial.public_id, "duplicate": False}]
    if session.study.feedback:
        messages.append({"type": "feedback", "trial": trial.public_id, "correct": correct})
    if trial.position + 1 == block.trial_count:
        moved_on = _guarded(_after_block, session, block)
        if any(m["type"] == "error" for m in moved_on):
            return [*messages, _progress_message(session), *moved_on]
        messages += moved_on
    messages.append(_progress_message(session))
    messages += _next_messages(session)
    return messages
