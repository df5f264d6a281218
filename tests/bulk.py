"""Large synthetic studies, written with bulk_create: completed raters whose answers come from
simulated observers on the real staircase, for export and speed tests and the benches.

No image files are written (the rows name files that do not exist): nothing here serves an
image. Images are shared between raters, each at most once per rater.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

import numpy as np
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from experiments.models import (
    Answer,
    Block,
    GenerativeModel,
    Image,
    RaterSession,
    Study,
    Trial,
)
from hype.science.observers import SimulatedObserver
from hype.science.staircase import staircase_start, staircase_step

BATCH = 5_000
REFRESH_MS = 1000 / 60

_serial = itertools.count()


def _images(study: Study, model: GenerativeModel | None, count: int) -> list[Image]:
    made = []
    for _ in range(count):
        digest = hashlib.sha256(f"bulk-{study.pk}-{next(_serial)}".encode()).hexdigest()
        made.append(
            Image(
                study=study,
                model=model,
                is_real=model is None,
                role=Image.Role.TASK,
                file=f"bulk/{digest}.png",
                sha256=digest,
                width=64,
                height=64,
            )
        )
    return Image.objects.bulk_create(made, batch_size=BATCH)


def _labels(n: int, rng: np.random.Generator) -> np.ndarray:
    # Half real, half fake in random order, as the protocol serves them.
    return rng.permutation(np.arange(n) < n // 2)


def _time_block(
    observer: SimulatedObserver, rule, labels: np.ndarray, rng: np.random.Generator
) -> list[tuple[int, bool]]:
    """(requested_ms, correct) of each trial of one staircase block."""
    state = staircase_start(rule)
    trials = []
    for _ in labels:
        correct = bool(rng.random() < observer.p_correct(state.exposure_ms))
        trials.append((state.exposure_ms, correct))
        state = staircase_step(rule, state, correct=correct)
    return trials


@transaction.atomic
def bulk_study_make(
    *,
    owner,
    models: int = 2,
    raters_per_model: int = 3,
    trials_per_rater: int = 450,
    method: str = Study.Method.TIME,
    blocks: int = 3,
    seed: int = 0,
    name: str = "Bulk study",
) -> Study:
    """A study of `models` models x `raters_per_model` completed raters x `trials_per_rater`
    answered task trials (no qualification). HYPE_time raters run `blocks` staircase
    blocks; model i's observers have a threshold that falls with i (so the models differ),
    each rater's a little different from the next."""
    rng = np.random.default_rng(seed)
    timed = method == Study.Method.TIME
    blocks = blocks if timed else 1
    if trials_per_rater % blocks:
        raise ValueError(f"{trials_per_rater} trials do not split into {blocks} blocks")
    per_block = trials_per_rater // blocks
    study = Study.objects.create(
        owner=owner,
        name=name,
        method=method,
        status=Study.Status.CLOSED,
        raters_per_model=raters_per_model,
        qualification_trials=0,
        time_blocks=blocks,
        time_trials_per_block=per_block,
        inf_trials=max(trials_per_rater, 2),
    )
    rule = study.staircase_rule()
    n_real = blocks * (per_block // 2)
    real = _images(study, None, n_real)
    generators = GenerativeModel.objects.bulk_create(
        GenerativeModel(study=study, name=f"model-{i:02d}") for i in range(models)
    )
    now = timezone.now()

    sessions = []
    for model in generators:
        for r in range(raters_per_model):
            sessions.append(
                RaterSession(
                    study=study,
                    model=model,
                    external_id=f"bulk-{model.pk}-{r}",
                    source=RaterSession.Source.PROLIFIC,
                    status=RaterSession.Status.COMPLETED,
                    user_agent="Mozilla/5.0 (X11; Linux x86_64) Bulk/1.0",
                    screen_width=1920,
                    screen_height=1080,
                    device_pixel_ratio=1.0,
                    refresh_ms=REFRESH_MS,
                )
            )
    # started_at is auto_now_add (bulk_create sets it to now); a session took half an hour.
    sessions = RaterSession.objects.bulk_create(sessions, batch_size=BATCH)
    RaterSession.objects.filter(study=study).update(
        finished_at=F("started_at") + dt.timedelta(minutes=30)
    )
    block_rows = [
        Block(
            session=session,
            index=b,
            kind=Block.Kind.TASK,
            timed=timed,
            trial_count=per_block,
            completed_at=now,
        )
        for session in sessions
        for b in range(blocks)
    ]
    block_rows = Block.objects.bulk_create(block_rows, batch_size=BATCH)

    fakes = {m.pk: _images(study, m, trials_per_rater - n_real) for m in generators}
    trials: list[Trial] = []
    outcomes: list[bool] = []
    for number, session in enumerate(sessions):
        model_number = number // raters_per_model
        observer = SimulatedObserver(
            threshold_ms=450.0 - 25.0 * model_number + float(rng.normal(0, 40)),
            spread_ms=60.0,
            untimed_accuracy=0.95,
        )
        own_fakes = fakes[session.model_id]
        reals = iter(rng.permutation(len(real)))
        fakes_left = iter(rng.permutation(len(own_fakes)))
        index = 0
        for b in range(blocks):
            block = block_rows[number * blocks + b]
            labels = _labels(per_block, rng)
            if timed:
                answers = _time_block(observer, rule, labels, rng)
            else:
                answers = [(None, bool(c)) for c in rng.random(per_block) < observer.top]
            for position, (is_real, (requested_ms, correct)) in enumerate(
                zip(labels, answers, strict=True)
            ):
                image = real[next(reals)] if is_real else own_fakes[next(fakes_left)]
                trials.append(
                    Trial(
                        # Ids rather than objects: the related-object setters cost more
                        # than the rest of the row.
                        session_id=session.pk,
                        block_id=block.pk,
                        index=index,
                        position=position,
                        image_id=image.pk,
                        is_real=bool(is_real),
                        requested_ms=requested_ms,
                        frames=round(requested_ms / REFRESH_MS) if requested_ms else None,
                        presented_at=now,
                    )
                )
                outcomes.append(correct)
                index += 1
        if len(trials) >= BATCH:
            _flush(trials, outcomes)
            trials, outcomes = [], []
    _flush(trials, outcomes)
    return study


def _flush(trials: list[Trial], outcomes: list[bool]) -> None:
    """Write the trials and one answer to each."""
    if not trials:
        return
    trials = Trial.objects.bulk_create(trials, batch_size=BATCH)
    answers = []
    for trial, correct in zip(trials, outcomes, strict=True):
        says_real = trial.is_real == correct
        shown = trial.frames * REFRESH_MS if trial.frames else None
        answers.append(
            Answer(
                trial_id=trial.pk,
                response=Answer.Choice.REAL if says_real else Answer.Choice.FAKE,
                correct=correct,
                rt_ms=650.0,
                shown_ms=shown,
                mask_ms=4 * 30.0 if shown else None,
                refresh_ms=REFRESH_MS,
                page_hidden=False,
                flags=[],
            )
        )
    Answer.objects.bulk_create(answers, batch_size=BATCH)
