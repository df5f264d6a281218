"""A researcher's groups of studies (experiments.models.StudyGroup): making one, changing what
kind it is and how long its pool keeps a qualification, putting a study in one or taking it
out, and what each holds. The rules a group sets for raters live in
experiments.rating.groups; the dashboard's groups page and the study page call here."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from experiments.models import Study, StudyGroup
from experiments.rating.groups import pool_size
from experiments.services.problems import InputProblems


@dataclass(frozen=True)
class GroupSummary:
    group: StudyGroup
    studies: tuple[Study, ...]
    pool_size: int | None  # qualified pool only


def groups_of(owner) -> list[GroupSummary]:
    """The owner's groups, each with its studies and, for a qualified pool, its size."""
    summaries = []
    for group in StudyGroup.objects.filter(owner=owner).prefetch_related("studies"):
        summaries.append(
            GroupSummary(
                group=group,
                studies=tuple(group.studies.order_by("created_at")),
                pool_size=pool_size(group) if group.kind == StudyGroup.Kind.POOL else None,
            )
        )
    return summaries


def _checked(group: StudyGroup) -> StudyGroup:
    group.name = group.name.strip()
    try:
        group.full_clean(exclude=["owner"], validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        raise InputProblems(
            [f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()]
        ) from None
    return group


def group_create(*, owner, name: str, kind: str, qualification_days) -> StudyGroup:
    """A new group of the owner's, or InputProblems (a name they already use, a bad value)."""
    group = _checked(
        StudyGroup(owner=owner, name=name, kind=kind, qualification_days=qualification_days)
    )
    try:
        with transaction.atomic():
            group.save()
    except IntegrityError:
        raise InputProblems([f"name: you already have a group called “{group.name}”."]) from None
    return group


def group_update(group: StudyGroup, *, kind: str, qualification_days) -> StudyGroup:
    """Change what kind of group it is and how many days its pool keeps a qualification. The
    rules apply to raters who arrive from now on; nobody's session changes."""
    group.kind = kind
    group.qualification_days = qualification_days
    _checked(group).save(update_fields=["kind", "qualification_days"])
    return group


def study_group_set(study: Study, group: StudyGroup | None) -> None:
    """Put the study in one of its owner's groups, or in none. A group holds studies of one
    owner only."""
    if group is not None and group.owner_id != study.owner_id:
        raise InputProblems(["group: a study can only join a group of its owner's."])
    Study.objects.filter(pk=study.pk).update(group=group)
    study.group = group
