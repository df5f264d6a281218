"""bundle.json: everything needed to reproduce a study's result: its parameters, models,
images and raters counted, study_results at full precision (with exclusions applied, and
without them), the stored baselines, and the software that computed them."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from django.db.models import Count
from django.utils import timezone

from experiments.models import PROTOCOL_PARAMETERS, Baseline, Image, RaterSession, Study
from experiments.services.baselines import study_baselines
from experiments.services.exports.cells import iso_utc
from experiments.services.exports.versions import software_versions
from experiments.services.scores import (
    StudyResults,
    study_results_both,
    study_results_without_exclusions,
)
from experiments.services.studies import study_image_counts


def study_parameters(study: Study) -> dict[str, Any]:
    """The study's method and every protocol parameter (experiments.models.PROTOCOL_PARAMETERS),
    in field order."""
    return {"method": study.method} | {name: getattr(study, name) for name in PROTOCOL_PARAMETERS}


def _json_safe(value: Any) -> Any:
    # JSON has no NaN: a missing fake or real error (no such images) is null.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _rater_counts(study: Study) -> dict[int | None, dict[str, int]]:
    """model id (None before a model is assigned) -> status -> number of sessions."""
    counts: dict[int | None, dict[str, int]] = {}
    rows = (
        RaterSession.objects.filter(study=study)
        .values_list("model_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for model_id, status, n in rows:
        counts.setdefault(model_id, {})[status] = n
    return counts


def _results_data(results: StudyResults, baselines) -> dict[str, Any]:
    result_models = []
    for model in results.models:
        baseline = baselines.get(model.name)
        result_models.append(
            {
                "name": model.name,
                "n_raters": model.n_raters,
                "n_excluded": model.n_excluded,
                "n_in_progress": model.n_in_progress,
                "rater_scores": list(model.rater_scores),
                "score": dataclasses.asdict(model.score) if model.score else None,
                "inf": dataclasses.asdict(model.inf) if model.inf else None,
                # The psychometric fit's score (HYPE_time; null otherwise), as scores.csv.
                "fit_rater_scores": list(model.fit_rater_scores),
                "fit_score": dataclasses.asdict(model.fit_score) if model.fit_score else None,
                "fit_censored_low": model.fit_censored_low if model.fit_score else None,
                "fit_censored_high": model.fit_censored_high if model.fit_score else None,
                # The automated baselines (as in scores.csv): null until computed.
                "fid": baseline.fid if baseline else None,
                "kid": baseline.kid_mean if baseline else None,
                "kid_sd": baseline.kid_sd if baseline else None,
                "inception_score": baseline.inception_score if baseline else None,
                "inception_score_sd": baseline.inception_score_sd if baseline else None,
                "precision": baseline.precision if baseline else None,
                "recall": baseline.recall if baseline else None,
            }
        )
    return {
        "method": results.method,
        "unit": results.unit,
        "exclusions": results.exclusions,
        "n_excluded": results.n_excluded,
        "interval_method": results.interval_method,
        "time_score": results.time_score,
        "fit_slope_ms": results.fit_slope_ms,
        "fit_lapse": results.fit_lapse,
        "models": result_models,
        "comparison": (dataclasses.asdict(results.comparison) if results.comparison else None),
    }


def bundle(
    study: Study,
    *,
    results: StudyResults | None = None,
    without_exclusions: StudyResults | None = None,
) -> dict[str, Any]:
    """Everything needed to reproduce the study's result: its parameters, models, images
    and raters counted, study_results at full precision (exclusions applied, and without
    them), and the software that computed them. JSON-ready (no NaN)."""
    if results is None:
        results, without_exclusions = study_results_both(study)
    elif without_exclusions is None:
        without_exclusions = study_results_without_exclusions(study, applied=results)
    images = study_image_counts(study)
    raters = _rater_counts(study)
    models = []
    for model in study.models.order_by("name"):
        models.append(
            {
                "name": model.name,
                "description": model.description,
                "images": images.get(model.id, {}),
                "raters": raters.get(model.id, {}),
            }
        )
    baselines = study_baselines(study)
    return _json_safe(
        {
            "format": "hype-study-bundle",
            "format_version": 1,
            "exported_at": iso_utc(timezone.now()),
            "software": software_versions(),
            "study": {
                "public_id": study.public_id,
                "name": study.name,
                "method": study.method,
                "status": study.status,
                "created_at": iso_utc(study.created_at),
                "trials_per_rater": study.trials_per_rater,
            },
            "parameters": study_parameters(study),
            "models": models,
            "real_images": images.get("real", {}),
            "mask_images": images.get("mask", {}).get(Image.Role.MASK, 0),
            "unassigned_raters": raters.get(None, {}),
            "baselines": [
                {
                    "model": b.model.name,
                    "reference": b.reference,
                    "fid": b.fid,
                    "kid": b.kid_mean,
                    "kid_sd": b.kid_sd,
                    "kid_subsets": b.kid_subsets,
                    "kid_subset_size": b.kid_subset_size,
                    "inception_score": b.inception_score,
                    "inception_score_sd": b.inception_score_sd,
                    "precision": b.precision,
                    "recall": b.recall,
                    "neighbours": b.neighbours,
                    "n_real": b.n_real,
                    "n_fake": b.n_fake,
                    "weights_origin": b.weights_origin,
                    "weights_sha256": b.weights_sha256,
                    "computed_at": iso_utc(b.computed_at),
                }
                for b in Baseline.objects.filter(study=study)
                .select_related("model")
                .order_by("model__name", "reference")
            ],
            "results": _results_data(results, baselines),
            "results_without_exclusions": _results_data(without_exclusions, baselines),
        }
    )
