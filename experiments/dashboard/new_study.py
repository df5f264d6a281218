"""The researcher's "New study" page and the import it starts: the form (images as zips or
files, every protocol parameter), then the import's page with its progress, its summary and
refused files, or its problems. The import itself: experiments.services.imports.jobs."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.forms.models import fields_for_model
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from experiments.admin import StudyAdmin
from experiments.models import Study
from experiments.services.imports.jobs import (
    study_import_find,
    study_import_page,
    study_import_progress,
    study_import_start,
    study_imports_recent,
)
from experiments.services.imports.parameters import MAX_DISPLAY_SIDE, MAX_MASKS
from experiments.services.imports.uploads import FORM_PARAMETERS
from experiments.services.problems import InputProblems

# What a parameter is, where its model field has no help text (docs/hype-method.md's words).
PARAMETER_HELP = {
    "raters_per_model": "The target number of completed raters per model.",
    "time_blocks": "HYPE_time task blocks.",
    "time_trials_per_block": "Trials in each HYPE_time block.",
    "staircase_step_down_ms": "ms the exposure drops after a run of correct answers.",
    "staircase_step_up_ms": "ms the exposure rises after a wrong answer.",
    "staircase_start_ms": "Exposure at the start of every block.",
    "staircase_floor_ms": "Shortest exposure.",
    "staircase_ceiling_ms": "Longest exposure.",
    "mask_count": "Backward masks after each timed image.",
    "mask_ms": "Requested duration of each mask.",
    "threshold_tie_rule": "A block's threshold when several exposures tie for the mode.",
    "inf_trials": "HYPE_inf task images per rater.",
    "bootstrap_resamples": "Bootstrap resamples of every interval.",
    "confidence": "Confidence level of every interval.",
    "bootstrap_seed": "The study's seed; each model's stream is derived from it.",
}
# Model rows on a fresh form; the page's script adds more.
MODEL_ROWS = 2
MAX_MODELS = 50


class _MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class _MultipleFileField(forms.FileField):
    """Any number of files from one input: a zip, or the image files themselves."""

    widget = _MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        if not files and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return [super(_MultipleFileField, self).clean(item, initial) for item in files]

    def has_changed(self, initial, data):
        # No file chosen is no change, so that a model row left empty is skipped.
        return bool(data)


def _files_input(**attrs) -> _MultipleFileInput:
    return _MultipleFileInput(attrs={"accept": ".zip,image/*", **attrs})


class ModelRowForm(forms.Form):
    """One model: a zip (named after it unless a name is given), or image files and a name."""

    name = forms.CharField(label="Model name", max_length=200, required=False)
    images = _MultipleFileField(
        label="Its images: one zip, or files", required=False, widget=_files_input()
    )


ModelRows = forms.formset_factory(
    ModelRowForm, extra=MODEL_ROWS, max_num=MAX_MODELS, validate_max=True
)


class NewStudyForm(forms.Form):
    name = forms.CharField(max_length=200, label="Study name")
    method = forms.ChoiceField(choices=Study.Method.choices, initial=Study.Method.TIME)
    real = _MultipleFileField(
        label="Real images",
        widget=_files_input(),
        help_text="One zip, or the image files themselves (select them all in the dialog).",
    )
    qualification_zip = forms.FileField(
        label="Qualification fakes (optional zip)",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".zip"}),
        help_text="One folder per model, named like the model; these fakes (and as many real "
        "images, chosen at random) are kept for the qualification only.",
    )
    display_width = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_DISPLAY_SIDE, label="Display width"
    )
    display_height = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_DISPLAY_SIDE, label="Display height"
    )
    masks = forms.IntegerField(
        initial=20,
        min_value=0,
        max_value=MAX_MASKS,
        help_text="Backward masks to make from the study's images (HYPE_time only); at least "
        "mask_count.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(fields_for_model(Study, fields=FORM_PARAMETERS))
        for name in FORM_PARAMETERS:
            field = self.fields[name]
            default = Study._meta.get_field(name).get_default()
            shown = str(default).lower() if isinstance(default, bool) else default
            field.help_text = " ".join(
                part
                for part in (field.help_text or PARAMETER_HELP.get(name, ""), f"Default: {shown}.")
                if part
            )

    def parameter_groups(self) -> list[tuple[str, list]]:
        """The protocol parameters in the admin's sections (StudyAdmin.fieldsets), so that
        both pages group them alike; any the admin does not place come last."""
        groups, placed = [], set()
        for title, options in StudyAdmin.fieldsets:
            names = [n for n in options["fields"] if n in FORM_PARAMETERS]
            if names:
                groups.append((title, [self[n] for n in names]))
                placed.update(names)
        rest = [self[n] for n in FORM_PARAMETERS if n not in placed]
        if rest:
            groups.append(("Other parameters", rest))
        return groups


def _render_form(request, form, rows, problems, status=200) -> HttpResponse:
    return render(
        request,
        "researcher/new_study.html",
        {
            "form": form,
            "rows": rows,
            "problems": problems,
            "max_files": settings.DATA_UPLOAD_MAX_NUMBER_FILES,
            "recent": study_imports_recent(user=request.user),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def study_new(request: HttpRequest) -> HttpResponse:
    """The form; a valid one starts the import in the background and goes to its page."""
    if request.method != "POST":
        return _render_form(request, NewStudyForm(), ModelRows(prefix="model"), [])
    form = NewStudyForm(request.POST, request.FILES)
    rows = ModelRows(request.POST, request.FILES, prefix="model")
    if not (form.is_valid() and rows.is_valid()):
        return _render_form(request, form, rows, [], status=400)
    data = {
        **form.cleaned_data,
        "models": [(row["name"], row["images"]) for row in rows.cleaned_data if row],
    }
    try:
        job = study_import_start(owner=request.user, data=data)
    except InputProblems as error:
        return _render_form(request, form, rows, error.problems, status=400)
    return redirect("experiments:study_import", job=job.public_id)


@login_required
@require_safe
def study_import(request: HttpRequest, job: str) -> HttpResponse:
    """An import's page: its progress while it runs, then its outcome. Owner and staff."""
    page = study_import_page(job=study_import_find(user=request.user, public_id=job))
    return render(
        request,
        "researcher/import.html",
        {
            "page": page,
            "progress_config": {
                "url": reverse("experiments:study_import_progress", args=[job]),
                **page.progress,
            },
        },
    )


@login_required
@require_safe
def study_import_progress_json(request: HttpRequest, job: str) -> JsonResponse:
    """What the import page polls: status, done, total, percent; never a file name."""
    progress = study_import_progress(job=study_import_find(user=request.user, public_id=job))
    return JsonResponse(progress, headers={"Cache-Control": "no-store"})
