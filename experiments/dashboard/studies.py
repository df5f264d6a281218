"""The researcher's pages: the studies list, and a study's parameters, rater link, results and
how they narrow, with the owner's controls (open/close, sharing). Thin: the numbers come from
experiments.services.scores, the changes from experiments.services.studies, who may see or
change what from experiments.services.access."""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from experiments.dashboard.formatting import (
    confidence_label,
    p_value,
    percent,
    score_formatter,
    verdict,
)
from experiments.models import RaterSession, Study, StudyGroup
from experiments.rating.display import display_shown
from experiments.rating.groups import pool_size
from experiments.recruiting.links import prolific_study_url
from experiments.services.access import (
    studies_visible_to,
    study_can_edit,
    study_for_editor,
    study_for_viewer,
    study_owner_or_staff,
)
from experiments.services.baselines import MIN_MODELS_FOR_RHO, baselines_summary
from experiments.services.exclusions import rules_summary
from experiments.services.exports.downloads import EXPORTS
from experiments.services.payments import study_cost
from experiments.services.problems import InputProblems
from experiments.services.progress import study_progress
from experiments.services.scores import (
    IntervalHistory,
    StudyResults,
    interval_name,
    study_report,
    study_results,
    study_results_without_exclusions,
)
from experiments.services.studies import (
    SHARING_ACTIONS,
    STATUS_ACTIONS,
    STATUS_CHANGES,
    study_share,
    study_status_change,
)
from experiments.services.subgroups import subgroup_results
from hype.science.frames import MaskTiming, mask_timings

# The interval width the precision panel plans for unless the researcher asks for another,
# in the units the page shows: ms for HYPE_time, percentage points for HYPE_inf. Roughly the
# paper's intervals with 30 raters per model.
DEFAULT_TARGET_WIDTH = {Study.Method.TIME: 50.0, Study.Method.INF: 10.0}
MAX_TARGET_WIDTH = {Study.Method.TIME: 1000.0, Study.Method.INF: 100.0}

# What the researcher is told after opening or closing (experiments.services.studies decides
# whether the change is allowed).
STATUS_TOLD = {
    "open": "“{name}” is live: the rater link takes new raters.",
    "close": "“{name}” is closed: the rater link takes no more raters or answers.",
}


# --- Formatting ----------------------------------------------------------------------------


# --- The studies list ----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSummary:
    name: str
    score: str | None
    interval: str | None


@dataclass(frozen=True)
class StudySummary:
    """One line of the studies list."""

    study: Study
    shared_with_you: bool
    owned_by_someone_else: bool
    raters_done: int
    raters_target: int
    models: tuple[ModelSummary, ...]


def study_summaries(user) -> list[StudySummary]:
    """The studies the user may see, each with its current scores. One scores computation
    (a few queries) per study: fine for the few dozen studies a researcher has."""
    shared = set(user.shared_studies.values_list("pk", flat=True))
    summaries = []
    for study in studies_visible_to(user).select_related("owner"):
        results = study_results(study)
        fmt = score_formatter(results.unit)
        models = tuple(
            ModelSummary(
                name=m.name,
                score=fmt(m.headline.estimate) if m.headline else None,
                interval=f"{fmt(m.headline.low)}–{fmt(m.headline.high)}" if m.headline else None,
            )
            for m in results.models
        )
        summaries.append(
            StudySummary(
                study=study,
                shared_with_you=study.pk in shared and study.owner_id != user.pk,
                owned_by_someone_else=study.owner_id != user.pk,
                raters_done=sum(m.n_raters for m in results.models),
                raters_target=study.raters_per_model * len(results.models),
                models=models,
            )
        )
    return summaries


def home(request: HttpRequest) -> HttpResponse:
    """The front page: the studies list once logged in."""
    summaries = study_summaries(request.user) if request.user.is_authenticated else []
    return render(request, "home.html", {"summaries": summaries})


# --- The study page ------------------------------------------------------------------------


