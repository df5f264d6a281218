"""A study's HYPE scores, the only place they are made: each rater's score from their task
answers (RaterScore), and per model the score of its completed raters with a bootstrap
interval, and the test of whether the models differ. The study's result leaves excluded raters
out (exclusions "applied"); the same result counting the raters excluded after they completed
(exclusions "none") is made here too. For HYPE_time both readings of a rater's threshold are
made: the paper's modal one and the psychometric fit's (hype.science.psychometric), and the
study's time_score says which leads. HYPE per image tag and per image (soft labels) are made
in experiments.services.subgroups, from the raters, seeds and cache of this module. Pages,
exports, the API and the commands all call here; the arithmetic is hype.science's."""

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

import numpy as np
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
from hype.science.psychometric import (
    PsychometricFit,
    fit_contribution,
    model_fit_score,
    study_fit,
)
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


def counted_sessions(study: Study, *, exclusions: str = EXCLUSIONS_APPLIED):
    """The rater sessions a result of the study counts (exclusions: see EXCLUSION_VIEWS):
    what experiments.services.subgroups scores per tag and counts per image too."""
    return RaterSession.objects.filter(_counted(exclusions), study=study)


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
    # HYPE_time's second reading (hype.science.psychometric): each rater's fit contribution
    # (their fitted threshold, or the bound a censored one lies beyond), in the order of
    # rater_scores' raters, their bootstrap (the same stream as `score`'s), and how many were
    # censored below and above. `score` and rater_scores stay the modal threshold's.
    fit_rater_scores: tuple[float, ...] = ()
    fit_score: BootstrapResult | None = None
    fit_censored_low: int = 0
    fit_censored_high: int = 0
    # Whether the fit's score is the study's headline (HYPE_time with time_score "fit"): what
    # the study page leads with and the comparisons and Spearman's rho use.
    headline_fit: bool = False

    @property
    def headline(self) -> BootstrapResult | None:
        """The score the study leads with: the fit's or, as the paper's, the modal one's."""
        return self.fit_score if self.headline_fit else self.score

    @property
    def headline_rater_scores(self) -> tuple[float, ...]:
        return self.fit_rater_scores if self.headline_fit else self.rater_scores


@dataclass(frozen=True)
class StudyResults:
    study_id: int
    method: str
    unit: str
    models: tuple[ModelResult, ...]
    comparison: Comparison | None
    exclusions: str = EXCLUSIONS_APPLIED  # EXCLUSIONS_APPLIED or EXCLUSIONS_NONE
    # The study's score options as these results were made with them (Study.time_score,
    # Study.interval_method); the comparison is of the headline scores.
    time_score: str = Study.TimeScore.MODE
    interval_method: str = Study.IntervalMethod.PERCENTILE
    # The joint fit's shared slope and lapse (HYPE_time with a fitted rater; None otherwise).
    fit_slope_ms: float | None = None
    fit_lapse: float | None = None

    @property
    def n_excluded(self) -> int:
        """Raters excluded after completing, over all models."""
        return sum(model.n_excluded for model in self.models)


# Each interval method as pages, captions and the terminal name it ("95% BCa bootstrap
# interval", "percentile intervals from 10,000 bootstrap resamples").
_INTERVAL_NAMES = {
    Study.IntervalMethod.PERCENTILE: "percentile",
    Study.IntervalMethod.BCA: "BCa",
    Study.IntervalMethod.STUDENTIZED: "studentized",
}


