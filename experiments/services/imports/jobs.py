"""Importing a study in the background, so that the dashboard can show a long import's progress:
the uploads are copied before the request ends, then a daemon thread runs the same import as
`manage.py create_study` and records its progress and outcome on a StudyImport row."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, connections, transaction
from django.http import Http404
from django.utils import timezone

from experiments.models import GenerativeModel, Study, StudyImport
from experiments.services.imports.audit import AuditReport, study_audit
from experiments.services.imports.parameters import study_build
from experiments.services.imports.uploads import (
    FORM_PARAMETERS,
    ImageGroup,
    ZipImport,
    study_create_from_groups,
)
from experiments.services.imports.zips import zip_model_name
from experiments.services.problems import InputProblems

logger = logging.getLogger(__name__)

# How messages name real images uploaded as files (a model's files are named after the model).
REAL_FILES_LABEL = "real images"
# A running import writes its progress at most this often; the page polls about once a second.
PROGRESS_WRITE_S = 0.5
# The thread dies with its worker process (a restart, a deploy) and the row stays "running":
# past this age the page calls such an import interrupted.
INTERRUPTED_AFTER = timedelta(hours=1)
INTERRUPTED = "interrupted"
_MODEL_NAME_MAX = GenerativeModel._meta.get_field("name").max_length
_ERROR_SHOWN_MAX = 300
_CHUNK = 1 << 20

# This process's running imports, public id -> (done, total). The page reads these first: on
# SQLite the import's own transaction holds the one write lock until it commits, so the row
# cannot be written before the end (PostgreSQL gets it written as it goes, for other workers).
_running: dict[str, tuple[int, int]] = {}
_running_lock = threading.Lock()


@dataclass(frozen=True)
class _Group:
    """The real images or one model's, as copied: a zip to unpack, or a folder of files."""

    label: str  # how messages name it: the zip's file name, "real images" or the model's name
    zip_path: Path | None = None
    folder: Path | None = None
    model: str = ""


@dataclass(frozen=True)
class _Plan:
    """Everything the thread needs, none of it a request's object."""

    name: str
    method: str
    params: dict[str, Any]
    display_size: tuple[int, int] | None
    masks: int
    real: _Group
    models: list[_Group]
    qualification: _Group | None


def _is_zip(upload: UploadedFile) -> bool:
    return upload.name.lower().endswith(".zip")


def _uploads_problems(data: Mapping[str, Any]) -> list[str]:
    """What is wrong with the uploads themselves, before anything is copied."""
    problems = []
    real = list(data.get("real") or [])
    if not real:
        problems.append(f"{REAL_FILES_LABEL}: give a zip of the real images, or the image files")
    elif len(real) > 1 and any(_is_zip(upload) for upload in real):
        problems.append(f"{REAL_FILES_LABEL}: give one zip, or image files, not both")
    models = [(str(name or "").strip(), list(files)) for name, files in data.get("models") or []]
    if not models:
        problems.append("models: give at least one model: a zip of its images, or its image files")
    names = []
    for number, (name, files) in enumerate(models, start=1):
        if not files:
            problems.append(f"model {name or number}: no images given")
            continue
        if len(files) > 1 and any(_is_zip(upload) for upload in files):
            problems.append(f"model {name or number}: give one zip, or image files, not both")
            continue
        if not name and not _is_zip(files[0]):
            problems.append(f"model {number}: give the model a name (its images are files)")
            continue
        name = name or zip_model_name(files[0].name)
        if not 1 <= len(name) <= _MODEL_NAME_MAX or "/" in name or "\\" in name:
            problems.append(
                f"model name {name!r}: must be 1 to {_MODEL_NAME_MAX} characters, without / or \\"
            )
        names.append(name)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        problems.append(f"models: two models have the same name: {', '.join(repeated)}")
    qualification = data.get("qualification_zip")
    if qualification is not None and not _is_zip(qualification):
        problems.append(f"{qualification.name}: the qualification fakes must be one zip")
    return problems