def _target_width(request: HttpRequest, study: Study) -> tuple[float, str | None]:
    """The interval width to plan for (page units) and an error if the one asked for is bad."""
    default = DEFAULT_TARGET_WIDTH[Study.Method(study.method)]
    raw = request.GET.get("width", "").strip()
    if not raw:
        return default, None
    limit = MAX_TARGET_WIDTH[Study.Method(study.method)]
    unit = "ms" if study.method == Study.Method.TIME else "percentage points"
    try:
        width = float(raw)
    except ValueError:
        width = math.nan
    if not (math.isfinite(width) and 0 < width <= limit):
        return default, (
            f"The target width must be a number above 0 and at most {limit:g} {unit}; "
            f"showing {default:g} {unit}."
        )
    return width, None


def _result_rows(study: Study, results: StudyResults) -> list[dict]:
    fmt = score_formatter(results.unit)
    rows = []
    for model in results.models:
        score, fit = model.score, model.fit_score
        rows.append(
            {
                "name": model.name,
                "n_raters": model.n_raters,
                "n_excluded": model.n_excluded,
                "n_in_progress": model.n_in_progress,
                "target": study.raters_per_model,
                "score": fmt(score.estimate) if score else None,
                "interval": f"{fmt(score.low)} – {fmt(score.high)}" if score else None,
                "sd": fmt(score.sd) if score else None,
                # HYPE_time's psychometric fit, next to the modal score.
                "fit_score": fmt(fit.estimate) if fit else None,
                "fit_interval": f"{fmt(fit.low)} – {fmt(fit.high)}" if fit else None,
                "fit_sd": fmt(fit.sd) if fit else None,
                "fit_censored_low": model.fit_censored_low,
                "fit_censored_high": model.fit_censored_high,
                "fake_error": percent(model.inf.fake_error) if model.inf else "",
                "real_error": percent(model.inf.real_error) if model.inf else "",
            }
        )
    return rows


def _baselines(study: Study, results: StudyResults) -> dict:
    """The baselines block: FID, KID, the Inception Score (when the weights gave one),
    precision and recall next to HYPE, and how they rank the models against people
    (experiments.services.baselines)."""
    summary = baselines_summary(study, results)
    fmt = score_formatter(results.unit)
    rows = [
        {
            "name": row.model,
            "hype": fmt(row.hype) if row.hype is not None else "–",
            "fid": f"{row.fid:.2f}",
            "kid": (
                "–"
                if row.kid_mean is None
                else f"{1e3 * row.kid_mean:.2f}"
                + (f" ± {1e3 * row.kid_sd:.2f}" if row.kid_sd is not None else "")
            ),
            "inception_score": (
                "–"
                if row.inception_score is None
                else f"{row.inception_score:.2f}"
                + (f" ± {row.inception_score_sd:.2f}" if row.inception_score_sd is not None else "")
            ),
            "precision": f"{row.precision:.3f}" if row.precision is not None else "–",
            "recall": f"{row.recall:.3f}" if row.recall is not None else "–",
            "images": f"{row.n_real} / {row.n_fake}",
        }
        for row in summary.rows
    ]
    # Without any Inception Score, the sentence saying why replaces its column and its rho.
    shown = [
        c
        for c in summary.correlations
        if not (c.metric == "inception_score" and summary.inception_score_absent)
    ]
    correlations = []
    if all(c.rho is None for c in shown):
        most = max((c.n_models for c in shown), default=0)
        correlations.append(
            {
                "label": "each metric",
                "text": f"needs HYPE scores and the metric for at least {MIN_MODELS_FOR_RHO} "
                f"models (this study has {most})",
            }
        )
    for c in shown if not correlations else ():
        if c.rho is None:
            text = (
                f"needs HYPE scores and {c.label} for at least {MIN_MODELS_FOR_RHO} models "
                f"(has {c.n_models})"
            )
        else:
            ranks = "ranks the models as people do" if c.agrees else "ranks them against people"
            text = f"ρ = {c.rho:+.2f} over {c.n_models} models (p = {c.p_value:.2g}): {ranks}"
        correlations.append({"label": c.label, "text": text})
    return {
        "summary": summary,
        "rows": rows,
        "correlations": correlations,
        "references": [
            {"name": b.model.name, "reference": b.reference, "fid": f"{b.fid:.2f}"}
            for b in summary.references
        ],
    }


def _mask_timings(study: Study) -> list[MaskTiming]:
    """What the masks really last at each refresh rate the study's raters measured (at 60 Hz
    before anyone has): frames are whole, so 30 ms is 2 frames = 33.3 ms at 60 Hz."""
    if study.method != Study.Method.TIME or not study.mask_count:
        return []
    measured = RaterSession.objects.filter(study=study, refresh_ms__isnull=False)
    return mask_timings(
        count=study.mask_count,
        mask_ms=study.mask_ms,
        refresh_intervals=measured.values_list("refresh_ms", flat=True),
    )