def interval_name(method: str) -> str:
    """An interval method (Study.interval_method) as a word: "percentile", "BCa", ..."""
    return _INTERVAL_NAMES[method]


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
    their answers that were wrong. The counts pool into a model's HYPE_inf errors.

    fit (HYPE_time only): their psychometric fit from all their timed trials, jointly with the
    other raters the same result counts (one shared slope and lapse); None for HYPE_inf and for
    a rater no result counts yet (in progress), as the fit is the study's, not theirs alone."""

    session_id: int
    model_id: int | None
    score: float | None
    n_fake: int
    wrong_fake: int
    n_real: int
    wrong_real: int
    fit: PsychometricFit | None = None

    @property
    def fit_threshold_ms(self) -> float | None:
        """Their fitted threshold, in ms; None when censored (see fit.censored) or unfitted."""
        return None if self.fit is None else self.fit.threshold_ms

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
    at a time. For HYPE_time each has the fit of the result that counts them, as the rater
    page shows it: the study's result for a rater in it, the result without exclusions for a
    rater excluded after completing."""
    fits = study_fits(study, exclusions=exclusions)
    applied = fits if exclusions == EXCLUSIONS_APPLIED else study_fits(study)
    answers = scored_answers(study, exclusions=exclusions).iterator(chunk_size=DB_CHUNK_ROWS)
    for session_id, rows in groupby(answers, key=itemgetter(0)):
        rows = list(rows)
        score = _rater_score(study, session_id, rows[0][1], rows)
        counted = applied is not None and session_id in applied.raters
        yield _fitted(score, applied if counted else fits)


def session_score(session: RaterSession) -> RaterScore | None:
    """One rater's score so far, whatever their status (None before a task answer). A rater
    a result counts (completed, or excluded after completing) has the fit of that result; a
    rater still under way has none: their threshold is fitted with the study's completed
    raters, once they are among them."""
    rows = list(scored_answers(session.study, session=session))
    if not rows:
        return None
    score = _rater_score(session.study, session.id, session.model_id, rows)
    if session.status == RaterSession.Status.COMPLETED:
        return _fitted(score, study_fits(session.study, exclusions=EXCLUSIONS_APPLIED))
    if (
        session.status == RaterSession.Status.EXCLUDED
        and session.status_before_exclusion == RaterSession.Status.COMPLETED
    ):
        return _fitted(score, study_fits(session.study, exclusions=EXCLUSIONS_NONE))
    return score


# --- The psychometric fit ------------------------------------------------------------------
#
# HYPE_time's second reading of a rater's threshold (hype.science.psychometric, docs/
# hype-method.md "A fitted threshold per rater"). It is fitted over all the raters a result
# counts at once, every model's together: a staircase measures where a rater's curve crosses
# its target, hardly how steep the curve is, so one slope (and lapse) is shared by all of them.
# Pooling every model's raters anchors that slope on the most data; the slope is the display's
# and task's, not a model's, so it does not favour one model over another.

# A rater's timed task trials, block by block: (requested exposures in ms, whether right).
TimedBlocks = tuple[tuple[np.ndarray, np.ndarray], ...]


@dataclass(frozen=True)
class StudyFit:
    """The joint fit of a result's raters: the shared slope and lapse, and each rater's fit
    by session id."""

    slope_ms: float
    lapse: float
    raters: dict[int, PsychometricFit]


def _timed_blocks(rows) -> TimedBlocks:
    exposures: dict[int, list[int]] = defaultdict(list)
    right: dict[int, list[bool]] = defaultdict(list)
    for _, _, block_id, requested_ms, _, correct in rows:
        if requested_ms is not None:
            exposures[block_id].append(requested_ms)
            right[block_id].append(bool(correct))
    return tuple(
        # Floats, as the fit reads them: it then holds these arrays rather than copies.
        (np.asarray(exposures[b], dtype=float), np.asarray(right[b], dtype=bool))
        for b in exposures
    )


def _fit_from(study: Study, trials: dict[int, TimedBlocks]) -> StudyFit | None:
    """The joint fit of these raters (session id -> timed blocks), in session order; None for
    HYPE_inf or without a timed trial."""
    raters = {s: trials[s] for s in sorted(trials) if trials[s]}
    if study.method != Study.Method.TIME or not raters:
        return None
    try:
        fits = study_fit(raters=raters, rule=study.staircase_rule())
    except ValueError:
        # A staircase whose target is at or below chance has no threshold to fit (and the
        # exposures stay inside its bounds, which cannot change once raters start): the
        # modal score still stands, the fit is absent.
        return None
    first = next(iter(fits.values()))
    return StudyFit(slope_ms=first.slope_ms, lapse=first.lapse, raters=fits)


def _trials_read(study: Study, *, exclusions: str) -> dict[int, TimedBlocks]:
    """session id -> timed blocks, for every rater the result counts."""
    answers = scored_answers(study, exclusions=exclusions).iterator(chunk_size=DB_CHUNK_ROWS)
    return {
        session_id: _timed_blocks(rows) for session_id, rows in groupby(answers, key=itemgetter(0))
    }


def _study_fit_of(
    study: Study, *, exclusions: str, trials: dict[int, TimedBlocks] | None = None
) -> StudyFit | None:
    if study.method != Study.Method.TIME:
        return None
    fit, _ = _cached(
        study,
        f"fit:{exclusions}",
        lambda: _fit_from(
            study, _trials_read(study, exclusions=exclusions) if trials is None else trials
        ),
    )
    return fit


def study_fits(study: Study, *, exclusions: str = EXCLUSIONS_APPLIED) -> StudyFit | None:
    """The joint psychometric fit of the raters a result counts (exclusions, see
    EXCLUSION_VIEWS), every model's together; None for HYPE_inf or before a timed answer."""
    _counted(exclusions)
    if exclusions == EXCLUSIONS_NONE and not _excluded_after_completing(study):
        # The same raters as the study's result: the same fit, made once.
        exclusions = EXCLUSIONS_APPLIED
    return _study_fit_of(study, exclusions=exclusions)