def _display_size(data: Mapping[str, Any]) -> tuple[tuple[int, int] | None, list[str]]:
    width, height = data.get("display_width"), data.get("display_height")
    if (width is None) != (height is None):
        return None, ["display size: give both the width and the height, or neither"]
    return ((width, height) if width is not None else None), []


def _copy(upload: UploadedFile, target: Path) -> None:
    with target.open("wb") as out:
        for chunk in upload.chunks(_CHUNK):
            out.write(chunk)


def _files_copy(uploads: Sequence[UploadedFile], folder: Path) -> Path:
    """Image files into one folder, under their own names; a second file of the same name gets
    " (2)" added, as a browser's downloads do."""
    folder.mkdir(parents=True)
    for upload in uploads:
        name = Path(upload.name).name or "file"
        target = folder / name
        copy = 2
        while target.exists():
            target = folder / f"{Path(name).stem} ({copy}){Path(name).suffix}"
            copy += 1
        _copy(upload, target)
    return folder


def _group_copy(uploads: Sequence[UploadedFile], scratch: Path, key: str, label: str) -> _Group:
    """One zip copied as it is, or image files into a folder of their own."""
    if len(uploads) == 1 and _is_zip(uploads[0]):
        zip_path = scratch / "uploads" / f"{key}.zip"
        _copy(uploads[0], zip_path)
        return _Group(label=label or uploads[0].name, zip_path=zip_path)
    return _Group(label=label, folder=_files_copy(uploads, scratch / key))


def _plan_copy(data: Mapping[str, Any], scratch: Path, display_size) -> _Plan:
    """The uploads copied into `scratch`: Django deletes its temporary upload files when the
    request ends, before the thread has read them."""
    (scratch / "uploads").mkdir()
    real = list(data["real"])
    models = []
    for index, (name, files) in enumerate(data["models"]):
        files = list(files)
        name = str(name or "").strip()
        # A zip without a name is named after itself, and messages say its file name, as
        # everywhere else; a model given a name is called by it.
        group = _group_copy(files, scratch, f"model-{index}", name)
        models.append(
            _Group(
                label=group.label,
                zip_path=group.zip_path,
                folder=group.folder,
                model=name or zip_model_name(files[0].name),
            )
        )
    qualification = None
    if upload := data.get("qualification_zip"):
        qualification = _group_copy([upload], scratch, "qualification", "")
    return _Plan(
        name=str(data["name"]).strip(),
        method=data["method"],
        params={name: data[name] for name in FORM_PARAMETERS if name in data},
        display_size=display_size,
        masks=data["masks"],
        real=_group_copy(real, scratch, "real", "" if _is_zip(real[0]) else REAL_FILES_LABEL),
        models=models,
        qualification=qualification,
    )


def study_import_start(*, owner: AbstractBaseUser, data: Mapping[str, Any]) -> StudyImport:
    """Start importing a study in the background and return its StudyImport (running).

    `data`, an upload form's cleaned data: name, method, masks, real (the uploads: one zip or
    image files), models ([(name, uploads)]: one zip, or image files and a name; a zip without
    a name names the model after itself), optionally qualification_zip, display_width and
    display_height (both or neither), and any of FORM_PARAMETERS (those left out keep the
    study's defaults). The new study is a draft of `owner`.

    Raises InputProblems, having started nothing, for what can be told at once (the uploads'
    shapes, the parameters); what the images hold is checked in the background and recorded
    on the row: a failed import creates nothing."""
    display_size, problems = _display_size(data)
    problems += _uploads_problems(data)
    _, parameter_problems = study_build(
        owner=owner,
        name=data.get("name", ""),
        method=data.get("method", ""),
        status=Study.Status.DRAFT,
        params={name: data[name] for name in FORM_PARAMETERS if name in data},
        display_size=display_size,
        masks=data.get("masks", 0),
    )
    problems += parameter_problems
    if problems:
        raise InputProblems(problems)
    scratch = Path(tempfile.mkdtemp(prefix="hype-import-"))
    try:
        plan = _plan_copy(data, scratch, display_size)
        job = StudyImport.objects.create(owner=owner, name=plan.name)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    thread = threading.Thread(
        target=_import_run,
        kwargs={"job": job, "owner_id": owner.pk, "plan": plan, "scratch": scratch},
        name=f"hype-import-{job.public_id}",
        daemon=True,
    )
    # The thread writes to the row: start it once the row is committed.
    transaction.on_commit(thread.start)
    return job


