"""The folders of an import: which files they hold, whether every folder has the images one
rater needs, and the display size the fakes suggest."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from experiments.models import Image, Study
from experiments.services.imports.tags import tag_name_problem


@dataclass
class Source:
    """One file found in a folder, and what it is meant to be."""

    path: Path
    original_name: str
    group: str  # "real" or a model's name
    role: str
    size: tuple[int, int] = (0, 0)  # after EXIF orientation
    # Its name relative to the import root (real/..., <model>/..., qualification/<model>/...),
    # as tags.csv names it, and its tags: its sub-folder's name, and tags.csv's.
    root_name: str = ""
    tags: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Needs:
    """Images one rater needs: the qualification's reals and each model's share of its fakes,
    and the task's reals and fakes (the task fakes all come from the rater's one model)."""

    qualification_real: int
    qualification_fake_share: int
    task_real: int
    task_fake: int


def images_needed(study: Study, models: int) -> Needs:
    qualification_real = study.reals_in(study.qualification_trials)
    qualification_fake = study.qualification_trials - qualification_real
    blocks, per_block = study.task_blocks
    real_per_block = study.reals_in(per_block)
    return Needs(
        qualification_real=qualification_real,
        # The fakes are split evenly, the remainder to models at random: a model may owe one more.
        qualification_fake_share=math.ceil(qualification_fake / models) if models else 0,
        task_real=blocks * real_per_block,
        task_fake=blocks * (per_block - real_per_block),
    )


def folder_list(
    folder: Path,
    *,
    group: str,
    role: str,
    prefix: str,
    skipped: list[tuple[str, str]],
    problems: list[str] | None = None,
    root: str = "",
) -> list[Source]:
    """The files at the top level of `folder`, and those one sub-folder down, tagged with the
    sub-folder's name; deeper folders and hidden files are reported. A sub-folder whose name
    cannot be a tag is a problem (added to `problems`). `root`: the folder's name relative to
    the import root, which tags.csv names files by."""
    sources = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            skipped.append((str(entry), "hidden file or folder, ignored"))
        elif entry.is_dir():
            why = tag_name_problem(entry.name)
            if why is not None:
                if problems is not None:
                    problems.append(f"{entry}: a sub-folder names the tag of its images, but {why}")
                continue
            sources += _tagged_list(entry, group=group, role=role, prefix=prefix, root=root)
            _deeper_skip(entry, skipped)
        elif entry.is_file():
            sources.append(_source(entry, group, role, f"{prefix}{entry.name}", root))
        else:
            skipped.append((str(entry), "not a regular file"))
    return sources


def _source(path: Path, group: str, role: str, name: str, root: str, tag: str = "") -> Source:
    relative = name.split("/", 1)[-1] if role == Image.Role.QUALIFICATION else name
    return Source(
        path=path,
        original_name=name[:500],
        group=group,
        role=role,
        root_name=f"{root}/{relative}" if root else relative,
        tags={tag} if tag else set(),
    )


def _tagged_list(folder: Path, *, group: str, role: str, prefix: str, root: str) -> list[Source]:
    """The files directly in a sub-folder, each tagged with the sub-folder's name."""
    return [
        _source(entry, group, role, f"{prefix}{folder.name}/{entry.name}", root, folder.name)
        for entry in sorted(folder.iterdir())
        if entry.is_file() and not entry.name.startswith(".")
    ]


def _deeper_skip(folder: Path, skipped: list[tuple[str, str]]) -> None:
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            skipped.append((str(entry), "hidden file or folder, ignored"))
        elif entry.is_dir():
            nested = sum(1 for p in entry.rglob("*") if p.is_file())
            skipped.append(
                (
                    str(entry),
                    f"a sub-folder of a sub-folder ({nested} files) ignored: only one level of "
                    "sub-folders is read, as the tag of its images",
                )
            )
        elif not entry.is_file():
            skipped.append((str(entry), "not a regular file"))


def folders_problems(
    *,
    real_dir: Path,
    model_dirs: Mapping[str, Path],
    qualification_fakes_dir: Path | None,
    study: Study,
) -> list[str]:
    """What is wrong with the folders given, before any file is read."""
    problems: list[str] = []
    if not Path(real_dir).is_dir():
        problems.append(f"{real_dir}: the real images folder does not exist")
    if not model_dirs:
        problems.append("models: give at least one model folder")
    for name, folder in model_dirs.items():
        if not name or not name.strip() or len(name) > 200:
            problems.append(f"model name {name!r}: must be 1 to 200 characters")
        if not Path(folder).is_dir():
            problems.append(f"{folder}: the folder of model {name} does not exist")
    if qualification_fakes_dir is None:
        return problems
    if not study.qualification_trials:
        problems.append(
            f"{qualification_fakes_dir}: qualification fakes were given, but the study has no "
            "qualification (qualification_trials is 0)"
        )
    if not Path(qualification_fakes_dir).is_dir():
        problems.append(f"{qualification_fakes_dir}: the qualification fakes folder does not exist")
        return problems
    subfolders = {
        p.name for p in Path(qualification_fakes_dir).iterdir() if p.is_dir() and p.name[0] != "."
    }
    for extra in sorted(subfolders - set(model_dirs)):
        problems.append(
            f"{Path(qualification_fakes_dir) / extra}: no model is named {extra!r} "
            f"(models: {', '.join(model_dirs)}); name each subfolder after a model"
        )
    for missing in [m for m in model_dirs if m not in subfolders]:
        problems.append(
            f"{qualification_fakes_dir}: no subfolder for model {missing!r}; the qualification "
            "needs fakes from every model"
        )
    return problems