def _excluded_after_completing(study: Study) -> bool:
    return RaterSession.objects.filter(_EXCLUDED_AFTER_COMPLETING, study=study).exists()


def _fitted(score: RaterScore, fits: StudyFit | None) -> RaterScore:
    if fits is None or score.session_id not in fits.raters:
        return score
    return dataclasses.replace(score, fit=fits.raters[score.session_id])


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
            method=study.interval_method,
        )
        return rater_scores, score, None
    # HYPE_inf pools the answers: raters are resampled with all of their answers.
    score = bootstrap_pooled_rate(
        [r.wrong for r in scored],
        [r.answered for r in scored],
        resamples=study.bootstrap_resamples,
        confidence=study.confidence,
        seed=seed,
        method=study.interval_method,
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


@dataclass(frozen=True)
class _ModelFit:
    rater_scores: tuple[float, ...]  # fit contributions, in session order
    score: BootstrapResult | None
    censored_low: int = 0
    censored_high: int = 0


def _model_fit(study: Study, model_name: str, raters: list[RaterScore]) -> _ModelFit:
    """The fit's model score of these raters (in session order): the mean of their fit
    contributions (hype.science.psychometric.model_fit_score) with its bootstrap, drawn from
    the model's stream exactly as the modal score's."""
    fits = [r.fit for r in raters if r.fit is not None]
    if not fits:
        return _ModelFit(rater_scores=(), score=None)
    summary = model_fit_score(fits)
    contributions = tuple(float(fit_contribution(fit)) for fit in fits)
    score = bootstrap_mean(
        contributions,
        resamples=study.bootstrap_resamples,
        confidence=study.confidence,
        seed=model_seed(study, model_name),
        method=study.interval_method,
    )
    return _ModelFit(
        rater_scores=contributions,
        score=score,
        censored_low=summary.censored_low,
        censored_high=summary.censored_high,
    )


def _raters_read(
    study: Study, exclusions: str
) -> tuple[dict[int, RaterScore], dict[int, TimedBlocks]]:
    """(session id -> modal score, session id -> timed blocks) for every rater the result
    counts who answered a task trial, from one read of their answers."""
    answers = scored_answers(study, exclusions=exclusions).iterator(chunk_size=DB_CHUNK_ROWS)
    raters: dict[int, RaterScore] = {}
    trials: dict[int, TimedBlocks] = {}
    timed = study.method == Study.Method.TIME
    for session_id, rows in groupby(answers, key=itemgetter(0)):
        rows = list(rows)
        raters[session_id] = _rater_score(study, session_id, rows[0][1], rows)
        if timed:
            trials[session_id] = _timed_blocks(rows)
    return raters, trials


def _with_fits(
    study: Study,
    raters: dict[int, RaterScore],
    trials: dict[int, TimedBlocks],
    exclusions: str,
) -> tuple[dict[int, RaterScore], StudyFit | None]:
    fits = _study_fit_of(study, exclusions=exclusions, trials=trials)
    return {s: _fitted(r, fits) for s, r in raters.items()}, fits


def _completed_raters(
    study: Study, exclusions: str = EXCLUSIONS_APPLIED
) -> tuple[dict[int, RaterScore], StudyFit | None]:
    """(session id -> score, the joint fit), for every rater the result counts who answered a
    task trial."""
    raters, trials = _raters_read(study, exclusions)
    return _with_fits(study, raters, trials, exclusions)


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
    # the results are computed from. Every save moves updated_at; the score options are named
    # too, so that a change made without a save (a queryset update) cannot serve stale scores.
    options = (study.time_score, study.interval_method)
    state = repr((sorted(sessions.items()), models, study.updated_at, options))
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
        lambda: _results_from(study, *_completed_raters(study, exclusions), exclusions=exclusions),
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
    everyone, trials = _raters_read(study, EXCLUSIONS_NONE)
    excluded = set(
        RaterSession.objects.filter(_EXCLUDED_AFTER_COMPLETING, study=study).values_list(
            "id", flat=True
        )
    )
    # Each result's fit is of its own raters: the shared slope of the study's result is not
    # moved by the raters it leaves out.
    applied = _results_from(
        study,
        *_with_fits(
            study,
            {s: r for s, r in everyone.items() if s not in excluded},
            {s: t for s, t in trials.items() if s not in excluded},
            EXCLUSIONS_APPLIED,
        ),
        exclusions=EXCLUSIONS_APPLIED,
    )
    if not excluded:
        return applied, dataclasses.replace(applied, exclusions=EXCLUSIONS_NONE)
    return applied, _results_from(
        study, *_with_fits(study, everyone, trials, EXCLUSIONS_NONE), exclusions=EXCLUSIONS_NONE
    )


def study_results_without_exclusions(
    study: Study, *, applied: StudyResults | None = None
) -> StudyResults:
    """The result without exclusions; `applied`: the study's result, when the caller has it
    already (then nothing is read again when nobody was excluded after completing)."""
    if applied is not None and not applied.n_excluded:
        return dataclasses.replace(applied, exclusions=EXCLUSIONS_NONE)
    return study_results(study, exclusions=EXCLUSIONS_NONE)


def _results_from(
    study: Study,
    raters: dict[int, RaterScore],
    fits: StudyFit | None = None,
    *,
    exclusions: str = EXCLUSIONS_APPLIED,
) -> StudyResults:
    in_progress, excluded = _sessions_per_model(study)
    headline_fit = _headline_fit(study)

    results = []
    for model in study.models.order_by("name"):
        own = [raters[s] for s in sorted(raters) if raters[s].model_id == model.id]
        rater_scores, score, pooled = _model_score(study, model.name, own)
        fit = _model_fit(study, model.name, own)
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
                fit_rater_scores=fit.rater_scores,
                fit_score=fit.score,
                fit_censored_low=fit.censored_low,
                fit_censored_high=fit.censored_high,
                headline_fit=headline_fit,
            )
        )

    # The models are compared on the headline score's rater scores.
    comparable = {
        r.name: r.headline_rater_scores for r in results if len(r.headline_rater_scores) >= 2
    }
    comparison = compare_models(comparable) if len(comparable) >= 2 else None
    return StudyResults(
        study_id=study.id,
        method=study.method,
        unit=study.score_unit,
        models=tuple(results),
        comparison=comparison,
        exclusions=exclusions,
        time_score=study.time_score,
        interval_method=study.interval_method,
        fit_slope_ms=None if fits is None else fits.slope_ms,
        fit_lapse=None if fits is None else fits.lapse,
    )


