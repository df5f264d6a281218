"""Creating a study from uploaded zips, and changing one afterwards: renaming it, opening,
closing or reopening it, changing its parameters while no rater has started. Used by the API,
the admin's zip import page and the researcher's study page."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from experiments.models import Study
from experiments.services.imports import (
    STUDY_PARAMETERS,
    ImportFailed,
    ImportReport,
    study_create,
)
from experiments.services.zips import (
    ZipRejected,
    zip_model_name,
    zip_model_names_repeated,
    zip_unpack,
)

# The parameters an import form takes one field each for; the display size has its own pair
# of fields (width and height, both or neither).
FORM_PARAMETERS = [name for name in STUDY_PARAMETERS if not name.startswith("display_")]

# Status changes a researcher may make: open a draft, close a live study, reopen a closed one.
# Nothing goes back to draft: a study that has been live may have raters.
STATUS_CHANGES = {
    Study.Status.DRAFT: {Study.Status.LIVE},
    Study.Status.LIVE: {Study.Status.CLOSED},
    Study.Status.CLOSED: {Study.Status.LIVE},
}
# The study page's buttons: action -> the status it leads to, and how it reads once done.
STATUS_ACTIONS = {
    "open": (Study.Status.LIVE, "opened"),
    "close": (Study.Status.CLOSED, "closed"),
}
# Parameters that decided how many images the import needed (and the size they were brought
# to): changing them afterwards could leave the study without the images a rater needs.
FIXED_AT_IMPORT = (
    "real_fraction",
    "qualification_trials",
    "time_blocks",
    "time_trials_per_block",
    "inf_trials",
    "mask_count",
    "display_width",
    "display_height",
)


class StudyInputError(Exception):
    """A request that cannot be carried out; `problems` says why, one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


# --- Creating a study from zips -------------------------------------------------------------


@dataclass(frozen=True)
class ZipImport:
    """What study_create_from_zips made. `summary`, `skipped` and `notes` name the uploaded
    zips ("real.zip/notes.txt"); the report's own paths are of temporary folders, now gone."""

    report: ImportReport
    summary: str
    skipped: list[tuple[str, str]]
    notes: list[str]

    @property
    def study(self) -> Study:
        return self.report.study


def _zip_names(text: str, roots: Mapping[Path, str]) -> str:
    """Temporary paths in a message, shown as the zip they came from."""
    for root, label in sorted(roots.items(), key=lambda kv: -len(str(kv[0]))):
        text = text.replace(f"{root}/", f"{label}/").replace(str(root), label)
    return text


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
    """Unpack the uploaded zips safely into a temporary folder and create the study from them
    with study_create: one zip of real images, one zip per model (named after it), and
    optionally a zip of qualification fakes holding one folder per model.

    Raises StudyInputError, its problems naming the zips rather than temporary folders, and
    then has created nothing."""
    repeated = zip_model_names_repeated(upload.name for upload in model_zips)
    if repeated:
        raise StudyInputError([f"model_zips: Two zips name the same model: {', '.join(repeated)}."])
    with tempfile.TemporaryDirectory(prefix="hype-import-") as scratch:
        scratch_path = Path(scratch)
        roots: dict[Path, str] = {}
        try:
            real_dir = zip_unpack(real_zip, scratch_path / "real", label=real_zip.name)
            roots[real_dir] = real_zip.name
            model_dirs = {}
            for index, upload in enumerate(model_zips):
                folder = zip_unpack(upload, scratch_path / f"model-{index}", label=upload.name)
                model_dirs[zip_model_name(upload.name)] = folder
                roots[folder] = upload.name
            qualification_dir = None
            if qualification_zip:
                qualification_dir = zip_unpack(
                    qualification_zip,
                    scratch_path / "qualification",
                    label=qualification_zip.name,
                    keep=set(model_dirs),
                )
                roots[qualification_dir] = qualification_zip.name
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
            )
        except ZipRejected as error:
            raise StudyInputError([str(error)]) from None
        except ImportFailed as failure:
            raise StudyInputError([_zip_names(p, roots) for p in failure.problems]) from None
        return ZipImport(
            report=report,
            summary=_zip_names(report.summary(), roots),
            skipped=[(_zip_names(str(path), roots), reason) for path, reason in report.skipped],
            notes=[_zip_names(note, roots) for note in report.notes],
        )


# --- Changing a study -----------------------------------------------------------------------


def _status_change_allowed(current: str, target: str) -> bool:
    # The one rule for both study_update and study_status_change.
    return target in STATUS_CHANGES[Study.Status(current)]


def study_update(
    *,
    study: Study,
    name: str | None = None,
    status: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> Study:
    """Rename, open, close or reopen a study, or change its parameters before any rater has
    started. Raises StudyInputError, listing every problem, and then changes nothing."""
    with transaction.atomic():
        # Locked, so that no rater can start between the check and the change.
        study = Study.objects.select_for_update().get(pk=study.pk)
        problems: list[str] = []
        if status is not None and status != study.status:
            if not _status_change_allowed(study.status, status):
                problems.append(
                    f"status: a {study.status} study cannot become {status}; a draft opens "
                    "(live), a live study closes (closed) and a closed one reopens (live)"
                )
            study.status = status
        changed = {
            key: value for key, value in (parameters or {}).items() if getattr(study, key) != value
        }
        fixed = sorted(set(changed) & set(FIXED_AT_IMPORT))
        started = study.rater_sessions.count()
        if changed and started:
            problems.append(
                f"parameters: protocol parameters cannot change once raters have started "
                f"({started} rater session{'s' if started != 1 else ''} so far); asked to "
                f"change {', '.join(sorted(changed))}. Create a new study instead."
            )
        elif fixed:
            problems.append(
                f"parameters: {', '.join(fixed)} decided which images the import needed and "
                "cannot change afterwards; import a new study instead"
            )
        for key, value in changed.items():
            setattr(study, key, value)
        if name is not None:
            study.name = name.strip()
        try:
            study.full_clean(exclude=["owner"], validate_constraints=False)
        except ValidationError as error:
            problems += [f"{key}: {' '.join(m)}" for key, m in error.message_dict.items()]
        if not study.staircase_floor_ms <= study.staircase_start_ms <= study.staircase_ceiling_ms:
            problems.append(
                "staircase: it must start inside its bounds (floor <= start <= ceiling), got "
                f"{study.staircase_floor_ms} <= {study.staircase_start_ms} <= "
                f"{study.staircase_ceiling_ms}"
            )
        if problems:
            raise StudyInputError(problems)
        study.save()
    return study


def study_status_change(*, study: Study, action: str) -> Study:
    """The study page's buttons: "open" (a draft or closed study goes live) or "close" (a live
    study closes). Decided on the study's current status, read locked, so a stale page (another
    tab closed the study meanwhile) changes nothing rather than skipping a state. Returns the
    changed study; raises StudyInputError ("A closed study cannot be closed; nothing was
    changed.") and changes nothing when the action does not apply."""
    if action not in STATUS_ACTIONS:
        choices = " or ".join(repr(a) for a in STATUS_ACTIONS)
        raise StudyInputError([f"action must be {choices}."])
    target, done = STATUS_ACTIONS[action]
    with transaction.atomic():
        current = Study.objects.select_for_update().get(pk=study.pk)
        if not _status_change_allowed(current.status, target):
            shown = Study.Status(current.status).label.lower()
            raise StudyInputError([f"A {shown} study cannot be {done}; nothing was changed."])
        return study_update(study=current, status=target)
