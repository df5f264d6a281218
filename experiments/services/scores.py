"""A study's HYPE scores, the only place they are made: each rater's score from their task
answers (RaterScore), and per model the score of its completed raters with a bootstrap
interval, and the test of whether the models differ. The study's result leaves excluded raters
out (exclusions "applied"); the same result counting the raters excluded after they completed
(exclusions "none") is made here too. Pages, exports, the API and the commands all call here;
the arithmetic is hype.science's."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, Q

from experiments.models import Answer, Block, RaterSession, Study
from hype.science.bootstrap import (
    BootstrapResult,
    bootstrap_mean,
    bootstrap_pooled_rate,
    model_stream_seed,
    raters_for_width,
)
from hype.science.comparisons import Comparison, compare_models
from hype.science.error_rates import InfScore, inf_score_from_counts
from hype.science.thresholds import block_threshold, rater_time_score

# Answers fetched from the database per round trip when scores are streamed.
DB_CHUNK_ROWS = 2_000

# Which raters a result counts: "applied", the study's result (completed raters who are not
# excluded), or "none", every rater who completed, those excluded afterwards too (status
# excluded, status_before_exclusion completed). A rater excluded while still under way never
# completed: no result counts them.
EXCLUSIONS_APPLIED = "applied"
EXCLUSIONS_NONE = "none"
EXCLUSION_VIEWS = (EXCLUSIONS_APPLIED, EXCLUSIONS_NONE)
_COMPLETED = Q(status=RaterSession.Status.COMPLETED)
_EXCLUDED_AFTER_COMPLETING = Q(
    status=RaterSession.Status.EXCLUDED,
    status_before_exclusion=RaterSession.Status.COMPLETED,
)


def _counted(exclusions: str) -> Q:
    """The sessions a result counts, as a filter on RaterSession."""
    if exclusions == EXCLUSIONS_APPLIED:
        return _COMPLETED
    if exclusions == EXCLUSIONS_NONE:
        return _COMPLETED | _EXCLUDED_AFTER_COMPLETING
    raise ValueError(f"exclusions must be one of {EXCLUSION_VIEWS}, not {exclusions!r}")


def _sessions_per_model(study: Study) -> tuple[dict[int, int], dict[int, int]]:
    """(model id -> raters in progress, model id -> raters excluded after they completed:
    those the two results differ by), from one query."""
    in_progress: dict[int, int] = defaultdict(int)
    excluded: dict[int, int] = defaultdict(int)
    for model_id, status in RaterSession.objects.filter(
        Q(status__in=RaterSession.IN_PROGRESS) | _EXCLUDED_AFTER_COMPLETING,
        study=study,
        model__isnull=False,
    ).values_list("model_id", "status"):
        (excluded if status == RaterSession.Status.EXCLUDED else in_progress)[model_id] += 1
    return in_progress, excluded


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
    # Raters of the model excluded after completing: left out of n_raters when exclusions are
    # applied, among them when not.
    n_excluded: int = 0


@dataclass(frozen=True)
class StudyResults:
    study_id: int
    method: str
    unit: str
    models: tuple[ModelResult, ...]
    comparison: Comparison | None
    exclusions: str = EXCLUSIONS_APPLIED  # EXCLUSIONS_APPLIED or EXCLUSIONS_NONE

    @property
    def n_excluded(self) -> int:
        """Raters excluded after completing, over all models."""
        return sum(model.n_excluded for model in self.models)


def model_seed(study: Study, model_name: str) -> int:
    """The seed of a model's bootstrap stream in this study (hype.science.bootstrap)."""
    return model_stream_seed(study.bootstrap_seed, model_name)


def scored_answers(study: Study, *, exclusions: str = EXCLUSIONS_APPLIED, session=None):
    """What the scores read: the task answers of the raters a result counts (exclusions, see
    EXCLUSION_VIEWS) or of one session, in rater, block and trial order, as (session, model,
    block, requested_ms, is_real, correct) rows."""
    answers = Answer.objects.filter(trial__block__kind=Block.Kind.TASK)
    if session is not None:
        answers = answers.filter(trial__session=session)
    else:
        counted = RaterSession.objects.filter(_counted(exclusions), study=study)
        answers = answers.filter(trial__session__in=counted.values("id"))
    return answers.order_by(
        "trial__session_id", "trial__block__index", "trial__position"
    ).values_list(
        "trial__session_id",
        "trial__session__model_id",
        "trial__block_id",
        "trial__requested_ms",
        "trial__is_real",
        "correct",
    )


@dataclass(frozen=True)
class RaterScore:
    """One rater's score, from their task answers: the only place a rater's score is made.

    HYPE_time: the mean of their block thresholds (modal exposures), in ms; None without a
    timed answer, or while a block is shorter than the study's burn-in. HYPE_inf: the share of
    their answers that were wrong. The counts pool into a model's HYPE_inf errors."""

    session_id: int
    model_id: int | None
    score: float | None
    n_fake: int
    wrong_fake: int
    n_real: int
    wrong_real: int

    @property
    def answered(self) -> int:
        return self.n_fake + self.n_real

    @property
    def wrong(self) -> int:
        return self.wrong_fake + self.wrong_real

    @property
    def inf(self) -> InfScore:
        """This rater's own HYPE_inf error, fake error and real error."""
        return inf_score_from_counts(
            n_fake=self.n_fake,
            wrong_fake=self.wrong_fake,
            n_real=self.n_real,
            wrong_real=self.wrong_real,
        )