# --- The thread ----------------------------------------------------------------------------


class _ProgressWriter:
    """Writes an import's latest (done, total) to its row from a thread of its own, at most
    every PROGRESS_WRITE_S: the import's thread is inside the import's transaction, whose
    writes no other connection sees before it commits."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.latest: tuple[int, int] | None = None
        self.offered = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"hype-import-progress-{job_id}", daemon=True
        )
        self.thread.start()

    def offer(self, done: int, total: int) -> None:
        self.latest = (done, total)
        self.offered.set()

    def stop(self) -> None:
        self.stopped.set()
        self.offered.set()
        self.thread.join()

    def _run(self) -> None:
        failed = False
        try:
            while True:
                self.offered.wait()
                self.offered.clear()
                if self.stopped.is_set():
                    return
                done, total = self.latest
                try:
                    StudyImport.objects.filter(
                        pk=self.job_id, status=StudyImport.Status.RUNNING
                    ).update(done=done, total=total)
                except DatabaseError:
                    # Progress is a courtesy (the outcome is written apart): say it once.
                    if not failed:
                        logger.warning(
                            "Import %s: progress not written", self.job_id, exc_info=True
                        )
                    failed = True
                if self.stopped.wait(PROGRESS_WRITE_S):
                    return
        finally:
            connections.close_all()


def _group(group: _Group) -> ImageGroup:
    return ImageGroup(label=group.label, zip=group.zip_path, folder=group.folder)


def _import(plan: _Plan, owner, progress) -> ZipImport:
    """The study created from the copied uploads, with progress. Raises InputProblems naming
    the uploads."""
    return study_create_from_groups(
        owner=owner,
        name=plan.name,
        method=plan.method,
        real=_group(plan.real),
        models={group.model: _group(group) for group in plan.models},
        qualification=_group(plan.qualification) if plan.qualification is not None else None,
        params=plan.params,
        display_size=plan.display_size,
        masks=plan.masks,
        status=Study.Status.DRAFT,
        progress=progress,
    )


def _finish(job_id: int, **fields) -> None:
    StudyImport.objects.filter(pk=job_id).update(finished_at=timezone.now(), **fields)


def _import_run(*, job: StudyImport, owner_id: int, plan: _Plan, scratch: Path) -> None:
    """The import's thread: runs it, records the outcome, and always cleans up."""
    created = None
    with _running_lock:
        _running[job.public_id] = (0, 0)
    writer = _ProgressWriter(job.pk) if connections["default"].vendor != "sqlite" else None

    def progress(done: int, total: int) -> None:
        with _running_lock:
            _running[job.public_id] = (done, total)
        if writer is not None:
            writer.offer(done, total)

    try:
        try:
            owner = get_user_model().objects.get(pk=owner_id)
            created = _import(plan, owner, progress)
        finally:
            if writer is not None:
                writer.stop()
        with _running_lock:
            done, total = _running.get(job.public_id, (0, 0))
        _finish(
            job.pk,
            status=StudyImport.Status.DONE,
            study=created.study,
            done=done,
            total=total,
            summary=created.summary,
            skipped=[[path, why] for path, why in created.skipped],
        )
    except InputProblems as failure:
        _finish(job.pk, status=StudyImport.Status.FAILED, problems=failure.problems)
    except Exception as error:  # noqa: BLE001 - recorded on the row, never left "running"
        logger.exception("Import %s (%s) stopped on an unexpected error", job.public_id, job.name)
        shown = f"{type(error).__name__}: {error}"[:_ERROR_SHOWN_MAX]
        outcome = (
            f"the study was created (public id {created.study.public_id}), but not its report"
            if created is not None
            else "nothing was created"
        )
        try:
            _finish(
                job.pk,
                status=StudyImport.Status.FAILED,
                problems=[
                    f"The import stopped on an unexpected error ({shown}): {outcome}. The "
                    "details are in the server's log; try again, or tell whoever runs this "
                    "server."
                ],
            )
        except Exception:  # noqa: BLE001 - the database itself failed; the log says so
            logger.exception("Import %s: its failure could not be recorded", job.public_id)
    finally:
        with _running_lock:
            _running.pop(job.public_id, None)
        shutil.rmtree(scratch, ignore_errors=True)
        connections.close_all()


