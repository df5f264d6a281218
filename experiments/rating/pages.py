"""The rater's pages (landing, start, task, finish) and the images they fetch. Thin: who the
rater is comes from experiments.recruiting.arrival, their session from
experiments.rating.lifecycle, the images from experiments.rating.images; nothing here tells
real from fake."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseGone
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from experiments.models import Study
from experiments.rating.images import (
    ImageRefused,
    ServedImage,
    mask_image_serve,
    trial_image_serve,
)
from experiments.rating.lifecycle import (
    rater_arrive,
    rater_session_key,
    session_held,
    session_outcome,
)
from experiments.rating.messages import ProtocolError
from experiments.rating.sessions import ANSWER_KEYS, rater_settings
from experiments.recruiting.arrival import arrival_identity, arrival_params


def _landing_context(study: Study, params) -> dict:
    blocks, per_block = study.task_blocks
    return {
        "study_open": study.status == Study.Status.LIVE,
        "timed": study.method == Study.Method.TIME,
        "real_percent": round(study.real_fraction * 100),
        "qualification_trials": study.qualification_trials,
        "task_trials": blocks * per_block,
        "blocks": blocks,
        "feedback": study.feedback,
        "keys": ANSWER_KEYS,
        "form_action": reverse("experiments:rater_start", args=[study.public_id]),
        "hidden_fields": arrival_params(params),
    }


@require_GET
def rater_landing(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = get_object_or_404(Study, public_id=study)
    return render(request, "rater/landing.html", _landing_context(study_obj, request.GET))


@require_POST
def rater_start(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = get_object_or_404(Study, public_id=study)
    context = _landing_context(study_obj, request.POST)
    if not request.POST.get("consent"):
        context["error"] = "Please tick the box to say you agree before starting."
        return render(request, "rater/landing.html", context, status=400)
    external_id, source = arrival_identity(request.POST)
    try:
        session = rater_arrive(
            study=study_obj,
            held=session_held(study=study_obj, browser_session=request.session),
            external_id=external_id,
            source=source,
            user_agent=request.headers.get("User-Agent", ""),
        )
    except ProtocolError as error:
        context["error"] = error.message
        return render(request, "rater/landing.html", context, status=409)
    request.session[rater_session_key(study_obj.public_id)] = session.id
    return redirect("experiments:rater_task", study=study_obj.public_id)


@require_GET
def rater_task(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = get_object_or_404(Study, public_id=study)
    if session_held(study=study_obj, browser_session=request.session) is None:
        return redirect("experiments:rater_landing", study=study_obj.public_id)
    rater_data = {
        "ws_url": f"/ws/rate/{study_obj.public_id}/",
        "done_url": reverse("experiments:rater_done", args=[study_obj.public_id]),
        "settings": rater_settings(study_obj),
    }
    return render(request, "rater/task.html", {"rater_data": rater_data, "keys": ANSWER_KEYS})


@require_GET
def rater_done(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = get_object_or_404(Study, public_id=study)
    session = session_held(study=study_obj, browser_session=request.session)
    if session is None:
        return redirect("experiments:rater_landing", study=study_obj.public_id)
    outcome = session_outcome(session)
    return render(
        request,
        "rater/done.html",
        {
            "outcome": outcome,
            "completion_code": session.completion_code if outcome == "completed" else "",
            "task_url": reverse("experiments:rater_task", args=[study_obj.public_id]),
        },
    )


def _image_response(image: ServedImage) -> HttpResponse:
    # The bytes alone, at the study's one served length: no file name, no Last-Modified or
    # ETag, nothing cached.
    response = HttpResponse(image.content, content_type=image.content_type)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def rater_image(request: HttpRequest, trial: str) -> HttpResponse:
    """The current trial's image, for its rater only, until it has been presented."""
    try:
        image = trial_image_serve(trial_public_id=trial, browser_session=request.session)
    except ImageRefused as refused:
        if refused.gone:
            return HttpResponseGone("This image is no longer available.")
        raise Http404 from None
    return _image_response(image)


@require_GET
def rater_mask(request: HttpRequest, mask: str) -> HttpResponse:
    try:
        image = mask_image_serve(mask_public_id=mask, browser_session=request.session)
    except ImageRefused:
        raise Http404 from None
    return _image_response(image)