def _scores_chart(results: StudyResults) -> dict:
    """What results_chart.js draws: each model's interval and estimate, in page units."""
    scale = 100.0 if results.unit == "error" else 1.0
    return {
        "unit": "%" if results.unit == "error" else "ms",
        "label": (
            "HYPE∞: share of wrong answers (%)"
            if results.unit == "error"
            else "HYPE time: exposure in ms (higher is more realistic)"
        ),
        "chance": 50.0 if results.unit == "error" else None,
        "models": [
            {
                "name": m.name,
                # The headline score: the modal threshold's, or the fit's.
                "estimate": scale * m.headline.estimate,
                "low": scale * m.headline.low,
                "high": scale * m.headline.high,
                "raters": m.n_raters,
            }
            for m in results.models
            if m.headline is not None
        ],
    }


def _precision(
    study: Study, results: StudyResults, histories: tuple[IntervalHistory, ...], width: float
) -> dict:
    """The interval widths as raters came in and the raters the spread suggests."""
    scale = 100.0 if results.unit == "error" else 1.0
    unit = "percentage points" if results.unit == "error" else "ms"
    rows = [
        {
            "name": h.name,
            "n_raters": len(h.rater_scores),
            "width": f"{scale * h.points[-1][1]:.1f} {unit}" if h.points else None,
            "raters_needed": h.raters_needed,
        }
        for h in histories
    ]
    needed = [h.raters_needed for h in histories if h.raters_needed is not None]
    return {
        "rows": rows,
        "raters_needed": max(needed) if needed else None,
        "all_models_measured": len(needed) == len(histories),
        "width": width,
        "width_label": f"{width:g} {unit}",
        "unit": unit,
        "chart": {
            "unit": "pp" if results.unit == "error" else "ms",
            "axis": f"Width of the {confidence_label(study.confidence)} interval ({unit})",
            "target": width,
            "models": [
                {"name": h.name, "points": [{"x": k, "y": scale * w} for k, w in h.points]}
                for h in histories
            ],
        },
        # A line needs two points: three completed raters in some model.
        "has_points": any(len(h.points) >= 2 for h in histories),
    }


def _subgroup_rows(study: Study) -> list[dict]:
    """The subgroup table: per model, each tag's error with its interval and answers, and
    the test of whether the tags differ; empty when no image of the study has a tag."""
    found = subgroup_results(study)
    if found is None:
        return []
    models = []
    for model in found.models:
        tags = [
            {
                "tag": tag.tag,
                "error": percent(tag.error.estimate),
                "interval": f"{percent(tag.error.low)} – {percent(tag.error.high)}",
                "fake_error": percent(tag.fake_error) if tag.fake_error is not None else "–",
                "real_error": percent(tag.real_error) if tag.real_error is not None else "–",
                "n_answers": tag.n_answers,
                "n_raters": tag.n_raters,
            }
            for tag in model.tags
        ]
        test = model.test
        models.append(
            {
                "name": model.name,
                "tags": tags,
                "test": f"χ²({test.df}) = {test.statistic:.2f}, {p_value(test.p_value)}"
                if test
                else "–",
            }
        )
    return models


