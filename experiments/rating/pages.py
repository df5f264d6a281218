"""The rater's pages (landing, MTurk's preview, start, task, finish) and the images they
fetch. Thin: who the rater is comes from experiments.recruiting.arrival, their session from
experiments.rating.lifecycle, how they leave from experiments.recruiting.finish, the images
from experiments.rating.images; nothing here tells real from fake. The pages may be framed
by MTurk's worker sites only (experiments.recruiting.framing)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseGone
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from experiments.models import RaterSession, Study
from experiments.rating.images import (
    ImageRefused,
    ServedImage,
    example_image_serve,
    mask_image_serve,
    trial_image_serve,
)
from experiments.rating.lifecycle import (
    arrival_session,
    rater_arrive,
    rater_session_key,
    session_held,
    session_outcome,
    study_takes_new_raters,
)
from experiments.rating.messages import ProtocolError
from experiments.rating.sessions import ANSWER_KEYS, rater_settings
from experiments.recruiting import finish
from experiments.recruiting.arrival import Arrival, ArrivalRefused, arrival_read
from experiments.recruiting.framing import mturk_frameable
from experiments.services.study_texts import consent_text_shown, minutes_shown, pay_shown

Source = RaterSession.Source
# Errors that mean the study takes no new raters: the rater leaves with the "full" outcome.
NOT_TAKING = {"study_closed", "study_full"}


def _study_context(study: Study) -> dict:
    """What the landing and preview pages say about the study."""
    blocks, per_block = study.task_blocks
    return {
        "study": study,
        "timed": study.method == Study.Method.TIME,
        "real_percent": round(study.real_fraction * 100),
        "qualification_trials": study.qualification_trials,
        "task_trials": blocks * per_block,
        "blocks": blocks,
        "feedback": study.feedback,
        "keys": ANSWER_KEYS,
        "instructions": study.instructions.strip(),
        "minutes": minutes_shown(study),
        "pay": pay_shown(study),
        "contact": study.contact.strip(),
        "consent": consent_text_shown(study),
    }


def _landing(
    request: HttpRequest, study: Study, arrival: Arrival, *, error: str = "", status: int = 200
) -> HttpResponse:
    context = {
        **_study_context(study),
        "study_open": study.status == Study.Status.LIVE,
        "form_action": reverse("experiments:rater_start", args=[study.public_id]),
        "hidden_fields": arrival.passed_on(),
        # A crowd worker who does not agree is sent back to the platform with its outcome.
        "can_decline": arrival.source != Source.LINK,
        "error": error,
    }
    return render(request, "rater/landing.html", context, status=status)


def _finished(
    request: HttpRequest, study: Study, *, outcome: str, arrival_source: str, session=None
) -> HttpResponse:
    """The finish page for an outcome: the code, and the platform's redirect or post."""
    finishing = finish.finish_for(
        study=study, outcome=outcome, source=arrival_source, session=session
    )
    context = {
        "outcome": outcome,
        "finish": finishing,
        "finish_data": {
            "redirect_url": finishing.redirect_url,
            "post": bool(finishing.post_url),
        },
        "task_url": reverse("experiments:rater_task", args=[study.public_id]),
    }
    return render(request, "rater/done.html", context)


def _refused(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "rater/refused.html", {"message": message}, status=400)


@require_GET
@mturk_frameable
def rater_landing(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = get_object_or_404(Study, public_id=study)
    try:
        arrival = arrival_read(request.GET)
    except ArrivalRefused as refused:
        return _refused(request, str(refused))
    if arrival.preview:
        # MTurk's preview: what the task is, an example image, no way to start, no session.
        return render(request, "rater/preview.html", _study_context(study_obj))
    existing = arrival_session(study=study_obj, browser_session=request.session, arrival=arrival)
    # A crowd worker whom the study cannot take, or anyone once it is full, leaves with the
    # "full" outcome (and Prolific's code for it); a plain link to a closed study says so.
    takes = existing is not None or study_takes_new_raters(study_obj)
    closed_link = study_obj.status != Study.Status.LIVE and arrival.source == Source.LINK
    if not takes and not closed_link:
        return _finished(request, study_obj, outcome=finish.FULL, arrival_source=arrival.source)
    return _landing(request, study_obj, arrival)


@require_POST
@mturk_frameable
def rater_start(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = get_object_or_404(Study, public_id=study)
    try:
        arrival = arrival_read(request.POST)
    except ArrivalRefused as refused:
        return _refused(request, str(refused))
    if arrival.preview:
        return _refused(request, "Accept the HIT on MTurk before you start.")
    if request.POST.get("decline"):
        return _finished(
            request, study_obj, outcome=finish.NO_CONSENT, arrival_source=arrival.source
        )
    if not request.POST.get("consent"):
        return _landing(
            request,
            study_obj,
            arrival,
            error="Please tick the box to say you agree before starting.",
            status=400,
        )
    try:
        session = rater_arrive(
            study=study_obj,
            held=session_held(study=study_obj, browser_session=request.session),
            arrival=arrival,
            user_agent=request.headers.get("User-Agent", ""),
        )
    except ProtocolError as error:
        # A crowd worker whom the study cannot take leaves with the "full" outcome (and
        # Prolific's code for it), as does anyone once the study is full.
        link = arrival.source == Source.LINK
        if error.code == "study_full" or (error.code in NOT_TAKING and not link):
            return _finished(request, study_obj, outcome=finish.FULL, arrival_source=arrival.source)
        return _landing(request, study_obj, arrival, error=error.message, status=409)
    request.session[rater_session_key(study_obj.public_id)] = session.id
    return redirect("experiments:rater_task", study=study_obj.public_id)


@require_GET
@mturk_frameable
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
@mturk_frameable
def rater_done(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = get_object_or_404(Study, public_id=study)
    session = session_held(study=study_obj, browser_session=request.session)
    if session is None:
        return redirect("experiments:rater_landing", study=study_obj.public_id)
    return _finished(
        request,
        study_obj,
        outcome=session_outcome(session),
        arrival_source=session.source,
        session=session,
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


@require_GET
def rater_example(request: HttpRequest, study: str) -> HttpResponse:
    """An image of the study, for the preview: one of its task images at random, real or fake
    alike and unlabelled, so it says nothing about any image's label."""
    study_obj = get_object_or_404(Study, public_id=study, status=Study.Status.LIVE)
    try:
        image = example_image_serve(study=study_obj)
    except ImageRefused:
        raise Http404 from None
    return _image_response(image)
