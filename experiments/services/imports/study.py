"""Create a study from folders of images: check the parameters and folders, read every file's
header, then, in one transaction, normalise and store each image under a random name, keep
real images aside for the qualification and make the backward masks. An import either
completes or leaves nothing behind: no rows, no files.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction

from experiments.models import GenerativeModel, Image, ImageTag, Study
from experiments.services.imports.folders import (
    Folders,
    Source,
    counts_problems,
    display_size_pick,
    folders_list,
    folders_problems,
    images_needed,
)
from experiments.services.imports.masks import mask_make, mask_notes, mask_sources
from experiments.services.imports.normalise import Unusable, image_normalise, image_probe
from experiments.services.imports.parameters import study_build
from experiments.services.imports.tags import tags_csv_read
from experiments.services.problems import InputProblems

Progress = Callable[[int, int], None]

# What each kind of change at import is called in the report, in the order it lists them.
CHANGE_LABELS = {
    "format": "re-encoded to PNG",
    "mode": "converted to RGB",
    "bit_depth": "scaled to 8 bits",
    "transparency": "composited over grey",
    "colour_profile": "converted to sRGB",
    "orientation": "rotated or flipped by EXIF orientation",
    "cropped": "cropped",
    "resized": "resized",
    "metadata_removed": "stripped of metadata",
    "frames_dropped": "cut to their first frame",
}


@dataclass(frozen=True)
class ImportReport:
    """What an import stored, what it skipped and why, and anything the researcher should know."""

    study: Study
    real: int
    fakes: dict[str, int]
    qualification: dict[str, int]
    masks: int
    skipped: list[tuple[str, str]]
    display_size: tuple[int, int]
    display_reason: str = ""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        study = self.study
        width, height = self.display_size
        lines = [
            f'Study "{study.name}" ({study.get_method_display()}, {study.status}), '
            f"public id {study.public_id}",
            f"Display size: {width}x{height}"
            + (f" ({self.display_reason})" if self.display_reason else ""),
            f"Real images: {self.real} for the task" + _reserved(self.qualification.get("real", 0)),
        ]
        for name, count in self.fakes.items():
            lines.append(
                f"Model {name}: {count} fakes for the task"
                + _reserved(self.qualification.get(name, 0))
            )
        if study.method == Study.Method.TIME:
            lines.append(f"Masks: {self.masks} (phase-scrambled from the study's own images)")
        else:
            lines.append("Masks: none (HYPE_inf trials are untimed and show no mask)")
        lines += self.notes
        if self.skipped:
            lines.append(f"Skipped ({len(self.skipped)}):")
            lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        else:
            lines.append("Skipped: nothing")
        return "\n".join(lines)


def _reserved(count: int) -> str:
    return f", {count} reserved for the qualification" if count else ""


@dataclass
class _Run:
    """One import under way: its folders, the display size, what it skipped (per file and per
    folder), the files it wrote (to delete if it fails) and its progress."""

    folders: Folders
    target: tuple[int, int]
    skip_counts: Counter
    rng: np.random.Generator
    progress: Progress | None
    total: int
    done: int = 0
    stored_files: list[str] = field(default_factory=list)

    @property
    def study(self) -> Study:
        return self.folders.study

    def skip(self, source: Source, reason: str) -> None:
        self.folders.skipped.append((str(source.path), reason))
        self.skip_counts[(source.group, source.role)] += 1

    def step(self) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total)

    def image_store(self, image: Image, png: bytes, name: str) -> None:
        # The name passed here only gives the extension: image_upload_to names the file
        # after the image's random public id.
        image.file.save(name, ContentFile(png), save=False)
        self.stored_files.append(image.file.name)
        image.save()


def study_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    method: str,
    real_dir: Path,
    model_dirs: Mapping[str, Path],
    qualification_fakes_dir: Path | None = None,
    params: Mapping[str, Any] | None = None,
    display_size: tuple[int, int] | None = None,
    masks: int = 20,
    status: str = "draft",
    progress: Progress | None = None,
    rng: np.random.Generator | None = None,
    tags_csv: Path | None = None,
) -> ImportReport:
    """Create a study with its models, normalised images and (HYPE_time) masks. An image's
    tags are its sub-folder's name and the rows of `tags_csv` that name it (imports.tags).

    Raises InputProblems, listing every problem, when the arguments are invalid or a folder
    lacks the images one rater needs; nothing is then left behind, neither rows nor files.
    """
    study, problems = study_build(
        owner=owner,
        name=name,
        method=method,
        status=status,
        params=dict(params or {}),
        display_size=display_size,
        masks=masks,
    )
    model_dirs = {str(k): Path(v) for k, v in model_dirs.items()}
    real_dir = Path(real_dir)
    qual_dir = Path(qualification_fakes_dir) if qualification_fakes_dir is not None else None
    problems += folders_problems(
        real_dir=real_dir, model_dirs=model_dirs, qualification_fakes_dir=qual_dir, study=study
    )
    if problems:
        raise InputProblems(problems)
    folders = folders_list(
        study=study, real_dir=real_dir, model_dirs=model_dirs, qualification_fakes_dir=qual_dir
    )
    problems = folders.problems + _tags_add(folders, tags_csv)
    if problems:
        raise InputProblems(problems)
    usable, skip_counts = _headers_read(folders)
    problems = counts_problems(folders, Counter((s.group, s.role) for s in usable), skip_counts)
    if problems:
        raise InputProblems(problems)

    if study.display_width is not None:
        target, why = (study.display_width, study.display_height), "as given"
    else:
        target, why = display_size_pick(usable)
        study.display_width, study.display_height = target
    n_masks = masks if study.method == Study.Method.TIME else 0
    run = _Run(
        folders=folders,
        target=target,
        skip_counts=skip_counts,
        rng=rng if rng is not None else np.random.default_rng(),
        progress=progress,
        total=len(usable) + n_masks,
    )
    try:
        with transaction.atomic():
            return _store(run, usable, n_masks=n_masks, display_reason=why)
    except BaseException:
        _files_delete(run.stored_files, study)
        raise


def _tags_add(folders: Folders, tags_csv: Path | None) -> list[str]:
    """Add tags.csv's tags to the files it names; the problems with it, if any."""
    if tags_csv is None:
        return []
    tags, problems = tags_csv_read(
        Path(tags_csv), known=(source.root_name for source in folders.sources)
    )
    for source in folders.sources:
        source.tags |= tags.get(source.root_name, set())
    return problems


