"""The admin page "Import a study from zip files": a form over
experiments.services.imports.uploads (which unpacks the zips safely and runs the same import
as `manage.py create_study`), and the report it shows."""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.forms.models import fields_for_model
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from experiments.models import Study
from experiments.services.imports.audit import study_audit
from experiments.services.imports.parameters import IMPORT_STATUSES, MAX_DISPLAY_SIDE
from experiments.services.imports.uploads import FORM_PARAMETERS, study_create_from_upload
from experiments.services.problems import InputProblems


class _MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class _MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", _MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        if not files and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return [super(_MultipleFileField, self).clean(item, initial) for item in files]


class StudyImportForm(forms.Form):
    name = forms.CharField(max_length=200)
    method = forms.ChoiceField(choices=Study.Method.choices, initial=Study.Method.TIME)
    status = forms.ChoiceField(
        choices=[(s.value, s.label) for s in IMPORT_STATUSES], initial=Study.Status.DRAFT
    )
    real_zip = forms.FileField(label="Real images (zip)")
    model_zips = _MultipleFileField(
        label="Generated images: one zip per model",
        help_text="Each model is named after its zip: stylegan.zip holds model stylegan.",
    )
    qualification_zip = forms.FileField(
        label="Qualification fakes (zip, optional)",
        required=False,
        help_text="One folder per model, named like the model zips; these fakes (and as many "
        "real images, chosen at random) are kept for the qualification only.",
    )
    display_width = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_DISPLAY_SIDE,
        help_text="Leave both empty for the most common size of the fakes.",
    )
    display_height = forms.IntegerField(required=False, min_value=1, max_value=MAX_DISPLAY_SIDE)
    masks = forms.IntegerField(
        initial=20, min_value=0, help_text="Backward masks to make (HYPE_time only)."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(fields_for_model(Study, fields=FORM_PARAMETERS))

    def fieldsets(self) -> list[tuple[str, list]]:
        """The page's two sections: the study and its images, then the protocol."""
        parameters = [self[name] for name in FORM_PARAMETERS]
        return [
            ("Study and images", [f for f in self if f.name not in FORM_PARAMETERS]),
            ("Protocol parameters (docs/hype-method.md)", parameters),
        ]


def study_import_view(request: HttpRequest, model_admin) -> HttpResponse:
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    form = StudyImportForm(request.POST or None, request.FILES or None)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Import a study from zip files",
        "opts": Study._meta,
        "form": form,
        "problems": [],
        "summary": "",
        "audit": None,
        "study_url": "",
    }
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            created = study_create_from_upload(owner=request.user, data=form.cleaned_data)
        except InputProblems as error:
            context["problems"] = error.problems
        else:
            context["summary"] = created.summary
            context["audit"] = study_audit(study=created.study)
            context["study_url"] = reverse(
                "admin:experiments_study_change", args=[created.study.pk]
            )
        if context["problems"]:
            status = 400
    elif request.method == "POST":
        status = 400
    return TemplateResponse(request, "admin/experiments/study/import.html", context, status=status)


def study_import_urls(model_admin) -> list[URLPattern]:
    """The import page's URL, for StudyAdmin.get_urls."""

    def view(request):
        return study_import_view(request, model_admin)

    return [
        path(
            "import/",
            model_admin.admin_site.admin_view(view),
            name="experiments_study_import",
        )
    ]
