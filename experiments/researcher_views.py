"""The researcher's pages: a study's parameters, its rater link and its results. Thin: the
numbers come from experiments.services.scores."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from experiments.models import Study
from experiments.services.access import studies_visible_to
from experiments.services.raters import staircase_rule, task_blocks
from experiments.services.scores import study_results


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def _verdict(results) -> str:
    comparison = results.comparison
    if comparison is None:
        return "Not enough completed raters yet to compare the models (two per model needed)."
    better = "higher" if results.unit == "ms" else "higher error"
    significant = [p for p in comparison.pairs if p.p_value < 0.05]
    test = "Welch's t-test" if comparison.test == "t-test" else "ANOVA with Tukey HSD"
    if not significant:
        return f"No evidence that the models differ ({test}, p = {comparison.p_value:.3g})."
    sentences = []
    for pair in significant:
        first, second = (pair.a, pair.b) if pair.difference > 0 else (pair.b, pair.a)
        sentences.append(
            f"{first} is more realistic than {second} ({better} score, {test}, "
            f"p = {pair.p_value:.3g})."
        )
    return " ".join(sentences)


@login_required
def study_detail(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = studies_visible_to(request.user).filter(public_id=study).first()
    if study_obj is None:
        # Not "forbidden": an outsider does not learn that the study exists.
        raise Http404
    rule = staircase_rule(study_obj)
    blocks, per_block = task_blocks(study_obj)
    results = study_results(study_obj)
    fmt = _percent if results.unit == "error" else _ms
    rows = []
    for model in results.models:
        score = model.score
        rows.append(
            {
                "name": model.name,
                "n_raters": model.n_raters,
                "n_in_progress": model.n_in_progress,
                "target": study_obj.raters_per_model,
                "score": fmt(score.estimate) if score else None,
                "interval": f"{fmt(score.low)} – {fmt(score.high)}" if score else None,
                "sd": fmt(score.sd) if score else None,
                "fake_error": _percent(model.inf.fake_error) if model.inf else "",
                "real_error": _percent(model.inf.real_error) if model.inf else "",
            }
        )
    return render(
        request,
        "researcher/study.html",
        {
            "study": study_obj,
            "timed": study_obj.method == Study.Method.TIME,
            "rater_link": request.build_absolute_uri(
                reverse("experiments:rater_landing", args=[study_obj.public_id])
            ),
            "target_accuracy": rule.target_accuracy(),
            "below_chance": rule.is_at_or_below_chance(),
            "blocks": blocks,
            "per_block": per_block,
            "rows": rows,
            "unit": results.unit,
            "verdict": _verdict(results),
        },
    )


def study_status(request, study):  # SCAFFOLD (being written)
    raise Http404


def study_sharing(request, study):  # SCAFFOLD (being written)
    raise Http404
