"""A study's images, for its researchers: how often each fake fooled raters (was called
real), with galleries of the most and least convincing fakes per model, how often real
images were called fake (experiments.services.image_tallies), and the image files
themselves behind the study's permissions."""

from __future__ import annotations

import mimetypes
from collections import defaultdict

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from experiments.models import Image
from experiments.services.access import study_for_viewer
from experiments.services.image_tallies import ImageTally, gallery_pick, image_tallies

MIN_ANSWERS = 5
GALLERY_SIZE = 8


def _positive_int(value: str | None, default: int, *, high: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return min(max(number, 1), high)


@login_required
@require_GET
def image_gallery(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = study_for_viewer(request.user, study)
    min_answers = _positive_int(request.GET.get("min"), MIN_ANSWERS, high=10_000)
    counts = image_tallies(study_obj)
    images = Image.objects.filter(study=study_obj).exclude(role=Image.Role.MASK)
    fakes_by_model: dict[int, list[ImageTally]] = defaultdict(list)
    reals: list[ImageTally] = []
    for image in images.order_by("id"):
        answered, wrong = counts.get(image.id, (0, 0))
        tally = ImageTally(image=image, answered=answered, wrong=wrong)
        if image.is_real:
            reals.append(tally)
        else:
            fakes_by_model[image.model_id].append(tally)

    models = []
    for model in study_obj.models.order_by("name"):
        tallies = fakes_by_model.get(model.id, [])
        ranked, most, least = gallery_pick(tallies, min_answers=min_answers, size=GALLERY_SIZE)
        answered = sum(t.answered for t in tallies)
        fooled = sum(t.wrong for t in tallies)
        models.append(
            {
                "model": model,
                "images": len(tallies),
                "seen": sum(1 for t in tallies if t.answered),
                "ranked": len(ranked),
                "answered": answered,
                "fooled": fooled,
                "rate": f"{100 * fooled / answered:.1f}%" if answered else "—",
                "galleries": [
                    ("most", "Most convincing", "fooled raters most often", most),
                    ("least", "Least convincing", "fooled raters least often", least),
                ],
                "table": sorted(
                    (t for t in tallies if t.answered),
                    key=lambda t: (-t.rate, -t.answered, t.image.id),
                ),
            }
        )
    real_answered = sum(t.answered for t in reals)
    real_wrong = sum(t.wrong for t in reals)
    real_ranked, real_most, _ = gallery_pick(reals, min_answers=min_answers, size=GALLERY_SIZE)
    return render(
        request,
        "researcher/images.html",
        {
            "study": study_obj,
            "models": models,
            "min_answers": min_answers,
            "gallery_size": GALLERY_SIZE,
            "reals": {
                "images": len(reals),
                "seen": sum(1 for t in reals if t.answered),
                "ranked": len(real_ranked),
                "answered": real_answered,
                "called_fake": real_wrong,
                "rate": f"{100 * real_wrong / real_answered:.1f}%" if real_answered else "—",
                "most": real_most,
            },
        },
    )


@login_required
@require_GET
def image_file(request: HttpRequest, study: str, image: str) -> HttpResponse:
    """One of the study's images, for its researchers (never a rater's one-shot URL)."""
    study_obj = study_for_viewer(request.user, study)
    image_obj = Image.objects.filter(study=study_obj, public_id=image).first()
    if image_obj is None:
        raise Http404("No such image in this study.")
    try:
        with image_obj.file.open("rb") as handle:
            content = handle.read()
    except FileNotFoundError:
        raise Http404("The image file is missing from storage.") from None
    content_type = mimetypes.guess_type(image_obj.file.name)[0] or "application/octet-stream"
    response = HttpResponse(content, content_type=content_type)
    # Private: behind a login, so no shared cache may keep it; the content under a public id
    # never changes, so the browser may.
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
