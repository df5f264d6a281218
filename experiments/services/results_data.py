"""A study's HYPE scores as JSON-ready plain data: what the API's results endpoint sends and
what `manage.py hype_scores --format json` prints, so the terminal and the API agree. Both the
study's result (exclusions applied) and the result without exclusions are in it."""

from __future__ import annotations

import math
from typing import Any

from experiments.models import Study
from experiments.services.baselines import study_baselines
from experiments.services.scores import (
    StudyResults,
    study_results_both,
    study_results_without_exclusions,
)
from hype.science.bootstrap import BootstrapResult


def _finite(value: float | None) -> float | None:
    # Strict JSON has no NaN: a rate without a denominator (no fakes shown, say) is null.
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def study_results_data(
    *,
    study: Study,
    results: StudyResults | None = None,
    without_exclusions: StudyResults | None = None,
) -> dict[str, Any]:
    """The study's scores as plain data, straight from study_results (also used by
    `manage.py hype_scores --format json`, so the terminal and the API agree): the study's
    result (its completed raters who are not excluded) at the top, and under
    `without_exclusions` the same made from every rater who completed, those excluded
    afterwards among them."""
    if results is None:
        results, without_exclusions = study_results_both(study)
    elif without_exclusions is None:
        without_exclusions = study_results_without_exclusions(study, applied=results)
    baselines = study_baselines(study)
    return {
        "study": study.public_id,
        "method": results.method,
        "unit": results.unit,
        **_result_data(study, results, baselines),
        "without_exclusions": _result_data(study, without_exclusions, baselines),
    }


def _bootstrap_data(score: BootstrapResult | None) -> dict[str, Any] | None:
    if score is None:
        return None
    return {
        "estimate": _finite(score.estimate),
        "sd": _finite(score.sd),
        "low": _finite(score.low),
        "high": _finite(score.high),
        "n": score.n,
        "resamples": score.resamples,
        "confidence": score.confidence,
        "seed": score.seed,
        "method": score.method,
    }


def _result_data(study: Study, results: StudyResults, baselines) -> dict[str, Any]:
    models = []
    for model in results.models:
        baseline = baselines.get(model.name)
        models.append(
            {
                "name": model.name,
                "n_raters": model.n_raters,
                "n_excluded": model.n_excluded,
                "target_raters": study.raters_per_model,
                "n_in_progress": model.n_in_progress,
                "rater_scores": list(model.rater_scores),
                "score": _bootstrap_data(model.score),
                # The psychometric fit's score (HYPE_time; empty and null for HYPE_inf).
                "fit_rater_scores": list(model.fit_rater_scores),
                "fit_score": _bootstrap_data(model.fit_score),
                "fit_censored_low": model.fit_censored_low if model.fit_score else None,
                "fit_censored_high": model.fit_censored_high if model.fit_score else None,
                "error": _finite(model.inf.error) if model.inf else None,
                "fake_error": _finite(model.inf.fake_error) if model.inf else None,
                "real_error": _finite(model.inf.real_error) if model.inf else None,
                "baselines": None
                if baseline is None
                else {
                    "fid": _finite(baseline.fid),
                    "kid": _finite(baseline.kid_mean),
                    "kid_sd": _finite(baseline.kid_sd),
                    "inception_score": _finite(baseline.inception_score),
                    "inception_score_sd": _finite(baseline.inception_score_sd),
                    "precision": _finite(baseline.precision),
                    "recall": _finite(baseline.recall),
                    "n_real": baseline.n_real,
                    "n_fake": baseline.n_fake,
                    "weights_sha256": baseline.weights_sha256,
                },
            }
        )
    comparison = results.comparison
    return {
        "exclusions": results.exclusions,
        "n_excluded": results.n_excluded,
        "interval_method": results.interval_method,
        "time_score": results.time_score,
        "fit_slope_ms": _finite(results.fit_slope_ms),
        "fit_lapse": _finite(results.fit_lapse),
        "models": models,
        "comparison": None
        if comparison is None
        else {
            "test": comparison.test,
            "statistic": _finite(comparison.statistic),
            "p_value": _finite(comparison.p_value),
            "pairs": [
                {
                    "a": pair.a,
                    "b": pair.b,
                    "difference": pair.difference,
                    "p_value": _finite(pair.p_value),
                    "low": _finite(pair.low),
                    "high": _finite(pair.high),
                }
                for pair in comparison.pairs
            ],
        },
    }
