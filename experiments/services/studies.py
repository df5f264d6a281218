"""Finding a study and changing one: the one lookup every command uses, renaming, opening,
closing or reopening a study, changing its parameters while no rater has started, and sharing
it read-only with colleagues. Used by the API, the commands and the researcher's study page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count

from experiments.models import Image, Study
from experiments.services.exclusions import EXCLUSION_RULES
from experiments.services.imports.parameters import staircase_bounds_problem
from experiments.services.problems import InputProblems

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


# --- Finding a study --------------------------------------------------------------------------


def study_lookup(reference: str) -> Study:
    """The study a researcher names on the command line: by public id, by primary key, or by
    its exact name when only one study has it. Raises InputProblems saying which was missed,
    or which studies share the name."""
    study = Study.objects.filter(public_id=reference).first()
    if study is None and reference.isdigit():
        study = Study.objects.filter(pk=int(reference)).first()
    if study is not None:
        return study
    named = list(Study.objects.filter(name=reference).order_by("created_at"))
    if len(named) > 1:
        choices = ", ".join(f"{s.public_id} (created {s.created_at:%Y-%m-%d})" for s in named)
        raise InputProblems(
            [f"{len(named)} studies are named {reference!r}; give the public id of one: {choices}"]
        )
    if not named:
        raise InputProblems([f"No study has the public id, id or name {reference!r}."])
    return named[0]


def study_image_counts(study: Study) -> dict[int | str, dict[str, int]]:
    """The study's images counted: model id, or "real" or "mask" -> role -> number."""
    counts: dict[int | str, dict[str, int]] = {}
    rows = (
        Image.objects.filter(study=study)
        .values_list("model_id", "is_real", "role")
        .annotate(n=Count("id"))
        .order_by()
    )
    for model_id, is_real, role, n in rows:
        key = model_id if model_id is not None else ("real" if is_real else "mask")
        counts.setdefault(key, {})[role] = n
    return counts


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
    started. Raises InputProblems, listing every problem, and then changes nothing."""
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
        # The exclusion rules decide what is scored, not what raters see: they may change at
        # any time (experiments.services.exclusions applies them).
        locked = sorted(set(changed) - set(EXCLUSION_RULES))
        if locked and started:
            problems.append(
                f"parameters: protocol parameters cannot change once raters have started "
                f"({started} rater session{'s' if started != 1 else ''} so far); asked to "
                f"change {', '.join(locked)}. Create a new study instead."
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
        if problem := staircase_bounds_problem(study):
            problems.append(problem)
        if problems:
            raise InputProblems(problems)
        study.save()
    return study


def study_status_change(*, study: Study, action: str) -> Study:
    """The study page's buttons: "open" (a draft or closed study goes live) or "close" (a live
    study closes). Decided on the study's current status, read locked, so a stale page (another
    tab closed the study meanwhile) changes nothing rather than skipping a state. Returns the
    changed study; raises InputProblems ("A closed study cannot be closed; nothing was
    changed.") and changes nothing when the action does not apply."""
    if action not in STATUS_ACTIONS:
        choices = " or ".join(repr(a) for a in STATUS_ACTIONS)
        raise InputProblems([f"action must be {choices}."])
    target, done = STATUS_ACTIONS[action]
    with transaction.atomic():
        current = Study.objects.select_for_update().get(pk=study.pk)
        if not _status_change_allowed(current.status, target):
            shown = Study.Status(current.status).label.lower()
            raise InputProblems([f"A {shown} study cannot be {done}; nothing was changed."])
        return study_update(study=current, status=target)


# --- Sharing ---------------------------------------------------------------------------------

SHARING_ACTIONS = ("add", "remove")


def study_share(*, study: Study, by, action: str, username: str) -> tuple[bool, str]:
    """Give a colleague read access to the study ("add"), or take it away ("remove"), on behalf
    of `by`. Returns (whether anything changed, what to tell the researcher); raises
    InputProblems, and changes nothing, when the request cannot be carried out."""
    if action not in SHARING_ACTIONS:
        raise ValueError(f"action must be one of {SHARING_ACTIONS}, not {action!r}")
    if not username:
        raise InputProblems(["Enter a colleague's username."])
    colleague = get_user_model().objects.filter(username=username, is_active=True).first()
    shared = colleague is not None and study.viewers.filter(pk=colleague.pk).exists()
    if action == "remove":
        if not shared:
            raise InputProblems([f"“{username}” is not among the colleagues of this study."])
        study.viewers.remove(colleague)
        return True, f"{username} no longer sees this study."
    if colleague is None:
        raise InputProblems([f"There is no researcher with the username “{username}”."])
    if colleague.pk == by.pk:
        raise InputProblems(["You can see this study already; share it with a colleague."])
    if colleague.pk == study.owner_id:
        raise InputProblems([f"{username} owns this study already."])
    if shared:
        return False, f"{username} can see this study already."
    study.viewers.add(colleague)
    return True, f"{username} can now see this study, read-only."