@login_required
@require_safe
def study_detail(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = study_for_viewer(request.user, study)
    rule = study_obj.staircase_rule()
    blocks, per_block = study_obj.task_blocks
    width, width_error = _target_width(request, study_obj)
    # The service plans in the score's units: HYPE_inf widths as fractions, not points.
    scale = 100.0 if study_obj.method == Study.Method.INF else 1.0
    results, histories = study_report(study_obj, target_width=width / scale)
    can_edit = study_can_edit(request.user, study_obj)
    progress = study_progress(study_obj)
    verdict_lead, verdict_pairs = verdict(results)
    return render(
        request,
        "researcher/study.html",
        {
            "study": study_obj,
            "timed": study_obj.method == Study.Method.TIME,
            "can_edit": can_edit,
            "is_owner": study_obj.owner_id == request.user.pk,
            "viewers": study_obj.viewers.order_by("username") if can_edit else [],
            "in_progress": progress["total"]["in_progress"],
            "can_open": Study.Status.LIVE in STATUS_CHANGES[study_obj.status],
            "can_close": Study.Status.CLOSED in STATUS_CHANGES[study_obj.status],
            "rater_link": request.build_absolute_uri(
                reverse("experiments:rater_landing", args=[study_obj.public_id])
            ),
            "prolific_url": prolific_study_url(
                study=study_obj, base_url=request.build_absolute_uri("/")
            ),
            "exports": [
                (
                    kind.label,
                    kind.note,
                    reverse("experiments:study_export", args=[study_obj.public_id, kind.name]),
                )
                for kind in EXPORTS
            ],
            "target_accuracy": rule.target_accuracy(),
            "below_chance": rule.is_at_or_below_chance(),
            "display": display_shown(study_obj),
            "mask_timings": _mask_timings(study_obj),
            "blocks": blocks,
            "per_block": per_block,
            "rows": _result_rows(study_obj, results),
            "subgroups": _subgroup_rows(study_obj),
            # Raters excluded after completing: the scores without exclusions, next to them.
            "n_excluded": results.n_excluded,
            "rows_without_exclusions": _result_rows(
                study_obj, study_results_without_exclusions(study_obj, applied=results)
            )
            if results.n_excluded
            else [],
            "exclusion_rules": rules_summary(study_obj),
            "unit": results.unit,
            "confidence": confidence_label(study_obj.confidence),
            "interval_name": interval_name(results.interval_method),
            "fit_headline": results.unit == "ms" and results.time_score == Study.TimeScore.FIT,
            "fit_slope": f"{results.fit_slope_ms:.0f}" if results.fit_slope_ms else None,
            "fit_lapse": f"{results.fit_lapse:.3f}" if results.fit_lapse is not None else None,
            "verdict": verdict_lead,
            "verdict_pairs": verdict_pairs,
            "scores_chart": _scores_chart(results),
            "baselines": _baselines(study_obj, results),
            "progress": progress,
            "group_choices": list(StudyGroup.objects.filter(owner=study_obj.owner_id))
            if can_edit
            else [],
            "pool_size": pool_size(study_obj.group)
            if study_obj.group and study_obj.group.kind == StudyGroup.Kind.POOL
            else None,
            "precision": _precision(study_obj, results, histories, width),
            "width_error": width_error,
            # What the raters' pay comes to: for the owner and staff only, as the payments page.
            "cost": study_cost(study=study_obj)
            if study_owner_or_staff(request.user, study_obj)
            else None,
        },
    )


def _back_to_study(study: Study, anchor: str = "") -> HttpResponse:
    url = reverse("experiments:study_detail", args=[study.public_id])
    return redirect(f"{url}#{anchor}" if anchor else url)


@login_required
@require_POST
def study_status(request: HttpRequest, study: str) -> HttpResponse:
    """Open (draft or closed -> live) or close (live -> closed) a study: owner and staff."""
    study_obj = study_for_editor(request.user, study)
    action = request.POST.get("action", "")
    if action not in STATUS_ACTIONS:
        return HttpResponseBadRequest("action must be 'open' or 'close'.")
    try:
        study_status_change(study=study_obj, action=action)
    except InputProblems as error:
        messages.error(request, " ".join(error.problems))
    else:
        messages.success(request, STATUS_TOLD[action].format(name=study_obj.name))
    return _back_to_study(study_obj)


@login_required
@require_POST
def study_sharing(request: HttpRequest, study: str) -> HttpResponse:
    """Give a colleague read access to the study by username, or take it away."""
    study_obj = study_for_editor(request.user, study)
    action = request.POST.get("action", "")
    if action not in SHARING_ACTIONS:
        return HttpResponseBadRequest("action must be 'add' or 'remove'.")
    try:
        changed, text = study_share(
            study=study_obj,
            by=request.user,
            action=action,
            username=request.POST.get("username", "").strip(),
        )
    except InputProblems as error:
        level, text = messages.ERROR, " ".join(error.problems)
    else:
        level = messages.SUCCESS if changed else messages.INFO
    # Tagged so that the page shows it in the sharing panel, where the researcher is sent.
    messages.add_message(request, level, text, extra_tags="sharing")
    return _back_to_study(study_obj, "sharing")