def block_threshold_of(study: Study, exposures: list[int]) -> float | None:
    """A block's threshold (its modal exposure) under the study's burn-in and tie rule; None
    while the block is no longer than the burn-in."""
    try:
        return block_threshold(
            exposures, burn_in=study.threshold_burn_in, tie_rule=study.threshold_tie_rule
        )
    except ValueError:
        return None


def _rater_score(study: Study, session_id: int, model_id: int | None, rows) -> RaterScore:
    exposures: dict[int, list[int]] = defaultdict(list)
    counts = Counter()
    for _, _, block_id, requested_ms, is_real, correct in rows:
        if requested_ms is not None:
            exposures[block_id].append(requested_ms)
        kind = "real" if is_real else "fake"
        counts[f"n_{kind}"] += 1
        counts[f"wrong_{kind}"] += not correct
    score = None
    if study.method == Study.Method.TIME:
        # A burn-in longer than a block so far leaves no threshold yet, and so no score.
        with contextlib.suppress(ValueError):
            if exposures:
                score = rater_time_score(
                    list(exposures.values()),
                    burn_in=study.threshold_burn_in,
                    tie_rule=study.threshold_tie_rule,
                )
    else:
        score = (counts["wrong_fake"] + counts["wrong_real"]) / (
            counts["n_fake"] + counts["n_real"]
        )
    return RaterScore(
        session_id=session_id,
        model_id=model_id,
        score=score,
        n_fake=counts["n_fake"],
        wrong_fake=counts["wrong_fake"],
        n_real=counts["n_real"],
        wrong_real=counts["wrong_real"],
    )


def rater_scores(study: Study, *, exclusions: str = EXCLUSIONS_APPLIED) -> Iterator[RaterScore]:
    """The score of every rater a result counts who has a task answer (by default the study's
    result: completed raters, not excluded), in session order, one rater's answers in memory
    at a time."""
    answers = scored_answers(study, exclusions=exclusions).iterator(chunk_size=DB_CHUNK_ROWS)
    for session_id, rows in groupby(answers, key=itemgetter(0)):
        rows = list(rows)
        yield _rater_score(study, session_id, rows[0][1], rows)


def session_score(session: RaterSession) -> RaterScore | None:
    """One rater's score so far, whatever their status (None before a task answer)."""
    rows = list(scored_answers(session.study, session=session))
    if not rows:
        return None
    return _rater_score(session.study, session.id, session.model_id, rows)


def _model_score(
    study: Study, model_name: str, raters: list[RaterScore], *, pooled: bool = True
) -> tuple[tuple[float, ...], BootstrapResult | None, InfScore | None]:
    """(rater scores, bootstrap of the model score, pooled HYPE_inf errors) of these raters,
    who are in session order: the bootstrap's draws depend on the order of its input."""
    seed = model_seed(study, model_name)
    scored = [r for r in raters if r.score is not None]
    rater_scores = tuple(r.score for r in scored)
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
        [r.wrong for r in scored],
        [r.answered for r in scored],
        resamples=study.bootstrap_resamples,
        confidence=study.confidence,
        seed=seed,
    )
    errors = None
    if pooled:
        errors = inf_score_from_counts(
            n_fake=sum(r.n_fake for r in scored),
            wrong_fake=sum(r.wrong_fake for r in scored),
            n_real=sum(r.n_real for r in scored),
            wrong_real=sum(r.wrong_real for r in scored),
        )
    return rater_scores, score, errors


def _completed_raters(study: Study, exclusions: str = EXCLUSIONS_APPLIED) -> dict[int, RaterScore]:
    """session id -> score, for every rater the result counts who answered a task trial."""
    return {r.session_id: r for r in rater_scores(study, exclusions=exclusions)}


# --- Cached results ------------------------------------------------------------------------
#
# A study's results change only when a rater completes, when a rater who completed is excluded
# or taken back in, or when the study itself changes: the answers of a completed rater never
# change. So they are computed once per state of those and kept in the cache (Redis in
# production, shared by every worker), under a key that names that state: nothing needs to
# remember to clear it, and a stale result cannot be served. The raters in progress, which
# change all the time and cost one small query, are counted afresh on every call.

RESULTS_CACHE_S = 7 * 24 * 3600


