"""The researcher's groups of studies: the groups page (each group with its studies and, for a
qualified pool, how many raters it keeps; a form to make one and to change each) and the study
page's control that puts a study in a group. Thin: experiments.services.groups does the work."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from experiments.models import StudyGroup
from experiments.services.access import study_for_editor
from experiments.services.groups import group_create, group_update, groups_of, study_group_set
from experiments.services.problems import InputProblems

GROUP_FORM_FIELDS = ("name", "kind", "qualification_days")


def _render(request: HttpRequest, *, problems=(), values=None, status=200) -> HttpResponse:
    return render(
        request,
        "researcher/groups.html",
        {
            "summaries": groups_of(request.user),
            "kinds": StudyGroup.Kind.choices,
            "problems": list(problems),
            "values": values or {"kind": StudyGroup.Kind.EXCLUSIVE, "qualification_days": 30},
            "default_days": StudyGroup._meta.get_field("qualification_days").default,
        },
        status=status,
    )


def _days(raw: str):
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() else raw


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def group_list(request: HttpRequest) -> HttpResponse:
    """The researcher's groups; a POST makes one (action=create) or changes one (action=update,
    for its owner only)."""
    if request.method != "POST":
        return _render(request)
    values = {name: request.POST.get(name, "") for name in GROUP_FORM_FIELDS}
    try:
        if request.POST.get("action") == "update":
            group = StudyGroup.objects.filter(
                pk=_days(request.POST.get("group", "")) or 0, owner=request.user
            ).first()
            if group is None:
                raise Http404("No such group.")
            group_update(
                group, kind=values["kind"], qualification_days=_days(values["qualification_days"])
            )
            messages.success(request, f"“{group.name}” changed; it applies to new arrivals.")
        else:
            group = group_create(
                owner=request.user,
                name=values["name"],
                kind=values["kind"],
                qualification_days=_days(values["qualification_days"]),
            )
            messages.success(request, f"Group “{group.name}” made; add studies from their pages.")
    except InputProblems as error:
        return _render(request, problems=error.problems, values=values, status=400)
    return redirect(reverse("experiments:groups") + f"#group-{group.pk}")


@login_required
@require_POST
def study_group(request: HttpRequest, study: str) -> HttpResponse:
    """Put the study in one of its owner's groups, or in none (owner and staff)."""
    study_obj = study_for_editor(request.user, study)
    raw = request.POST.get("group", "").strip()
    group = None
    if raw:
        group = StudyGroup.objects.filter(pk=int(raw) if raw.isdigit() else 0).first()
        if group is None or group.owner_id != study_obj.owner_id:
            messages.error(request, "No such group of the study's owner.")
            return redirect(
                reverse("experiments:study_detail", args=[study_obj.public_id]) + "#group"
            )
    try:
        study_group_set(study_obj, group)
    except InputProblems as error:
        messages.error(request, " ".join(error.problems))
    else:
        messages.success(
            request, f"In the group “{group.name}”." if group else "In no group of studies."
        )
    return redirect(reverse("experiments:study_detail", args=[study_obj.public_id]) + "#group")
