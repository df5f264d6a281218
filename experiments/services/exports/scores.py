"""scores.csv: two rows per model, exactly study_results' numbers at full precision: the
study's result (exclusions "applied") and the result without exclusions ("none"), with the
model's automated baselines where they have been computed (docs/data-dictionary.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from experiments.models import Baseline, Study
from experiments.services.baselines import study_baselines
from experiments.services.exports.cells import csv_chunks
from experiments.services.scores import (
    StudyResults,
    study_results_both,
    study_results_without_exclusions,
)

# The model's baselines at the end of each row: (column, Baseline field), in column order.
BASELINE_COLUMNS = (
    ("fid", "fid"),
    ("kid", "kid_mean"),
    ("kid_sd", "kid_sd"),
    ("inception_score", "inception_score"),
    ("inception_score_sd", "inception_score_sd"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("baseline_real_images", "n_real"),
    ("baseline_fake_images", "n_fake"),
    ("baseline_weights_sha256", "weights_sha256"),
)
# The psychometric fit's model score (ModelResult.fit_*), HYPE_time only: (column, how it is
# read from the model's result), in column order.
_FIT_CELLS = (
    ("fit_score", lambda m: m.fit_score.estimate if m.fit_score else None),
    ("fit_sd", lambda m: m.fit_score.sd if m.fit_score else None),
    ("fit_ci_low", lambda m: m.fit_score.low if m.fit_score else None),
    ("fit_ci_high", lambda m: m.fit_score.high if m.fit_score else None),
    ("fit_censored_low", lambda m: m.fit_censored_low if m.fit_score else None),
    ("fit_censored_high", lambda m: m.fit_censored_high if m.fit_score else None),
)
FIT_COLUMNS = tuple(column for column, _ in _FIT_CELLS)
SCORE_COLUMNS = (
    "study",
    "model",
    "method",
    "unit",
    "exclusions",
    "score",
    "sd",
    "ci_low",
    "ci_high",
    "confidence",
    "resamples",
    "seed",
    "n_raters",
    "n_in_progress",
    "n_excluded",
    "fake_error",
    "real_error",
    # How the intervals are read (Study.interval_method), which HYPE_time score leads
    # (Study.time_score: mode or fit) and the psychometric fit's score, HYPE_time only.
    "interval_method",
    "headline",
    *FIT_COLUMNS,
    *(column for column, _ in BASELINE_COLUMNS),
)


def _baseline_values(baseline: Baseline | None) -> tuple[Any, ...]:
    return tuple(
        None if baseline is None else getattr(baseline, field) for _, field in BASELINE_COLUMNS
    )


def _headline(results: StudyResults) -> str | None:
    """Which score the row's score columns lead with: "mode" or "fit" for HYPE_time."""
    return results.time_score if results.unit == "ms" else None


def score_rows(
    study: Study,
    *,
    results: StudyResults | None = None,
    without_exclusions: StudyResults | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Two rows per model (SCORE_COLUMNS), in name order: the study's result (exclusions
    applied), then the result without exclusions (every rater who completed, those excluded
    afterwards too), exactly study_results' numbers; and the automated baselines (FID, KID,
    Inception Score, precision, recall against the study's real images) where
    compute_baselines has stored them; empty otherwise, never guessed."""
    if results is None:
        results, without_exclusions = study_results_both(study)
    elif without_exclusions is None:
        without_exclusions = study_results_without_exclusions(study, applied=results)
    baselines = study_baselines(study)
    for pair in zip(results.models, without_exclusions.models, strict=True):
        for view, model in zip((results, without_exclusions), pair, strict=True):
            score, inf = model.score, model.inf
            yield (
                study.public_id,
                model.name,
                view.method,
                view.unit,
                view.exclusions,
                score.estimate if score else None,
                score.sd if score else None,
                score.low if score else None,
                score.high if score else None,
                score.confidence if score else None,
                score.resamples if score else None,
                score.seed if score else None,
                model.n_raters,
                model.n_in_progress,
                model.n_excluded,
                inf.fake_error if inf else None,
                inf.real_error if inf else None,
                view.interval_method,
                _headline(view),
                *(read(model) for _, read in _FIT_CELLS),
                *_baseline_values(baselines.get(model.name)),
            )


def scores_csv(
    study: Study,
    *,
    results: StudyResults | None = None,
    without_exclusions: StudyResults | None = None,
) -> Iterator[str]:
    rows = score_rows(study, results=results, without_exclusions=without_exclusions)
    return csv_chunks(SCORE_COLUMNS, rows)
