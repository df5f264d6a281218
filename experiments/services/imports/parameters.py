"""The parameters of a new study, checked all at once: every invalid value, unknown name or
inconsistent pair is one problem, so a researcher can fix them in one go."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError

from experiments.models import PROTOCOL_PARAMETERS, Study

MAX_DISPLAY_SIDE = 4096
MAX_MASKS = 1000
# A new study starts as a draft or live, never closed.
IMPORT_STATUSES = (Study.Status.DRAFT, Study.Status.LIVE)
# Feedback was on or off before it said when it is given: true in an older parameter file,
# API call or script still means after every answer, and false never.
LEGACY_FEEDBACK = {True: Study.Feedback.EVERY_TRIAL, False: Study.Feedback.NONE}
_LEGACY_FEEDBACK_TEXT = {"true": True, "false": False}


def feedback_value(value: Any) -> Any:
    """A feedback parameter as Study.feedback takes it: true and false (also as the text a
    form sends) become every_trial and none; anything else is left for validation."""
    if isinstance(value, str) and value.strip().lower() in _LEGACY_FEEDBACK_TEXT:
        value = _LEGACY_FEEDBACK_TEXT[value.strip().lower()]
    if isinstance(value, bool):
        return LEGACY_FEEDBACK[value]
    return value


def staircase_bounds_problem(study: Study) -> str | None:
    """The staircase must start inside its bounds; the database checks it too, but this says
    it in words."""
    if study.staircase_floor_ms <= study.staircase_start_ms <= study.staircase_ceiling_ms:
        return None
    return (
        "staircase: it must start inside its bounds (floor <= start <= ceiling), got "
        f"{study.staircase_floor_ms} <= {study.staircase_start_ms} <= "
        f"{study.staircase_ceiling_ms}"
    )


def study_build(
    *,
    owner: AbstractBaseUser | None,
    name: str,
    method: str,
    status: str,
    params: Mapping[str, Any],
    display_size: tuple[int, int] | None,
    masks: int,
) -> tuple[Study, list[str]]:
    """An unsaved Study with the given parameters, and a problem for every invalid value."""
    problems: list[str] = []
    unknown = sorted(set(params) - set(PROTOCOL_PARAMETERS))
    if unknown:
        problems.append(
            f"unknown study parameter(s): {', '.join(unknown)} "
            f"(known: {', '.join(PROTOCOL_PARAMETERS)})"
        )
    known = {key: value for key, value in params.items() if key in PROTOCOL_PARAMETERS}
    if "feedback" in known:
        known["feedback"] = feedback_value(known["feedback"])
    if status not in IMPORT_STATUSES:
        problems.append(f"status: {status!r} is not one of {', '.join(IMPORT_STATUSES)}")
    if owner is None or getattr(owner, "pk", None) is None:
        problems.append("owner: an existing user must own the study")
    study = Study(name=str(name).strip(), method=method, status=status, **known)
    if owner is not None and getattr(owner, "pk", None) is not None:
        study.owner = owner
    invalid: set[str] = set()
    try:
        # The staircase bounds are checked below with a clearer message than the constraint's.
        exclude = ["owner"] if status in IMPORT_STATUSES else ["owner", "status"]
        study.full_clean(exclude=exclude, validate_constraints=False)
    except ValidationError as error:
        for field_name, messages in error.message_dict.items():
            problems.append(f"{field_name}: {' '.join(messages)}")
            invalid.add(field_name)
    # Further checks only on fields that passed, so that every message is about one mistake.
    staircase = {"staircase_floor_ms", "staircase_start_ms", "staircase_ceiling_ms"}
    if not staircase & invalid and (problem := staircase_bounds_problem(study)):
        problems.append(problem)
    if {"display_width", "display_height"} & invalid:
        given: tuple = (None, None)
    else:
        given = (study.display_width, study.display_height)
    if (given[0] is None) != (given[1] is None):
        problems.append("display_width and display_height: give both or neither")
    elif display_size is not None and given[0] is not None and tuple(display_size) != given:
        problems.append(
            f"display size: {display_size[0]}x{display_size[1]} and display_width/height "
            f"{given[0]}x{given[1]} disagree"
        )
    size = tuple(display_size) if display_size is not None else given
    if size[0] is not None:
        if len(size) != 2 or not all(
            isinstance(side, int) and 1 <= side <= MAX_DISPLAY_SIDE for side in size
        ):
            problems.append(
                f"display size: {size!r} must be two whole numbers from 1 to {MAX_DISPLAY_SIDE}"
            )
        else:
            study.display_width, study.display_height = size
    if isinstance(masks, bool) or not isinstance(masks, int) or not 0 <= masks <= MAX_MASKS:
        problems.append(f"masks: {masks!r} must be a whole number from 0 to {MAX_MASKS}")
    elif {"method", "mask_count"} & invalid:
        pass
    elif study.method == Study.Method.TIME and study.mask_count and masks < study.mask_count:
        problems.append(
            f"masks: {masks} generated, but every HYPE_time trial shows mask_count="
            f"{study.mask_count} of them; generate at least that many (or set mask_count)"
        )
    return study, problems
