"""A study's HYPE scores: the stored answers of completed raters in, per-model scores with
bootstrap intervals and the test of whether the models differ out. The numbers all come
from hype.science; this module only gathers the data."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

from experiments.models import Answer, Block, RaterSession, Study
from hype.science.scores import (
    BootstrapResult,
    Comparison,
    InfScore,
    bootstrap_mean,
    bootstrap_pooled_rate,
    compare_models,
    inf_score,
    rater_time_score,
)

IN_PROGRESS = [
    RaterSession.Status.CONSENTED,
    RaterSession.Status.QUALIFYING,
    RaterSession.Status.IN_TASK,
]


@dataclass(frozen=True)
class ModelResult:
    """One model's HYPE score. For HYPE_time the score is in ms (higher is more realistic);
    for HYPE_inf it is the error rate as a fraction (0.5 = indistinguishable)."""

    model_id: int
    name: str
    n_raters: int
    n_in_progress: int
    rater_scores: tuple[float, ...]
    score: BootstrapResult | None
    inf: InfScore | None


@dataclass(frozen=True)
class StudyResults:
    study_id: int
    method: str
    unit: str
    models: tuple[ModelResult, ...]
    comparison: Comparison | None


def model_seed(study: Study, model_name: str) -> int:
    """Each model's own bootstrap stream, fixed by the study's seed and the model's name, so a
    model's interval does not change when models are added and their Monte Carlo errors are
    independent."""
    digest = hashlib.blake2b(f"{study.bootstrap_seed}:{model_name}".encode(), digest_size=4)
    return int.from_bytes(digest.digest(), "big")


def _task_answers(study: Study):
    return (
        Answer.objects.filter(
            trial__session__study=study,
            trial__session__status=RaterSession.Status.COMPLETED,
            trial__block__kind=Block.Kind.TASK,
        )
        .order_by("trial__session_id", "trial__block__index", "trial__position")
        .values_list(
            "trial__session_id",
            "trial__session__model_id",
            "trial__block_id",
            "trial__requested_ms",
            "trial__is_real",
            "correct",
        )
    )


def study_results(study: Study) -> StudyResults:
    """Scores of every model of the study from its completed raters."""
    # rater -> (model, {block -> exposures}) for HYPE_time; rater -> (model, labels, correct).
    exposures: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    labels: dict[int, list[bool]] = defaultdict(list)
    rights: dict[int, list[bool]] = defaultdict(list)
    model_of: dict[int, int] = {}
    for session_id, model_id, block_id, requested_ms, is_real, correct in _task_answers(study):
        model_of[session_id] = model_id
        if requested_ms is not None:
            exposures[session_id][block_id].append(requested_ms)
        labels[session_id].append(is_real)
        rights[session_id].append(correct)

    in_progress = defaultdict(int)
    for model_id in RaterSession.objects.filter(
        study=study, status__in=IN_PROGRESS, model__isnull=False
    ).values_list("model_id", flat=True):
        in_progress[model_id] += 1

    timed = study.method == Study.Method.TIME
    results = []
    for model in study.models.order_by("name"):
        raters = sorted(s for s, m in model_of.items() if m == model.id)
        seed = model_seed(study, model.name)
        score: BootstrapResult | None = None
        pooled: InfScore | None = None
        if timed:
            rater_scores = tuple(
                rater_time_score(
                    list(exposures[r].values()),
                    burn_in=study.threshold_burn_in,
                    tie_rule=study.threshold_tie_rule,
                )
                for r in raters
                if exposures[r]
            )
            if rater_scores:
                score = bootstrap_mean(
                    rater_scores,
                    resamples=study.bootstrap_resamples,
                    confidence=study.confidence,
                    seed=seed,
                )
        else:
            wrong = [sum(not c for c in rights[r]) for r in raters]
            answered = [len(rights[r]) for r in raters]
            rater_scores = tuple(w / n for w, n in zip(wrong, answered, strict=True))
            if raters:
                score = bootstrap_pooled_rate(
                    wrong,
                    answered,
                    resamples=study.bootstrap_resamples,
                    confidence=study.confidence,
                    seed=seed,
                )
                pooled = inf_score(
                    is_real=[x for r in raters for x in labels[r]],
                    correct=[x for r in raters for x in rights[r]],
                )
        results.append(
            ModelResult(
                model_id=model.id,
                name=model.name,
                n_raters=len(rater_scores),
                n_in_progress=in_progress[model.id],
                rater_scores=rater_scores,
                score=score,
                inf=pooled,
            )
        )

    comparable = {r.name: r.rater_scores for r in results if len(r.rater_scores) >= 2}
    comparison = compare_models(comparable) if len(comparable) >= 2 else None
    return StudyResults(
        study_id=study.id,
        method=study.method,
        unit="ms" if timed else "error",
        models=tuple(results),
        comparison=comparison,
    )