def _headline_fit(study: Study) -> bool:
    """Whether the fit's score leads (HYPE_time with time_score "fit"; never for HYPE_inf)."""
    return study.method == Study.Method.TIME and study.time_score == Study.TimeScore.FIT


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
        lambda: _history_from(study, _completed_raters(study)[0], target_width=target_width),
    )
    return histories


def study_report(
    study: Study, *, target_width: float
) -> tuple[StudyResults, tuple[IntervalHistory, ...]]:
    """study_results and interval_history together, reading the answers once (the study page
    shows both, and the answers are most of the work)."""

    def compute():
        raters, fits = _completed_raters(study)
        return (
            _results_from(study, raters, fits),
            _history_from(study, raters, target_width=target_width),
        )

    (results, histories), kept = _cached(study, f"report:{target_width!r}", compute)
    return (_counts_now(study, results)[0] if kept else results), histories


def _history_from(
    study: Study, raters: dict[int, RaterScore], *, target_width: float
) -> tuple[IntervalHistory, ...]:
    order = [s for s in _completion_order(study) if s in raters]
    headline_fit = _headline_fit(study)
    histories = []
    for model in study.models.order_by("name"):
        finished = [raters[s] for s in order if raters[s].model_id == model.id]
        points = []
        for k in range(2, len(finished) + 1):
            # The first k to finish, in session order as study_results would have taken them.
            first = sorted(finished[:k], key=lambda r: r.session_id)
            if headline_fit:
                # The fit's contributions of the first k, with the slope fitted on all of
                # today's raters: refitting at every k would cost a fit per point.
                fit = _model_fit(study, model.name, first)
                rater_scores, score = fit.rater_scores, fit.score
            else:
                rater_scores, score, _ = _model_score(study, model.name, first, pooled=False)
            if score is not None and len(rater_scores) >= 2:
                points.append((len(rater_scores), score.high - score.low))
        if headline_fit:
            rater_scores = tuple(fit_contribution(r.fit) for r in finished if r.fit is not None)
        else:
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