@dataclass
class Folders:
    """The folders of one import: each (group, role)'s folder as messages name it, the files
    found at their top level, and what was passed over while listing them, with why."""

    study: Study
    model_names: list[str]
    separate_qualification: bool
    paths: dict[tuple[str, str], str] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def listed(self) -> Counter:
        return Counter((s.group, s.role) for s in self.sources)


def folders_list(
    *,
    study: Study,
    real_dir: Path,
    model_dirs: Mapping[str, Path],
    qualification_fakes_dir: Path | None,
) -> Folders:
    """Every file of the real folder, of each model's folder and of the qualification fakes'
    subfolders (one per model), as Sources; what is not a candidate goes to `skipped`."""
    found = Folders(
        study=study,
        model_names=list(model_dirs),
        separate_qualification=qualification_fakes_dir is not None,
    )

    def add(folder: Path, group: str, role: str, root: str, prefix: str = "") -> None:
        found.paths[(group, role)] = str(folder)
        found.sources.extend(
            folder_list(
                folder,
                group=group,
                role=role,
                prefix=prefix,
                skipped=found.skipped,
                problems=found.problems,
                root=root,
            )
        )

    add(real_dir, "real", Image.Role.TASK, "real")
    for model_name, folder in model_dirs.items():
        add(folder, model_name, Image.Role.TASK, model_name)
    if qualification_fakes_dir is not None:
        for entry in sorted(qualification_fakes_dir.iterdir()):
            if entry.is_file() and not entry.name.startswith("."):
                found.skipped.append((str(entry), "not in a model's subfolder, ignored"))
        for model_name in model_dirs:
            folder = qualification_fakes_dir / model_name
            add(
                folder,
                model_name,
                Image.Role.QUALIFICATION,
                f"qualification/{model_name}",
                prefix=f"{model_name}/",
            )
    return found


def counts_problems(folders: Folders, counts: Counter, skipped: Counter) -> list[str]:
    """Enough usable images in every folder for one rater, or a problem for each folder.
    counts and skipped: usable and skipped files per (group, role)."""
    problems: list[str] = []
    study, model_names, separate_qualification = (
        folders.study,
        folders.model_names,
        folders.separate_qualification,
    )
    listed, paths = folders.listed, folders.paths
    needs = images_needed(study, len(model_names))

    def check(key: tuple[str, str], need: int, what: str) -> None:
        have = counts[key]
        if not listed[key]:
            problems.append(f"{paths[key]}: the folder is empty (no file at its top level)")
        elif have == 0 or have < need:
            dropped = f" ({skipped[key]} skipped)" if skipped[key] else ""
            detail = f"one rater needs {need}: {what}" if need else "no usable image"
            problems.append(f"{paths[key]}: {have} usable images{dropped}, but {detail}")

    real_need = needs.qualification_real + needs.task_real
    check(
        ("real", Image.Role.TASK),
        real_need,
        f"{needs.qualification_real} for the qualification + {needs.task_real} for the task",
    )
    for name in model_names:
        if separate_qualification:
            check((name, Image.Role.TASK), needs.task_fake, f"{needs.task_fake} for the task")
            check(
                (name, Image.Role.QUALIFICATION),
                needs.qualification_fake_share,
                f"its share of the qualification's fakes, {needs.qualification_fake_share}",
            )
        else:
            need = needs.task_fake + needs.qualification_fake_share
            check(
                (name, Image.Role.TASK),
                need,
                f"{needs.task_fake} for the task + its share of the qualification's fakes, "
                f"{needs.qualification_fake_share}",
            )
    return problems


def display_size_pick(sources: list[Source]) -> tuple[tuple[int, int], str]:
    """The most common size of the fakes; on a tie the smaller, so fewer images are enlarged."""
    sizes = Counter(s.size for s in sources if s.group != "real")
    (width, height), count = min(sizes.items(), key=lambda kv: (-kv[1], kv[0][0] * kv[0][1]))
    total = sum(sizes.values())
    return (width, height), f"the most common size of the fakes: {count} of {total}"
