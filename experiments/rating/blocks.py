"""The images of a block and the model of a rater: each block draws images the rater has not
seen (the least shown first), half real, and a rater who reaches the task is given the model
with the fewest raters."""

from __future__ import annotations

import random

from django.db.models import Count, Q

from experiments.models import Block, GenerativeModel, Image, RaterSession, Study, Trial
from experiments.rating.messages import ProtocolError
from hype.science.staircase import staircase_start

# Raters who count towards a model's quota when new raters are assigned.
COUNTED = [RaterSession.Status.IN_TASK, RaterSession.Status.COMPLETED]


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

    block = Block.objects.create(
        session=session,
        index=index,
        kind=kind,
        timed=timed,
        trial_count=count,
        staircase_state=staircase_start(study.staircase_rule()).to_dict() if timed else None,
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


def model_assign(session: RaterSession) -> GenerativeModel:
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


def study_full(study: Study) -> bool:
    """Every model of the study has its target of raters in task or completed: a new rater
    could only go beyond a target."""
    models = GenerativeModel.objects.filter(study=study).annotate(
        raters=Count("rater_sessions", filter=Q(rater_sessions__status__in=COUNTED))
    )
    counts = [model.raters for model in models]
    return bool(counts) and all(count >= study.raters_per_model for count in counts)
