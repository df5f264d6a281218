"""Creating a study from uploaded zips, as the admin's import page and the API's create endpoint
do: the zips unpacked safely into a temporary folder, then the same import as
`manage.py create_study`, with every message naming the uploaded zips."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile

from experiments.models import PROTOCOL_PARAMETERS, Study
from experiments.services.imports.study import ImportReport, Progress, study_create
from experiments.services.imports.zips import (
    ZipRejected,
    zip_model_name,
    zip_model_names_repeated,
    zip_unpack,
)
from experiments.services.problems import InputProblems

# The parameters an import form takes one field each for; the display size has its own pair
# of fields (width and height, both or neither).
FORM_PARAMETERS = [name for name in PROTOCOL_PARAMETERS if not name.startswith("display_")]


@dataclass(frozen=True)
class ZipImport:
    """What study_create_from_groups made. `summary`, `skipped` and `notes` name the uploads
    ("real.zip/notes.txt"); the report's own paths are of temporary folders, now gone."""

    report: ImportReport
    summary: str
    skipped: list[tuple[str, str]]
    notes: list[str]

    @property
    def study(self) -> Study:
        return self.report.study


@dataclass(frozen=True)
class ImageGroup:
    """The real images, one model's, or the qualification fakes, as uploaded: a zip (an
    uploaded file or a path) or a folder of image files. `label` is how messages name it (the
    zip's file name)."""

    label: str
    zip: IO[bytes] | Path | None = None
    folder: Path | None = None


def _names(text: str, roots: Mapping[Path, str]) -> str:
    """Temporary paths in a message, shown as the upload they came from."""
    for root, label in sorted(roots.items(), key=lambda kv: -len(str(kv[0]))):
        text = text.replace(f"{root}/", f"{label}/").replace(str(root), label)
    return text


def _group_folder(group: ImageGroup, destination: Path, roots: dict[Path, str], **keep) -> Path:
    folder = group.folder
    if group.zip is not None:
        folder = zip_unpack(group.zip, destination, label=group.label, **keep)
    roots[folder] = group.label
    return folder


def study_create_from_groups(
    *,
    owner: AbstractBaseUser,
    name: str,
    method: str,
    real: ImageGroup,
    models: Mapping[str, ImageGroup],
    qualification: ImageGroup | None = None,
    params: Mapping[str, Any],
    display_size: tuple[int, int] | None,
    masks: int,
    status: str,
    progress: Progress | None = None,
) -> ZipImport:
    """Unpack the zips safely into a temporary folder and create the study with study_create:
    the real images, each model's (by name), and optionally the qualification fakes (one folder
    per model). Raises InputProblems, its problems naming the uploads rather than temporary
    folders, and then has created nothing."""
    with tempfile.TemporaryDirectory(prefix="hype-import-") as scratch:
        scratch_path = Path(scratch)
        roots: dict[Path, str] = {}
        try:
            real_dir = _group_folder(real, scratch_path / "real", roots)
            model_dirs = {
                model: _group_folder(group, scratch_path / f"model-{index}", roots)
                for index, (model, group) in enumerate(models.items())
            }
            qualification_dir = None
            if qualification is not None:
                qualification_dir = _group_folder(
                    qualification, scratch_path / "qualification", roots, keep=set(model_dirs)
                )
            report = study_create(
                owner=owner,
                name=name,
                method=method,
                real_dir=real_dir,
                model_dirs=model_dirs,
                qualification_fakes_dir=qualification_dir,
                params=params,
                display_size=display_size,
                masks=masks,
                status=status,
                progress=progress,
            )
        except ZipRejected as error:
            raise InputProblems([str(error)]) from None
        except InputProblems as failure:
            raise InputProblems([_names(p, roots) for p in failure.problems]) from None
        return ZipImport(
            report=report,
            summary=_names(report.summary(), roots),
            skipped=[
                (_names(str(path), roots), _names(reason, roots)) for path, reason in report.skipped
            ],
            notes=[_names(note, roots) for note in report.notes],
        )


def study_create_from_zips(
    *,
    owner: AbstractBaseUser,
    name: str,
    method: str,
    real_zip: UploadedFile,
    model_zips: Sequence[UploadedFile],
    qualification_zip: UploadedFile | None = None,
    params: Mapping[str, Any],
    display_size: tuple[int, int] | None,
    masks: int,
    status: str,
) -> ZipImport:
    """study_create_from_groups for one zip of real images, one zip per model (named after it)
    and optionally a zip of qualification fakes holding one folder per model."""
    repeated = zip_model_names_repeated(upload.name for upload in model_zips)
    if repeated:
        raise InputProblems([f"model_zips: Two zips name the same model: {', '.join(repeated)}."])
    return study_create_from_groups(
        owner=owner,
        name=name,
        method=method,
        real=ImageGroup(label=real_zip.name, zip=real_zip),
        models={
            zip_model_name(upload.name): ImageGroup(label=upload.name, zip=upload)
            for upload in model_zips
        },
        qualification=(
            ImageGroup(label=qualification_zip.name, zip=qualification_zip)
            if qualification_zip
            else None
        ),
        params=params,
        display_size=display_size,
        masks=masks,
        status=status,
    )


def study_create_from_upload(*, owner: AbstractBaseUser, data: Mapping[str, Any]) -> ZipImport:
    """study_create_from_zips from an upload form's cleaned data (the admin's import page, the
    API's create endpoint): name, method, status, masks, real_zip, model_zips, optionally
    qualification_zip, display_width and display_height, and any of FORM_PARAMETERS (those
    left out keep the study's defaults). Raises InputProblems."""
    width, height = data.get("display_width"), data.get("display_height")
    if (width is None) != (height is None):
        raise InputProblems(["display_height: Give both the width and the height, or neither."])
    return study_create_from_zips(
        owner=owner,
        name=data["name"],
        method=data["method"],
        real_zip=data["real_zip"],
        model_zips=data["model_zips"],
        qualification_zip=data.get("qualification_zip"),
        params={name: data[name] for name in FORM_PARAMETERS if name in data},
        display_size=(width, height) if width is not None else None,
        masks=data["masks"],
        status=data["status"],
    )
