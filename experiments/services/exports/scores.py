"""scores.csv: one row per model, exactly study_results' numbers at full precision, with the
model's automated baselines where they have been computed (docs/data-dictionary.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from experiments.models import Baseline, Study
from experiments.services.baselines import study_baselines
from experiments.services.exports.cells import csv_chunks
from experiments.services.scores import StudyResults, study_results

SCORE_COLUMNS = (
    "study",
    "model",
    "method",
    "unit",
    "score",
    "sd",
    "ci_low",
    "ci_high",
    "confidence",
    "resamples",
    "seed",
    "n_raters",
    "n_in_progress",
    "fake_error",
    "real_error",
    "fid",
    "kid",
    "kid_sd",
    "precision",
    "recall",
    "baseline_real_images",
    "baseline_fake_images",
    "baseline_weights_sha256",
)


def _baseline_values(baseline: Baseline | None) -> tuple[Any, ...]:
    if baseline is None:
        return (None,) * 8
    return (
        baseline.fid,
        baseline.kid_mean,
        baseline.kid_sd,
        baseline.precision,
        baseline.recall,
        baseline.n_real,
        baseline.n_fake,
        baseline.weights_sha256,
    )


def score_rows(study: Study, *, results: StudyResults | None = None) -> Iterator[tuple[Any, ...]]:
    """One row per model (SCORE_COLUMNS), exactly study_results' numbers, and the automated
    baselines (FID, KID, precision, recall against the study's real images) where
    compute_baselines has stored them; empty otherwise, never guessed."""
    results = results or study_results(study)
    baselines = study_baselines(study)
    for model in results.models:
        score, inf = model.score, model.inf
        yield (
            study.public_id,
            model.name,
            results.method,
            results.unit,
            score.estimate if score else None,
            score.sd if score else None,
            score.low if score else None,
            score.high if score else None,
            score.confidence if score else None,
            score.resamples if score else None,
            score.seed if score else None,
            model.n_raters,
            model.n_in_progress,
            inf.fake_error if inf else None,
            inf.real_error if inf else None,
            *_baseline_values(baselines.get(model.name)),
        )


def scores_csv(study: Study, *, results: StudyResults | None = None) -> Iterator[str]:
    return csv_chunks(SCORE_COLUMNS, score_rows(study, results=results))