def results_fingerprint(study: Study) -> str:
    """A digest of everything a study's results depend on that can change: how many raters
    completed and the latest completion, how many are excluded after completing and the latest
    exclusion or undoing, the models, and the study's last save (its parameters)."""
    sessions = RaterSession.objects.filter(study=study).aggregate(
        completed=Count("id", filter=_COMPLETED),
        last_completed=Max("finished_at", filter=_COMPLETED),
        excluded=Count("id", filter=_EXCLUDED_AFTER_COMPLETING),
        last_excluded=Max("excluded_at"),
        last_undone=Max("exclusion_undone_at"),
    )
    models = list(study.models.order_by("id").values_list("id", "name"))
    # The study as the caller loaded it (at the start of the request): its parameters are what
    # the results are computed from.
    state = repr((sorted(sessions.items()), models, study.updated_at))
    return hashlib.sha256(state.encode()).hexdigest()[:32]


def _cached(study: Study, what: str, compute) -> tuple[Any, bool]:
    """(the value, whether it came from the cache: then its raters in progress are as they
    were when it was computed)."""
    key = f"hype:results:{study.pk}:{what}:{results_fingerprint(study)}"
    found = cache.get(key)
    if found is not None:
        return found, True
    found = compute()
    cache.set(key, found, RESULTS_CACHE_S)
    return found, False


def _counts_now(study: Study, *results: StudyResults) -> list[StudyResults]:
    """Each of `results` with each model's raters in progress (and excluded) as they are now."""
    in_progress, excluded = _sessions_per_model(study)
    return [_with_counts(one, in_progress, excluded) for one in results]


def _with_counts(
    results: StudyResults, in_progress: dict[int, int], excluded: dict[int, int]
) -> StudyResults:
    return dataclasses.replace(
        results,
        models=tuple(
            dataclasses.replace(
                model,
                n_in_progress=in_progress[model.model_id],
                n_excluded=excluded.get(model.model_id, 0),
            )
            for model in results.models
        ),
    )


def study_results(study: Study, *, exclusions: str = EXCLUSIONS_APPLIED) -> StudyResults:
    """Scores of every model of the study: the study's result, from its completed raters who
    are not excluded; with exclusions="none", from every rater who completed, the raters
    excluded afterwards among them."""
    _counted(exclusions)  # an unknown view is refused before anything is looked up
    results, kept = _cached(
        study,
        f"results:{exclusions}",
        lambda: _results_from(study, _completed_raters(study, exclusions), exclusions=exclusions),
    )
    return _counts_now(study, results)[0] if kept else results


def study_results_both(study: Study) -> tuple[StudyResults, StudyResults]:
    """(the study's result, the result without exclusions), reading the answers once. When
    nobody was excluded after completing the two are the same numbers."""
    (applied, without), kept = _cached(study, "both", lambda: _results_both(study))
    if kept:
        applied, without = _counts_now(study, applied, without)
    return applied, without


def _results_both(study: Study) -> tuple[StudyResults, StudyResults]:
    everyone = _completed_raters(study, EXCLUSIONS_NONE)
    excluded = set(
        RaterSession.objects.filter(_EXCLUDED_AFTER_COMPLETING, study=study).values_list(
            "id", flat=True
        )
    )
    applied = _results_from(
        study,
        {s: r for s, r in everyone.items() if s not in excluded},
        exclusions=EXCLUSIONS_APPLIED,
    )
    if not excluded:
        return applied, dataclasses.replace(applied, exclusions=EXCLUSIONS_NONE)
    return applied, _results_from(study, everyone, exclusions=EXCLUSIONS_NONE)


def study_results_without_exclusions(
    study: Study, *, applied: StudyResults | None = None
) -> StudyResults:
    """The result without exclusions; `applied`: the study's result, when the caller has it
    already (then nothing is read again when nobody was excluded after completing)."""
    if applied is not None and not applied.n_excluded:
        return dataclasses.replace(applied, exclusions=EXCLUSIONS_NONE)
    return study_results(study, exclusions=EXCLUSIONS_NONE)


def _results_from(
    study: Study, raters: dict[int, RaterScore], *, exclusions: str = EXCLUSIONS_APPLIED
) -> StudyResults:
    in_progress, excluded = _sessions_per_model(study)

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
                n_excluded=excluded.get(model.id, 0),
            )
        )

    comparable = {r.name: r.rater_scores for r in results if len(r.rater_scores) >= 2}
    comparison = compare_models(comparable) if len(comparable) >= 2 else None
    return StudyResults(
        study_id=study.id,
        method=study.method,
        unit=study.score_unit,
        models=tuple(results),
        comparison=comparison,
        exclusions=exclusions,
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
    histories, _ = _cached(
        study,
        f"history:{target_width!r}",
        lambda: _history_from(study, _completed_raters(study), target_width=target_width),
    )
    return histories


def study_report(
    study: Study, *, target_width: float
) -> tuple[StudyResults, tuple[IntervalHistory, ...]]:
    """study_results and interval_history together, reading the answers once (the study page
    shows both, and the answers are most of the work)."""

    def compute():
        raters = _completed_raters(study)
        return _results_from(study, raters), _history_from(study, raters, target_width=target_width)

    (results, histories), kept = _cached(study, f"report:{target_width!r}", compute)
    return (_counts_now(study, results)[0] if kept else results), histories


def _history_from(
    study: Study, raters: dict[int, RaterScore], *, target_width: float
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
        rater_scores = tuple(r.score for r in finished if r.score is not None)
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
