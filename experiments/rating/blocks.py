"""The images of a block and the model of a rater: each block draws images the rater has not
seen (the least shown first), half real; a rater who reaches the task is given the model below
its target with the fewest places held, and nobody is given a model that has reached it."""

from __future__ import annotations

import heapq
import random

from django.db.models import Count, F, Q

from experiments.models import Block, GenerativeModel, Image, RaterSession, Study, Trial
from experiments.rating.expiry import sessions_expire
from experiments.rating.messages import ProtocolError
from hype.science.staircase import staircase_start

# Raters who hold a place of their model: those in task and those who completed it.
HELD = [RaterSession.Status.IN_TASK, RaterSession.Status.COMPLETED]


def _draw(candidates, count: int, *, exclude: set[int], what: str) -> list[tuple[int, bool]]:
    """(id, is_real) of `count` images from `candidates` the rater has not seen: the least shown
    first (so images collect answers evenly across raters), at random among equals. Reads each
    candidate's id and shown counter, never the trials: the cost follows the images of one
    model, not the answers the study has collected."""
    shown = [
        (shown_count, random.random(), image_id, is_real)
        for image_id, shown_count, is_real in candidates.values_list("id", "shown_count", "is_real")
        if image_id not in exclude
    ]
    if len(shown) < count:
        raise ProtocolError(
            "not_ready",
            f"The study does not have enough {what} images for the next block "
            f"(needs {count}, {len(shown)} left for this rater).",
        )
    return [(image_id, is_real) for _, _, image_id, is_real in heapq.nsmallest(count, shown)]


def masks_draw(study: Study, trials: int) -> list[list[str]]:
    """Each timed trial's backward masks, `study.mask_count` distinct ones drawn at random
    from the study's masks: one read of their ids for the whole block."""
    if not study.mask_count:
        return [[] for _ in range(trials)]
    every_mask = list(
        Image.objects.filter(study=study, role=Image.Role.MASK)
        .order_by("id")
        .values_list("public_id", flat=True)
    )
    count = min(study.mask_count, len(every_mask))
    return [random.sample(every_mask, count) for _ in range(trials)]


def _split_evenly(total: int, parts: list[GenerativeModel]) -> dict[int, int]:
    # Equal shares for every model; the remainder goes to models chosen at random.
    base, extra = divmod(total, len(parts))
    lucky = set(random.sample(range(len(parts)), extra))
    return {model.id: base + (i in lucky) for i, model in enumerate(parts)}


def block_create(session: RaterSession, *, kind: str) -> Block:
    study = session.study
    seen = set(Trial.objects.filter(session=session).values_list("image_id", flat=True))
    index = session.blocks.count()
    if kind == Block.Kind.QUALIFICATION:
        count, timed = study.qualification_trials, False
        role = Image.Role.QUALIFICATION
        if not Image.objects.filter(study=study, role=role).exists():
            role = Image.Role.TASK
    else:
        count = study.task_blocks[1]
        timed = study.method == Study.Method.TIME
        role = Image.Role.TASK
    n_real = study.reals_in(count)
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
    # Counted as drawn, in one statement (concurrent blocks add up: F() is computed in SQL).
    Image.objects.filter(id__in=[image_id for image_id, _ in chosen]).update(
        shown_count=F("shown_count") + 1
    )
    masks = masks_draw(study, len(chosen)) if timed else [[] for _ in chosen]

    block = Block.objects.create(
        session=session,
        index=index,
        kind=kind,
        timed=timed,
        trial_count=count,
        staircase_state=staircase_start(study.staircase_rule()).to_dict() if timed else None,
    )
    first_index = Trial.objects.filter(session=session).count()
    trials = Trial.objects.bulk_create(
        Trial(
            session=session,
            block=block,
            index=first_index + position,
            position=position,
            image_id=image_id,
            is_real=is_real,
            masks=trial_masks,
        )
        for position, ((image_id, is_real), trial_masks) in enumerate(
            zip(chosen, masks, strict=True)
        )
    )
    # The rater's current trial is the new block's first: every earlier one is answered.
    first = trials[0]
    first.block = block
    session.current_trial = first
    session.save(update_fields=["current_trial"])
    return block


class NoPlace(Exception):
    """Every model of the study has its target of raters: nobody else can be given one."""


def model_places(study: Study) -> list[tuple[GenerativeModel, int]]:
    """Each model of the study (oldest first) with the places it holds: its raters in task or
    completed. A rater who is abandoned or excluded holds none."""
    models = (
        GenerativeModel.objects.filter(study=study)
        .annotate(held=Count("rater_sessions", filter=Q(rater_sessions__status__in=HELD)))
        .order_by("id")
    )
    return [(model, model.held) for model in models]


def model_assign(session: RaterSession) -> GenerativeModel:
    """The model below its target with the fewest places held (ties to the oldest model), or
    NoPlace when every model has reached its target. The caller holds the study's row lock
    (study_lock), so two raters starting together are counted one after the other."""
    places = model_places(session.study)
    if not places:
        raise ProtocolError("not_ready", "The study has no generative model yet.")
    open_models = [
        (held, model.id, model) for model, held in places if held < session.study.raters_per_model
    ]
    if not open_models:
        raise NoPlace()
    return min(open_models, key=lambda entry: entry[:2])[2]


def study_lock(study: Study) -> Study:
    """Lock the study's row until the transaction ends: assignments and new sessions of one
    study happen one at a time. Stale sessions are expired first, so their places are free."""
    locked = Study.objects.select_for_update().get(pk=study.pk)
    sessions_expire(locked)
    return locked


def open_places(study: Study) -> int:
    """Places still open: each model's target minus the places it holds, over all models."""
    return sum(max(0, study.raters_per_model - held) for _, held in model_places(study))


def study_full(study: Study) -> bool:
    """No new rater can start: the raters already consented or in the qualification could take
    every place still open, so a newcomer could only be turned away after the qualification.
    (With none of them, that is: every model has its target in task or completed.)"""
    if not GenerativeModel.objects.filter(study=study).exists():
        return False
    waiting = RaterSession.objects.filter(
        study=study, status__in=[RaterSession.Status.CONSENTED, RaterSession.Status.QUALIFYING]
    ).count()
    return open_places(study) <= waiting


def study_complete(study: Study) -> bool:
    """Every model has its target of completed raters."""
    models = GenerativeModel.objects.filter(study=study).annotate(
        done=Count("rater_sessions", filter=Q(rater_sessions__status=RaterSession.Status.COMPLETED))
    )
    counts = [model.done for model in models]
    return bool(counts) and all(count >= study.raters_per_model for count in counts)
