"""A study's texts page: what raters are told and paid (instructions, consent, duration, pay,
contact) and the completion code of each outcome. The owner and staff change them; a colleague
with read access sees them. Checked and stored by experiments.services.study_texts."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from experiments.models import Study
from experiments.services.access import study_can_edit, study_for_editor, study_for_viewer
from experiments.services.problems import InputProblems
from experiments.services.study_texts import (
    DEFAULT_CONSENT,
    TEXT_FIELDS,
    minutes_estimated,
    minutes_shown,
    pay_shown,
    study_texts_update,
    study_texts_values,
)


def _render(request, study: Study, values, problems, *, can_edit: bool, status=200):
    # A problem names its field first ("pay_base: ..."), so it is shown under that field.
    by_field: dict[str, list[str]] = {}
    general = []
    for problem in problems:
        name, _, text = problem.partition(": ")
        if name in TEXT_FIELDS:
            by_field.setdefault(name, []).append(text)
        else:
            general.append(problem)
    return render(
        request,
        "researcher/study_texts.html",
        {
            "study": study,
            "values": values,
            "problems": problems,
            "errors": by_field,
            "general_problems": general,
            "can_edit": can_edit,
            "default_consent": DEFAULT_CONSENT,
            "minutes_estimated": minutes_estimated(study),
            "minutes_shown": minutes_shown(study),
            "pay_shown": pay_shown(study),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def study_texts(request: HttpRequest, study: str) -> HttpResponse:
    """The texts form (read-only for a colleague); a POST changes them: owner and staff."""
    if request.method != "POST":
        study_obj = study_for_viewer(request.user, study)
        values = study_texts_values(study=study_obj)
        can_edit = study_can_edit(request.user, study_obj)
        return _render(request, study_obj, values, [], can_edit=can_edit)
    study_obj = study_for_editor(request.user, study)
    values = {name: request.POST.get(name, "") for name in TEXT_FIELDS}
    try:
        study_texts_update(study=study_obj, **values)
    except InputProblems as error:
        return _render(request, study_obj, values, error.problems, can_edit=True, status=400)
    messages.success(request, "Saved: raters now see these texts and this pay.")
    return redirect("experiments:study_texts", study=study_obj.public_id)