def _headers_read(folders: Folders) -> tuple[list[Source], Counter]:
    """The first pass, headers only: the files that can be read, with their sizes (for the
    display size), and how many were skipped per (group, role)."""
    usable: list[Source] = []
    skip_counts: Counter = Counter()
    for source in folders.sources:
        try:
            source.size = image_probe(source.path)
        except Unusable as unusable:
            folders.skipped.append((str(source.path), unusable.reason))
            skip_counts[(source.group, source.role)] += 1
        else:
            usable.append(source)
    return usable, skip_counts


def _store(run: _Run, usable: list[Source], *, n_masks: int, display_reason: str) -> ImportReport:
    """The second pass, inside the import's transaction: the study, its models, every image,
    the qualification's reals and the masks."""
    study = run.study
    study.save()
    models = {
        group: GenerativeModel.objects.create(study=study, name=group)
        for group in run.folders.model_names
    }
    stored, first_of, tallies = _images_store(run, usable, models)
    names = {model.id: name for name, model in models.items()}
    counts = Counter(
        ("real" if image.is_real else names[image.model_id], image.role) for image in stored
    )
    problems = counts_problems(run.folders, counts, run.skip_counts)
    if problems:
        raise InputProblems(problems)
    qualification, reserved = _qualification_reserve(run, stored, models, counts)
    made, notes = _masks_store(run, stored, count=n_masks, taken=set(first_of))
    notes += _tally_notes(tallies, run.target) + _tag_notes(study)
    return ImportReport(
        study=study,
        real=sum(1 for image in stored if image.is_real) - reserved,
        fakes={name: counts[(name, Image.Role.TASK)] for name in models},
        qualification=qualification,
        masks=made,
        skipped=run.folders.skipped,
        display_size=run.target,
        display_reason=display_reason,
        notes=notes,
    )


def _images_store(
    run: _Run, usable: list[Source], models: Mapping[str, GenerativeModel]
) -> tuple[list[Image], dict[str, str], dict[str, Counter]]:
    """Normalise and store every usable file, once per distinct picture. Returns the stored
    images, the first file of each picture (by sha256 of its pixels) and, per group, how many
    images each kind of change touched."""
    first_of: dict[str, str] = {}
    stored: list[Image] = []
    tallies: dict[str, Counter] = {}
    for source in usable:
        try:
            normalised = image_normalise(source.path, run.target)
        except Unusable as unusable:
            run.skip(source, unusable.reason)
            normalised = None
        if normalised is not None and normalised.sha256 in first_of:
            run.skip(
                source,
                f"duplicate of {first_of[normalised.sha256]} (the same pixels once "
                "normalised); kept once",
            )
        elif normalised is not None:
            first_of[normalised.sha256] = str(source.path)
            image = Image(
                study=run.study,
                model=models.get(source.group),
                is_real=source.group == "real",
                role=source.role,
                sha256=normalised.sha256,
                width=run.target[0],
                height=run.target[1],
                original_name=source.original_name,
                changes=normalised.changes,
            )
            run.image_store(image, normalised.png, "image.png")
            ImageTag.objects.bulk_create(
                ImageTag(image=image, name=tag) for tag in sorted(source.tags)
            )
            stored.append(image)
            tally = tallies.setdefault(source.group, Counter())
            tally["images"] += 1
            tally.update(normalised.changes.keys())
        run.step()
    return stored, first_of, tallies


