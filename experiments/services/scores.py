"""A study's HYPE scores: the stored answers of completed raters in, per-model scores with
bootstrap intervals and the test of whether the models differ out. The numbers all come
from hype.science; this module only gathers the data."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from experiments.models import Answer, Block, RaterSession, Study
from hype.science.bootstrap import (
    BootstrapResult,
    bootstrap_mean,
    bootstrap_pooled_rate,
    model_stream_seed,
    raters_for_width,
)
from hype.science.comparisons import Comparison, compare_models
from hype.science.error_rates import InfScore, inf_score
from hype.science.thresholds import rater_time_score

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
    """The seed of a model's bootstrap stream in this study (hype.science.bootstrap)."""
    return model_stream_seed(study.bootstrap_seed, model_name)


def scored_answers(study: Study):
    """What the scores read: the task answers of completed raters, in rater, block and trial
    order, as (session, model, block, requested_ms, is_real, correct) rows."""
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


@dataclass
class _Rater:
    """One completed rater's task answers, as the scores need them."""

    session_id: int
    model_id: int
    exposures: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    labels: list[bool] = field(default_factory=list)
    rights: list[bool] = field(default_factory=list)


def _completed_raters(study: Study) -> dict[int, _Rater]:
    """session id -> the rater's task answers, for every completed rater who answered."""
    raters: dict[int, _Rater] = {}
    for session_id, model_id, block_id, requested_ms, is_real, correct in scored_answers(study):
        rater = raters.get(session_id)
        if rater is None:
            rater = raters[session_id] = _Rater(session_id=session_id, model_id=model_id)
        if requested_ms is not None:
            rater.exposures[block_id].append(requested_ms)
        rater.labels.append(is_real)
        rater.rights.append(correct)
    return raters


def _rater_scores(study: Study, raters: list[_Rater]) -> tuple[float, ...]:
    """Each rater's score: the mean block threshold in ms (HYPE_time; raters without a timed
    trial have none), or the share of wrong answers (HYPE_inf)."""
    if study.method == Study.Method.TIME:
        return tuple(
            rater_time_score(
                list(r.exposures.values()),
                burn_in=study.threshold_burn_in,
                tie_rule=study.threshold_tie_rule,
            )
            for r in raters
            if r.exposures
        )
    return tuple(sum(not c for c in r.rights) / len(r.rights) for r in raters)


def _model_score(
    study: Study, model_name: str, raters: list[_Rater], *, pooled: bool = True
) -> tuple[tuple[float, ...], BootstrapResult | None, InfScore | None]:
    """(rater scores, bootstrap of the model score, pooled HYPE_inf errors) of these raters,
    who are in session order: the bootstrap's draws depend on the order of its input."""
    seed = model_seed(study, model_name)
    rater_scores = _rater_scores(study, raters)
    if not rater_scores:
        return rater_scores, None, None
    if study.method == Study.Method.TIME:
        score = bootstrap_mean(
            rater_scores,
            resamples=study.bootstrap_resamples,
            confidence=study.confidence,
            seed=seed,
        )
        return rater_scores, score, None
    # HYPE_inf pools the answers: raters are resampled with all of their answers.
    score = bootstrap_pooled_rate(
        [sum(not c for c in r.rights) for r in raters],
        [len(r.rights) for r in raters],
        resamples=study.bootstrap_resamples,
        confidence=study.confidence,
        seed=seed,
    )
    errors = None
    if pooled:
        errors = inf_score(
            is_real=[x for r in raters for x in r.labels],
            correct=[x for r in raters for x in r.rights],
        )
    return rater_scores, score, errors


def study_results(study: Study) -> StudyResults:
    """Scores of every model of the study from its completed raters."""
    return _results_from(study, _completed_raters(study))


def _results_from(study: Study, raters: dict[int, _Rater]) -> StudyResults:
    in_progress = defaultdict(int)
    for model_id in RaterSession.objects.filter(
        study=study, status__in=IN_PROGRESS, model__isnull=False
    ).values_list("model_id", flat=True):
        in_progress[model_id] += 1

    results = []
    for model in study.models.order_by("name"):
        own = [raters[s] for s in sorted(raters) if raters[s].model_id == model.id]
        rater_scores, score, pooled = _model_score(study, model.name, own)
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
        unit="ms" if study.method == Study.Method.TIME else "error",
        models=tuple(results),
        comparison=comparison,
    )


# --- How the intervals narrowed ----------------------------------------------------------


@dataclass(frozen=True)
class IntervalHistory:
    """How one model's interval narrowed as its raters completed: points are (raters, width
    of the interval from the first that many to finish), from two raters on. Each is the
    interval the results table showed when those raters were all there was; the last is
    today's. Widths are in the score's units: ms, or a fraction for HYPE_inf. raters_needed
    is what the current spread of rater scores suggests for an interval target_width wide
    (None with fewer than two rater scores)."""

    model_id: int
    name: str
    points: tuple[tuple[int, float], ...]
    rater_scores: tuple[float, ...]
    target_width: float
    raters_needed: int | None


def _completion_order(study: Study) -> list[int]:
    finished = RaterSession.objects.filter(
        study=study, status=RaterSession.Status.COMPLETED
    ).values_list("id", "finished_at")
    # Sessions without a finishing time (imported, or marked by hand) count as finished last.
    return [
        session_id
        for session_id, finished_at in sorted(
            finished, key=lambda row: (row[1] is None, row[1] or 0, row[0])
        )
    ]


def interval_history(study: Study, *, target_width: float) -> tuple[IntervalHistory, ...]:
    """Per model, its interval's width after 2, 3, ... n completed raters (in the order they
    finished), with the same bootstrap and seed as study_results, and the number of raters
    the current spread suggests for an interval target_width wide (in the score's units)."""
    return _history_from(study, _completed_raters(study), target_width=target_width)


def study_report(
    study: Study, *, target_width: float
) -> tuple[StudyResults, tuple[IntervalHistory, ...]]:
    """study_results and interval_history together, reading the answers once (the study page
    shows both, and the answers are most of the work)."""
    raters = _completed_raters(study)
    return _results_from(study, raters), _history_from(study, raters, target_width=target_width)


def _history_from(
    study: Study, raters: dict[int, _Rater], *, target_width: float
) -> tuple[IntervalHistory, ...]:
    order = [s for s in _completion_order(study) if s in raters]
    histories = []
    for model in study.models.order_by("name"):
        finished = [raters[s] for s in order if raters[s].model_id == model.id]
        points = []
        for k in range(2, len(finished) + 1):
            # The first k to finish, in session order as study_results would have taken them.
            first = sorted(finished[:k], key=lambda r: r.session_id)
            rater_scores, score, _ = _model_score(study, model.name, first, pooled=False)
            if score is not None and len(rater_scores) >= 2:
                points.append((len(rater_scores), score.high - score.low))
        rater_scores = _rater_scores(study, finished)
        needed = None
        if len(rater_scores) >= 2:
            needed = raters_for_width(rater_scores, width=target_width, confidence=study.confidence)
        histories.append(
            IntervalHistory(
                model_id=model.id,
                name=model.name,
                points=tuple(points),
                rater_scores=rater_scores,
                target_width=target_width,
                raters_needed=needed,
            )
        )
    return tuple(histories)
