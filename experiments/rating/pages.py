"""The rater's pages (landing, MTurk's preview, device, start, task, finish) and the images they
fetch. Thin: who the rater is comes from experiments.recruiting.arrival, their session from
experiments.rating.lifecycle, how they leave from experiments.recruiting.finish, the images
from experiments.rating.images; nothing here tells real from fake. The pages may be framed
by MTurk's worker sites only (experiments.recruiting.framing)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseGone
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from experiments.models import RaterSession, Study
from experiments.rating.display import (
    DEVICE_REQUIREMENTS,
    DeviceReportInvalid,
    device_problems,
    device_report_read,
    display_settings,
)
from experiments.rating.expiry import idle_reason, sessions_expire
from experiments.rating.groups import pool_id, pool_kept
from experiments.rating.images import (
    ImageRefused,
    ServedImage,
    example_image_serve,
    mask_image_serve,
    trial_image_serve,
)
from experiments.rating.lifecycle import (
    SessionRefused,
    arrival_session,
    browser_id,
    new_session_refusal,
    rater_arrive,
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
        # A rater whose passed qualification a qualified pool keeps goes straight to the task.
        "qualification_kept": study.qualification_trials > 0
        and study.group_id is not None
        and pool_kept(
            study,
            external_id=pool_id(source=arrival.source, external_id=arrival.external_id),
            browser=browser_id(request.session),
        )
        is not None,
        "study_open": study.status == Study.Status.LIVE,
        "form_action": reverse("experiments:rater_start", args=[study.public_id]),
        "hidden_fields": arrival.passed_on(),
        # A crowd worker who does not agree is sent back to the platform with its outcome.
        "can_decline": arrival.source != Source.LINK,
        "error": error,
        "device_check": _device_check_data(study, arrival),
    }
    return render(request, "rater/landing.html", context, status=status)


def _arrival_query(arrival: Arrival) -> str:
    return urlencode(arrival.passed_on())


def _device_check_data(study: Study, arrival: Arrival) -> dict:
    """What the landing page's device check (static/js/device_check.js) measures against, and
    where it sends a device that fails (the device page, with the rater's platform ids)."""
    return {
        "display": display_settings(study),
        "requirements": DEVICE_REQUIREMENTS,
        "device_url": reverse("experiments:rater_device", args=[study.public_id])
        + "?"
        + _arrival_query(arrival),
    }


def _device_page(
    request: HttpRequest, study: Study, arrival: Arrival, problems: list, *, status: int = 200
) -> HttpResponse:
    """Why this device cannot take the study, and the platform's "incompatible device" outcome
    (Prolific's code_device; MTurk: return the HIT). Nothing is stored, no session started."""
    finishing = finish.finish_for(study=study, outcome=finish.DEVICE, source=arrival.source)
    retry = any(problem.retry for problem in problems)
    landing = reverse("experiments:rater_landing", args=[study.public_id])
    query = _arrival_query(arrival)
    again = f"{landing}?{query}" if query else landing
    context = {
        "problems": problems,
        "finish": finishing,
        # Back to Prolific at once only when checking again cannot help; otherwise the
        # participant reads why, and goes back with the link when they choose to.
        "finish_data": {"redirect_url": "" if retry else finishing.redirect_url, "post": False},
        "retry_url": again if retry else "",
    }
    return render(request, "rater/device.html", context, status=status)


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
        "idle_minutes": study.idle_minutes,
        "end_reason": session.end_reason if session is not None else "",
        "idle_ended": session is not None and session.end_reason == idle_reason(study),
    }
    return render(request, "rater/done.html", context)


def _refused(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "rater/refused.html", {"message": message}, status=400)


def _cannot_start(
    request: HttpRequest, study: Study, refused: SessionRefused, arrival: Arrival
) -> HttpResponse:
    """Why this browser cannot take part (or continue) here; it is shown nothing of any
    session. A rater who took part in another study of an exclusive group leaves as a crowd
    platform expects of someone it should not have sent (return the submission or the HIT)."""
    if refused.code == "other_study":
        return _finished(request, study, outcome=finish.OTHER_STUDY, arrival_source=arrival.source)
    context = {"message": refused.message, "source": arrival.source}
    return render(request, "rater/cannot_start.html", context, status=409)


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
    sessions_expire(study_obj)
    try:
        existing = arrival_session(
            study=study_obj, browser_session=request.session, arrival=arrival
        )
        refused = (
            existing is None
            and study_obj.group_id
            and new_session_refusal(
                study_obj, external_id=arrival.external_id, browser=browser_id(request.session)
            )
        )
        if refused:
            raise refused
    except SessionRefused as refused:
        return _cannot_start(request, study_obj, refused, arrival)
    if existing is not None and existing.status in RaterSession.ENDED:
        # A rater whose session is over (finished, abandoned...) is told so, not asked again.
        return _finished(
            request,
            study_obj,
            outcome=session_outcome(existing),
            arrival_source=existing.source,
            session=existing,
        )
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
    # The landing page's device check (absent: no check ran, e.g. a script: accepted).
    try:
        report = device_report_read(request.POST)
    except DeviceReportInvalid as invalid:
        return _refused(request, f"The device check's results cannot be read: {invalid}.")
    problems = device_problems(report) if report is not None else []
    if problems:
        return _device_page(request, study_obj, arrival, problems, status=409)
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
            browser_session=request.session,
            arrival=arrival,
            user_agent=request.headers.get("User-Agent", ""),
        )
    except SessionRefused as refused:
        return _cannot_start(request, study_obj, refused, arrival)
    except ProtocolError as error:
        # A crowd worker whom the study cannot take leaves with the "full" outcome (and
        # Prolific's code for it), as does anyone once the study is full.
        link = arrival.source == Source.LINK
        if error.code == "study_full" or (error.code in NOT_TAKING and not link):
            return _finished(request, study_obj, outcome=finish.FULL, arrival_source=arrival.source)
        return _landing(request, study_obj, arrival, error=error.message, status=409)
    if session.status in RaterSession.ENDED:
        return redirect("experiments:rater_done", study=study_obj.public_id)
    return redirect("experiments:rater_task", study=study_obj.public_id)


@require_GET
@mturk_frameable
def rater_device(request: HttpRequest, study: str) -> HttpResponse:
    """Where the landing page's device check sends a device that fails, its measurements on
    the address; a device that passes (or no measurements) goes back to the landing page."""
    study_obj = get_object_or_404(Study, public_id=study)
    try:
        arrival = arrival_read(request.GET)
        report = device_report_read(request.GET)
    except ArrivalRefused as refused:
        return _refused(request, str(refused))
    except DeviceReportInvalid as invalid:
        return _refused(request, f"The device check's results cannot be read: {invalid}.")
    problems = device_problems(report) if report is not None else []
    if arrival.preview or not problems:
        landing = reverse("experiments:rater_landing", args=[study_obj.public_id])
        query = urlencode([(k, v) for k, v in request.GET.items() if not k.startswith("device_")])
        return redirect(f"{landing}?{query}" if query else landing)
    return _device_page(request, study_obj, arrival, problems)


@require_GET
@mturk_frameable
def rater_task(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = get_object_or_404(Study, public_id=study)
    sessions_expire(study_obj)
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
    sessions_expire(study_obj)
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
