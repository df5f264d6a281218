"""The rater's pages (landing, start, task, finish) and the images they fetch. Thin: the
work is in experiments.services.raters; nothing here tells real from fake."""

from __future__ import annotations

import mimetypes

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseGone
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from experiments.consumers import rater_session_key, study_group
from experiments.models import Image, RaterSession, Study, Trial
from experiments.services.raters import (
    ProtocolError,
    session_start,
    task_blocks,
    trial_current,
)
from experiments.services.served_images import image_served_bytes

# Recruitment platforms put the worker's id in the study link under these names.
EXTERNAL_ID_PARAMS = [
    ("PROLIFIC_PID", RaterSession.Source.PROLIFIC),
    ("workerId", RaterSession.Source.MTURK),
    ("external_id", RaterSession.Source.LINK),
]
PASSED_ON_PARAMS = [
    "PROLIFIC_PID",
    "STUDY_ID",
    "SESSION_ID",
    "workerId",
    "assignmentId",
    "hitId",
    "external_id",
]


def _rater_session(request: HttpRequest, study: Study) -> RaterSession | None:
    session_id = request.session.get(rater_session_key(study.public_id))
    if session_id is None:
        return None
    return RaterSession.objects.filter(pk=session_id, study=study).first()


def _landing_context(study: Study, params) -> dict:
    blocks, per_block = task_blocks(study)
    return {
        "study_open": study.status == Study.Status.LIVE,
        "timed": study.method == Study.Method.TIME,
        "real_percent": round(study.real_fraction * 100),
        "qualification_trials": study.qualification_trials,
        "task_trials": blocks * per_block,
        "blocks": blocks,
        "feedback": study.feedback,
        "form_action": reverse("experiments:rater_start", args=[study.public_id]),
        "hidden_fields": [(k, params[k][:200]) for k in PASSED_ON_PARAMS if params.get(k)],
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
    external_id, source = "", RaterSession.Source.LINK
    for param, param_source in EXTERNAL_ID_PARAMS:
        if request.POST.get(param, "").strip():
            external_id, source = request.POST[param], param_source
            break
    existing = _rater_session(request, study_obj)
    try:
        if existing and not external_id:
            session = existing
        else:
            session = session_start(
                study=study_obj,
                external_id=external_id,
                source=source,
                user_agent=request.headers.get("User-Agent", ""),
            )
    except ProtocolError as error:
        context["error"] = error.message
        return render(request, "rater/landing.html", context, status=409)
    request.session[rater_session_key(study_obj.public_id)] = session.id
    # The researcher's live progress counts raters from their consent on, not their first
    # answer.
    async_to_sync(get_channel_layer().group_send)(
        study_group(study_obj.public_id), {"type": "study.progress"}
    )
    return redirect("experiments:rater_task", study=study_obj.public_id)


@require_GET
def rater_task(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = get_object_or_404(Study, public_id=study)
    session = _rater_session(request, study_obj)
    if session is None:
        return redirect("experiments:rater_landing", study=study_obj.public_id)
    rater_data = {
        "ws_url": f"/ws/rate/{study_obj.public_id}/",
        "done_url": reverse("experiments:rater_done", args=[study_obj.public_id]),
    }
    return render(request, "rater/task.html", {"rater_data": rater_data})


@require_GET
def rater_done(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = get_object_or_404(Study, public_id=study)
    session = _rater_session(request, study_obj)
    if session is None:
        return redirect("experiments:rater_landing", study=study_obj.public_id)
    outcome = {
        RaterSession.Status.COMPLETED: "completed",
        RaterSession.Status.FAILED_QUALIFICATION: "failed_qualification",
        RaterSession.Status.EXCLUDED: "excluded",
        RaterSession.Status.ABANDONED: "excluded",
    }.get(session.status, "in_progress" if study_obj.status == Study.Status.LIVE else "closed")
    return render(
        request,
        "rater/done.html",
        {
            "outcome": outcome,
            "completion_code": session.completion_code if outcome == "completed" else "",
            "task_url": reverse("experiments:rater_task", args=[study_obj.public_id]),
        },
    )


def _image_response(image: Image) -> HttpResponse:
    # The bytes alone, at the study's one served length: no file name, no Last-Modified or
    # ETag, nothing cached.
    content = image_served_bytes(image)
    content_type = mimetypes.guess_type(image.file.name)[0] or "application/octet-stream"
    response = HttpResponse(content, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def rater_image(request: HttpRequest, trial: str) -> HttpResponse:
    """The current trial's image, for its rater only, until it has been presented."""
    trial_obj = (
        Trial.objects.select_related("session__study", "image__study")
        .filter(public_id=trial)
        .first()
    )
    if trial_obj is None:
        raise Http404
    session_id = request.session.get(rater_session_key(trial_obj.session.study.public_id))
    if session_id != trial_obj.session_id:
        raise Http404
    current = trial_current(trial_obj.session)
    if current is None or current.id != trial_obj.id or trial_obj.presented_at is not None:
        return HttpResponseGone("This image is no longer available.")
    return _image_response(trial_obj.image)


@require_GET
def rater_mask(request: HttpRequest, mask: str) -> HttpResponse:
    image = get_object_or_404(
        Image.objects.select_related("study"), public_id=mask, role=Image.Role.MASK
    )
    if request.session.get(rater_session_key(image.study.public_id)) is None:
        raise Http404
    return _image_response(image)