def _qualification_reserve(
    run: _Run, stored: list[Image], models: Mapping[str, GenerativeModel], counts: Counter
) -> tuple[dict[str, int], int]:
    """With separate qualification fakes, as many real images as one qualification block shows
    are kept for it, chosen at random, so that no qualification image ever appears in the
    task. Returns the images kept for the qualification per group, and the reals kept."""
    if not run.folders.separate_qualification:
        return {}, 0
    needs = images_needed(run.study, len(models))
    reals = [image.id for image in stored if image.is_real]
    chosen = run.rng.choice(len(reals), size=needs.qualification_real, replace=False)
    reserved = [reals[i] for i in sorted(chosen)]
    Image.objects.filter(id__in=reserved).update(role=Image.Role.QUALIFICATION)
    qualification = {"real": len(reserved)}
    for name in models:
        qualification[name] = counts[(name, Image.Role.QUALIFICATION)]
    return qualification, len(reserved)


def _masks_store(
    run: _Run, stored: list[Image], *, count: int, taken: set[str]
) -> tuple[int, list[str]]:
    """`count` phase-scrambled masks, each from a stored image (masks.mask_sources), none the
    same as another mask or image. Returns how many were made and the notes about them."""
    if not count or not stored:
        return 0, []
    made, contrasts = 0, []
    for index in mask_sources(count, len(stored), run.rng):
        if made == count:
            break
        source = stored[index]
        mask = mask_make(source, run.rng)
        if mask.sha256 in taken:  # a flat source gives back itself; try another source
            continue
        taken.add(mask.sha256)
        image = Image(
            study=run.study,
            model=None,
            is_real=False,
            role=Image.Role.MASK,
            sha256=mask.sha256,
            width=mask.width,
            height=mask.height,
            changes={
                "mask": "phase-scrambled",
                "source": source.public_id,
                "contrast": round(mask.contrast, 4),
            },
        )
        run.image_store(image, mask.png, "mask.png")
        contrasts.append(mask.contrast)
        made += 1
        run.step()
    return made, mask_notes(made=made, count=count, contrasts=contrasts)


def _tally_notes(tallies: Mapping[str, Counter], target: tuple[int, int]) -> list[str]:
    notes = []
    for group, tally in tallies.items():
        parts = [f"{tally[key]} {label}" for key, label in CHANGE_LABELS.items() if tally[key]]
        who = "real images" if group == "real" else f"images of model {group}"
        if parts:
            notes.append(f"Changed, {who} ({tally['images']} stored): {', '.join(parts)}.")
        else:
            notes.append(f"Changed, {who} ({tally['images']} stored): only re-encoded.")
        if tally["enlarged"]:
            notes.append(
                f"Warning: {tally['enlarged']} {who} were smaller than {target[0]}x{target[1]} "
                "and were enlarged; enlarged images look softer, which raters may notice."
            )
    return notes


def _tag_notes(study: Study) -> list[str]:
    counts = Counter(
        ImageTag.objects.filter(image__study=study).values_list("name", flat=True).order_by()
    )
    if not counts:
        return []
    listed = ", ".join(f"{name} ({n})" for name, n in sorted(counts.items()))
    return [f"Tags (images): {listed}."]


def _files_delete(names: list[str], study: Study) -> None:
    """Files are not transactional: remove every file this import wrote, then its folder."""
    storage = Image._meta.get_field("file").storage
    for name in names:
        with contextlib.suppress(OSError):
            storage.delete(name)
    folder = f"studies/{study.public_id}"
    try:
        _, leftovers = storage.listdir(folder)
        for leftover in leftovers:
            storage.delete(f"{folder}/{leftover}")
        path = Path(storage.path(folder))
        path.rmdir()
        path.parent.rmdir()  # "studies/", if this import was the first to write there
    except (OSError, NotImplementedError):
        pass
