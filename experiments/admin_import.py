"""The admin page "Import a study from zip files": a form over the same import service as
`manage.py create_study`; it unpacks the zips safely into a temporary folder and reports."""

from __future__ import annotations

import re
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from django import forms
from django.core.exceptions import PermissionDenied
from django.forms.models import fields_for_model
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from experiments.models import Study
from experiments.services.audit import study_audit
from experiments.services.imports import (
    IMPORT_STATUSES,
    MAX_DISPLAY_SIDE,
    STUDY_PARAMETERS,
    ImportFailed,
    study_create,
)

# A zip is refused before anything is written if it claims more than this, and unpacking
# stops if the members turn out larger than they claim (a zip bomb).
MAX_UNPACKED_BYTES = 4 * 1024**3
MAX_MEMBERS = 200_000
_CHUNK = 1 << 20
# The parameters shown on the form; display size has its own two fields.
FORM_PARAMETERS = [name for name in STUDY_PARAMETERS if not name.startswith("display_")]


class ZipRejected(Exception):
    """An upload that is not a zip, or not one we unpack."""


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
            ("Protocol parameters (DESIGN.md, section 2)", parameters),
        ]

    def clean(self):
        cleaned = super().clean()
        names = [_model_name(upload.name) for upload in cleaned.get("model_zips") or []]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            self.add_error("model_zips", f"Two zips name the same model: {', '.join(repeated)}.")
        if (cleaned.get("display_width") is None) != (cleaned.get("display_height") is None):
            self.add_error("display_height", "Give both the width and the height, or neither.")
        return cleaned


def _model_name(file_name: str) -> str:
    return re.sub(r"\.zip$", "", Path(file_name).name, flags=re.IGNORECASE)


def zip_unpack(upload, destination: Path, *, label: str, keep: set[str] = frozenset()) -> Path:
    """Unpack `upload` into `destination`, refusing paths that climb out of it and stopping at
    MAX_UNPACKED_BYTES. Hidden files and macOS's __MACOSX folder are left out. Returns the
    folder that holds the images: the zip's single top folder if it has one (unless that
    folder's name is in `keep`), otherwise `destination`."""
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError):
        raise ZipRejected(f"{label}: not a zip file") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_MEMBERS:
            raise ZipRejected(f"{label}: {len(members):,} files, more than {MAX_MEMBERS:,}")
        claimed = sum(m.file_size for m in members)
        if claimed > MAX_UNPACKED_BYTES:
            raise ZipRejected(
                f"{label}: {claimed:,} bytes once unpacked, more than {MAX_UNPACKED_BYTES:,}"
            )
        written = 0
        destination.mkdir(parents=True, exist_ok=True)
        for member in members:
            name = member.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                raise ZipRejected(f"{label}: unsafe path {member.filename!r} in the zip")
            if not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
                continue
            target = destination.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as source, target.open("wb") as out:
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        if written > MAX_UNPACKED_BYTES:
                            raise ZipRejected(f"{label}: larger once unpacked than it claims")
                        out.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise ZipRejected(f"{label}: cannot unpack {member.filename!r}: {error}") from None
    entries = list(destination.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in keep:
        return entries[0]
    return destination


def _readable(text: str, roots: dict[Path, str]) -> str:
    """Temporary paths in a message, shown as the zip they came from."""
    for root, label in sorted(roots.items(), key=lambda kv: -len(str(kv[0]))):
        text = text.replace(f"{root}/", f"{label}/").replace(str(root), label)
    return text


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
        data = form.cleaned_data
        with tempfile.TemporaryDirectory(prefix="hype-import-") as scratch:
            scratch_path = Path(scratch)
            roots: dict[Path, str] = {}
            try:
                real_dir = zip_unpack(
                    data["real_zip"], scratch_path / "real", label=data["real_zip"].name
                )
                roots[real_dir] = data["real_zip"].name
                model_dirs = {}
                for index, upload in enumerate(data["model_zips"]):
                    name = _model_name(upload.name)
                    folder = zip_unpack(upload, scratch_path / f"model-{index}", label=upload.name)
                    model_dirs[name] = folder
                    roots[folder] = upload.name
                qualification_dir = None
                if data.get("qualification_zip"):
                    upload = data["qualification_zip"]
                    qualification_dir = zip_unpack(
                        upload,
                        scratch_path / "qualification",
                        label=upload.name,
                        keep=set(model_dirs),
                    )
                    roots[qualification_dir] = upload.name
                display = None
                if data.get("display_width"):
                    display = (data["display_width"], data["display_height"])
                report = study_create(
                    owner=request.user,
                    name=data["name"],
                    method=data["method"],
                    real_dir=real_dir,
                    model_dirs=model_dirs,
                    qualification_fakes_dir=qualification_dir,
                    params={name: data[name] for name in FORM_PARAMETERS},
                    display_size=display,
                    masks=data["masks"],
                    status=data["status"],
                )
            except ZipRejected as error:
                context["problems"] = [str(error)]
            except ImportFailed as failure:
                context["problems"] = [_readable(p, roots) for p in failure.problems]
            else:
                context["summary"] = _readable(report.summary(), roots)
                context["audit"] = study_audit(study=report.study)
                context["study_url"] = reverse(
                    "admin:experiments_study_change", args=[report.study.pk]
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
