"""The rater protocol's three requests: hello (a browser (re)connects), presented (the image
reached the screen) and answer (stored once, the staircase stepped). Each takes plain values
and returns the messages for the rater's browser (docs/protocol.md); none knows about sockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from experiments.models import (
    RECRUITING_FIELDS,
    Answer,
    Block,
    RaterSession,
    Study,
    Trial,
)
from experiments.rating.blocks import masks_draw
from experiments.rating.display import display_settings
from experiments.rating.expiry import session_expire_if_idle
from experiments.rating.lifecycle import (
    block_finished,
    session_begin,
    session_outcome,
    trials_total,
)
from experiments.rating.messages import (
    AnswerMessage,
    Hello,
    Measurements,
    Presented,
    ProtocolError,
)
from experiments.rating.statements import CompiledGet

# DEFAULT_REFRESH_MS: the refresh interval frames are counted at when the browser could not
# measure its own (its answers are then flagged refresh_unmeasured).
from hype.science.frames import DEFAULT_REFRESH_MS, frames_for
from hype.science.staircase import StaircaseState, staircase_step

# The keys a rater answers with: the landing page and the task page show them, and the
# browser learns them from the session message (it holds no default of its own).
ANSWER_KEYS = {"fake": "f", "real": "j"}


# --- Messages ---------------------------------------------------------------------------


def rater_settings(study: Study) -> dict[str, Any]:
    """What the rater's page needs to know of the study to run its trials: the task page
    renders it and every session message repeats it, so the browser holds no default."""
    # Whether an answer is told correct or not is decided per answer by the server (its
    # feedback message): the browser shows what arrives and needs no setting for it.
    return {
        "countdown_ms": study.countdown_step_ms,
        "real_fraction": study.real_fraction,
        "keys": ANSWER_KEYS,
        # How large the images appear (the browser rounds it to whole device pixels).
        "display": display_settings(study),
    }


def _finished_message(session: RaterSession) -> dict[str, Any]:
    outcome = session_outcome(session)
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
        "done": session.answered_count,
        "total": trials_total(session),
    }


def _phase(session: RaterSession) -> str:
    if session.status in (RaterSession.Status.CONSENTED, RaterSession.Status.QUALIFYING):
        return "qualification" if session.study.qualification_trials else "task"
    return "task"


def _trial_message(session: RaterSession, trial: Trial) -> dict[str, Any]:
    """The trial for the browser. Writes nothing: a timed trial's exposure is the block's
    staircase until the image is presented, and is fixed then (trial_presented)."""
    study = session.study
    block = trial.block
    refresh_ms = session.refresh_ms or DEFAULT_REFRESH_MS
    exposure_ms, frames = trial.requested_ms, trial.frames
    if block.timed and trial.presented_at is None:
        exposure_ms = StaircaseState.from_dict(block.staircase_state).exposure_ms
        frames = frames_for(exposure_ms, refresh_ms)
    masks: list[dict[str, Any]] = []
    if block.timed and study.mask_count:
        if not trial.masks:
            # A trial drawn before its block drew masks (or before the study had any).
            trial.masks = masks_draw(study, 1)[0]
            trial.save(update_fields=["masks"])
        masks = [
            {
                "url": reverse("experiments:rater_mask", args=[public_id]),
                "frames": frames_for(study.mask_ms, refresh_ms),
            }
            for public_id in trial.masks
        ]
    if block.kind == Block.Kind.TASK:
        number = block.index + (0 if study.qualification_trials else 1)
        of = study.task_blocks[0]
    else:
        number, of = 1, 1
    return {
        "type": "trial",
        "trial": trial.public_id,
        "index": trial.index,
        "phase": "qualification" if block.kind == Block.Kind.QUALIFICATION else "task",
        "timed": block.timed,
        "exposure_ms": exposure_ms,
        "frames": frames,
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


def trial_current(session: RaterSession) -> Trial | None:
    """The trial the rater is on: their first unanswered one, which the session keeps
    (RaterSession.current_trial). Without it (every trial answered, or a session built outside
    the protocol) it is looked for."""
    if session.current_trial_id is not None:
        return session.current_trial
    return (
        Trial.objects.filter(session=session, answer__isnull=True)
        .select_related("block")
        .order_by("index")
        .first()
    )


def trial_is_current(session: RaterSession, trial: Trial) -> bool:
    """Whether `trial` is the one the rater is on, without reading it again when the session
    keeps its current trial."""
    if session.current_trial_id is not None:
        return session.current_trial_id == trial.id
    current = trial_current(session)
    return current is not None and current.id == trial.id


# Study fields the protocol's three requests never read (see _locked_session): its name, its
# recruiting (texts, pay, codes, platform ids) and its statistics.
STUDY_FIELDS_NOT_RATED = (
    "name",
    "created_at",
    *RECRUITING_FIELDS,
    "bootstrap_resamples",
    "confidence",
    "bootstrap_seed",
)


# The study's texts, pay, completion codes, platform ids and statistics are not the rater
# protocol's: left out, the statement is a quarter narrower to build and read on every message.
# (Reading one would cost a statement: the budgets in
# tests/experiments/rating/test_query_budget.py are exact.)
_SESSION_LOCKED = CompiledGet(
    lambda: (
        RaterSession.objects.select_for_update(of=("self",))
        .select_related("study", "current_trial__block")
        .defer(*(f"study__{name}" for name in STUDY_FIELDS_NOT_RATED))
    )
)


def _locked_session(session_id: int) -> RaterSession:
    """The session, locked until the transaction ends, with its study and its current trial
    and that trial's block: one statement (only the session's row is locked), compiled once
    per thread."""
    try:
        session = _SESSION_LOCKED.get(session_id)
    except RaterSession.DoesNotExist:
        raise ProtocolError("not_your_trial", "This rater session does not exist.") from None
    # A rater back after the idle limit finds the session over (experiments.rating.expiry).
    session_expire_if_idle(session)
    return session


def _named_trial(session: RaterSession, trial_public_id: str) -> tuple[Trial, Trial | None]:
    """The trial a message names, and the rater's current trial: no statement when it is the
    current one, as it nearly always is."""
    current = trial_current(session)
    if current is not None and current.public_id == trial_public_id:
        return current, current
    return _owned_trial(session, trial_public_id), current


def _guarded(step, session: RaterSession, *args) -> list[dict[str, Any]]:
    """Run a step that creates blocks in a savepoint: if the study cannot serve it (too few
    images), that step alone is undone and reported, and the answer that led to it stays."""
    snapshot = (session.status, session.model_id, session.current_trial_id)
    try:
        with transaction.atomic():
            return step(session, *args) or []
    except ProtocolError as error:
        session.status, session.model_id, session.current_trial_id = snapshot
        return [error.as_message()]


def _next_messages(session: RaterSession) -> list[dict[str, Any]]:
    """The trial the rater should see next (creating blocks as needed), or the end."""
    if session.status in RaterSession.ENDED or session.study.status != Study.Status.LIVE:
        return [_finished_message(session)]
    if session.status == RaterSession.Status.CONSENTED:
        errors = _guarded(session_begin, session)
        if errors:
            return errors
        if session.status in RaterSession.ENDED:
            # No place was left for the task (a kept qualification goes straight to it).
            return [_finished_message(session)]
    trial = trial_current(session)
    if trial is None:
        # Every trial so far is answered but the session is not over: moving on failed
        # earlier (for instance, the images ran out), so try again now.
        messages = _guarded(block_finished, session, session.blocks.order_by("-index").first())
        if any(m["type"] == "error" for m in messages):
            return messages
        if session.status in RaterSession.ENDED:
            return [*messages, _finished_message(session)]
        trial = trial_current(session)
    return [_trial_message(session, trial)]


# --- The protocol's three requests ------------------------------------------------------


@transaction.atomic
def session_hello(
    *,
    session_id: int,
    refresh_ms: float | None,
    screen_width: int | None = None,
    screen_height: int | None = None,
    device_pixel_ratio: float | None = None,
) -> list[dict[str, Any]]:
    """A (re)connected browser: record its display, then send the state and next trial.
    refresh_ms is None when the browser could not measure its refresh rate: frames are then
    counted at 60 Hz and the answers flagged refresh_unmeasured."""
    session = _locked_session(session_id)
    session.refresh_ms = refresh_ms
    session.screen_width = screen_width
    session.screen_height = screen_height
    session.device_pixel_ratio = device_pixel_ratio
    session.save(
        update_fields=["refresh_ms", "screen_width", "screen_height", "device_pixel_ratio"]
    )
    study = session.study
    # What comes next first: a new session's first block decides its phase and its length (a
    # rater who keeps a qualified pool's qualification goes straight to the task).
    following = _next_messages(session)
    hello = {
        "type": "session",
        "phase": _phase(session),
        "done": session.answered_count,
        "total": trials_total(session),
        "settings": rater_settings(study),
    }
    return [hello, *following]


def _owned_trial(session: RaterSession, trial_public_id: str) -> Trial:
    trial = Trial.objects.filter(public_id=trial_public_id).select_related("block").first()
    if trial is None or trial.session_id != session.id:
        raise ProtocolError("not_your_trial", "That trial is not one of yours.")
    return trial


@transaction.atomic
def trial_presented(*, session_id: int, trial_public_id: str) -> list[dict[str, Any]]:
    """The image reached the rater's screen: from now on it is never served again, and a timed
    trial's exposure is fixed at what the browser was sent (the block's staircase)."""
    session = _locked_session(session_id)
    trial, current = _named_trial(session, trial_public_id)
    if session.status in RaterSession.ENDED:
        raise ProtocolError("session_over", "This session has finished.")
    if trial.presented_at is not None:
        # Only the first counts; a browser resends it before a held answer (docs/protocol.md).
        return []
    if current is None or current.id != trial.id:
        if Answer.objects.filter(trial=trial).exists():
            return []  # answered already (its ack was lost): nothing left to mark
        raise ProtocolError("not_current_trial", "That is not the trial being asked.")
    trial.presented_at = timezone.now()
    fields = ["presented_at"]
    if trial.block.timed:
        trial.requested_ms = StaircaseState.from_dict(trial.block.staircase_state).exposure_ms
        trial.frames = frames_for(trial.requested_ms, session.refresh_ms or DEFAULT_REFRESH_MS)
        fields += ["requested_ms", "frames"]
    trial.save(update_fields=fields)
    return []


# The thresholds of the flags below (and of the exclusion rules built on them), in one place:
# an answer faster than FAST_ANSWER_MS, the SAME_KEY_RUN-th same answer in a row, and an answer
# more than IDLE_GAP_S after the one before it (docs/raters.md).
FAST_ANSWER_MS = 150
SAME_KEY_RUN = 10
IDLE_GAP_S = 60
# Every flag an answer can carry, and what it means (the researcher's rater page and the
# exports show these; docs/raters.md, "Quality flags and exclusions").
FLAG_NOTES = {
    "page_hidden": "the page lost visibility during the trial",
    "presentation_not_reported": "the browser never reported showing the image (untimed)",
    "no_timing": "a timed trial without a measured on-screen duration",
    "timing_off": "shown more than one frame longer or shorter than asked",
    "refresh_unmeasured": "the browser could not measure the display's refresh rate: frames "
    "were counted at 60 Hz",
    "fast": f"answered in less than {FAST_ANSWER_MS} ms (rt_ms)",
    "same_key": f"the same answer {SAME_KEY_RUN} or more times in a row, up to this one",
    "idle_gap": f"given more than {IDLE_GAP_S} s after the previous answer (or after its "
    "block began)",
}


def _flags(
    trial: Trial,
    measured: Measurements,
    *,
    choice: str,
    session: RaterSession,
    now,
) -> list[str]:
    """The answer's quality flags, from the trial, what the browser measured, and what the
    (locked) session keeps of the answers before this one: the latest answer, how many in a
    row were the same, and when it was given."""
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
    if session.refresh_ms is None:
        flags.append("refresh_unmeasured")
    if measured.rt_ms < FAST_ANSWER_MS:
        flags.append("fast")
    if session.last_choice == choice and session.same_choice_run >= SAME_KEY_RUN - 1:
        flags.append("same_key")
    # Trials are answered in order, so the answer before one that is not its block's first is
    # in the same block.
    if trial.position > 0 and session.last_answered_at is not None:
        since = session.last_answered_at
    else:
        since = trial.block.started_at
    if (now - since).total_seconds() > IDLE_GAP_S:
        flags.append("idle_gap")
    return flags


def feedback_given(study: Study, block: Block) -> bool:
    """Whether an answer in this block is followed by a feedback message: after every answer
    (the paper's HYPE_time), in the qualification only, or never (Study.feedback)."""
    if study.feedback == Study.Feedback.EVERY_TRIAL:
        return True
    if study.feedback == Study.Feedback.QUALIFICATION:
        return block.kind == Block.Kind.QUALIFICATION
    return False


@transaction.atomic
def response_record(
    *, session_id: int, trial_public_id: str, choice: str, measured: Measurements
) -> list[dict[str, Any]]:
    """Store the answer to the current trial (once), step the staircase, serve what's next.

    A second answer to an answered trial changes nothing and is acknowledged as a duplicate,
    so a browser may resend freely after a dropped connection.
    """
    session = _locked_session(session_id)
    trial, current = _named_trial(session, trial_public_id)
    # The current trial is unanswered by definition; any other may be a resent answer.
    if trial is not current and Answer.objects.filter(trial=trial).exists():
        return [{"type": "ack", "trial": trial.public_id, "duplicate": True}]
    if session.status in RaterSession.ENDED:
        raise ProtocolError("session_over", "This session has finished.")
    if session.study.status != Study.Status.LIVE:
        raise ProtocolError("study_closed", "This study has closed; the answer was not stored.")
    if trial is not current:
        raise ProtocolError("not_current_trial", "That is not the trial being asked.")
    if trial.block.timed and trial.presented_at is None:
        # A timed image's exposure is only known once it was on screen: an answer to one the
        # browser never reported showing measures nothing, so it is refused (docs/protocol.md).
        raise ProtocolError(
            "not_presented",
            "That image was never reported shown (send presented first); the answer was "
            "not stored.",
        )

    correct = (choice == Answer.Choice.REAL) == trial.is_real
    answer = Answer.objects.create(
        trial=trial,
        response=choice,
        correct=correct,
        rt_ms=measured.rt_ms,
        shown_ms=measured.shown_ms,
        mask_ms=measured.mask_ms,
        refresh_ms=measured.refresh_ms,
        page_hidden=measured.page_hidden,
        flags=_flags(trial, measured, choice=choice, session=session, now=timezone.now()),
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
            session.study.staircase_rule(), state, correct=correct
        ).to_dict()
        block.save(update_fields=["staircase_state"])

    block_over = trial.position + 1 == block.trial_count
    if block_over:
        session.current_trial = None  # the next block, if any, brings it (block_create)
    else:
        following = Trial.objects.get(session=session, index=trial.index + 1)
        following.block = block
        session.current_trial = following
    session.same_choice_run = session.same_choice_run + 1 if session.last_choice == choice else 1
    session.last_choice = choice
    session.answered_count += 1  # the session's row is locked: no one else counts now
    # The idle limit counts from the latest answer (experiments.rating.expiry).
    session.last_answered_at = session.last_activity_at = answer.answered_at
    session.save(
        update_fields=[
            "current_trial",
            "same_choice_run",
            "last_choice",
            "answered_count",
            "last_answered_at",
            "last_activity_at",
        ]
    )

    messages: list[dict[str, Any]] = [{"type": "ack", "trial": trial.public_id, "duplicate": False}]
    if feedback_given(session.study, block):
        messages.append({"type": "feedback", "trial": trial.public_id, "correct": correct})
    if block_over:
        moved_on = _guarded(block_finished, session, block)
        if any(m["type"] == "error" for m in moved_on):
            return [*messages, _progress_message(session), *moved_on]
        messages += moved_on
    messages.append(_progress_message(session))
    messages += _next_messages(session)
    return messages


# --- One message from the socket --------------------------------------------------------


@dataclass(frozen=True)
class Replies:
    """What one message from the browser led to: the messages to send back, whether the
    connection has now said hello, and whether the study's dashboards should hear of it (an
    answer was stored)."""

    messages: list[dict[str, Any]]
    greeted: bool
    progress_changed: bool = False


def message_handle(
    *, session_id: int, message: Hello | Presented | AnswerMessage, greeted: bool
) -> Replies:
    """The service behind the rater socket, for one validated message: hello first on every
    connection (a hello counts as said even if it is refused), then presented and answer
    messages, each through its request above. A refused message gets its error back, naming
    the trial it was about, so the browser knows which of its messages (a resent answer, a
    `presented`) the error concerns."""
    greeted = greeted or isinstance(message, Hello)
    try:
        if isinstance(message, Hello):
            replies = session_hello(
                session_id=session_id,
                refresh_ms=message.refresh_ms,
                screen_width=message.screen_width,
                screen_height=message.screen_height,
                device_pixel_ratio=message.device_pixel_ratio,
            )
            return Replies(messages=replies, greeted=greeted)
        if not greeted:
            raise ProtocolError("hello_first", "Say hello first.")
        if isinstance(message, Presented):
            replies = trial_presented(session_id=session_id, trial_public_id=message.trial)
            return Replies(messages=replies, greeted=greeted)
        replies = response_record(
            session_id=session_id,
            trial_public_id=message.trial,
            choice=message.choice,
            measured=message.measured,
        )
    except ProtocolError as error:
        return Replies(messages=[error.as_message(trial=message.trial)], greeted=greeted)
    stored = any(r["type"] == "ack" and not r["duplicate"] for r in replies)
    return Replies(messages=replies, greeted=greeted, progress_changed=stored)