# --- What the pages show -------------------------------------------------------------------


def study_import_find(*, user, public_id: str) -> StudyImport:
    """The import if the user may see it (its owner, staff); Http404 otherwise, so nobody
    learns that someone else's import exists."""
    job = None
    if getattr(user, "is_authenticated", False):
        found = StudyImport.objects.select_related("study").filter(public_id=public_id)
        job = (found if user.is_staff else found.filter(owner=user)).first()
    if job is None:
        raise Http404("No such import.")
    return job


def study_imports_recent(*, user, limit: int = 5) -> list[tuple[StudyImport, str]]:
    """The user's latest imports, newest first, each with its status (study_import_status)."""
    jobs = StudyImport.objects.filter(owner=user).select_related("study")[:limit]
    return [(job, study_import_status(job)) for job in jobs]


def study_import_status(job: StudyImport) -> str:
    """running, done, failed, or interrupted: still running long after any import ends, so
    its thread died with its worker (unless it runs in this process)."""
    if job.status != StudyImport.Status.RUNNING:
        return job.status
    with _running_lock:
        here = job.public_id in _running
    if not here and timezone.now() - job.created_at > INTERRUPTED_AFTER:
        return INTERRUPTED
    return job.status


def study_import_progress(*, job: StudyImport) -> dict[str, Any]:
    """What the page's script polls: the status and the images (and masks) stored so far, out
    of how many. total is 0 while the zips are unpacked and the files read."""
    with _running_lock:
        live = _running.get(job.public_id)
    running = live is not None and job.status == StudyImport.Status.RUNNING
    done, total = live if running else (job.done, job.total)
    return {
        "status": study_import_status(job),
        "done": done,
        "total": total,
        "percent": round(100 * done / total) if total else 0,
    }


@dataclass(frozen=True)
class ImportPage:
    """An import as its page shows it: the progress while it runs; the summary (without the
    skipped files, which `skipped` lists), every refused file and the audit once done; the
    problems once failed."""

    job: StudyImport
    progress: dict[str, Any]
    summary: list[str]
    skipped: list[tuple[str, str]]
    problems: list[str]
    audit: AuditReport | None

    @property
    def status(self) -> str:
        return self.progress["status"]


def _summary_lines(job: StudyImport) -> list[str]:
    """The summary as the command prints it, less its closing list of skipped files."""
    if job.skipped:
        block = [f"Skipped ({len(job.skipped)}):"] + [f"  {p}: {r}" for p, r in job.skipped]
    else:
        block = ["Skipped: nothing"]
    tail = "\n" + "\n".join(block)
    text = job.summary[: -len(tail)] if job.summary.endswith(tail) else job.summary
    return text.splitlines()


def study_import_page(*, job: StudyImport) -> ImportPage:
    """Everything the import's page shows. The audit reopens the new study's files, now: the
    verdict is the study's as it is."""
    done = job.status == StudyImport.Status.DONE
    return ImportPage(
        job=job,
        progress=study_import_progress(job=job),
        summary=_summary_lines(job) if done else [],
        skipped=[(path, reason) for path, reason in job.skipped] if done else [],
        problems=list(job.problems) if job.status == StudyImport.Status.FAILED else [],
        audit=study_audit(study=job.study) if done and job.study is not None else None,
    )
