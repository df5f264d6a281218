"""Who a rater is, from the parameters on the study link: Prolific adds PROLIFIC_PID, STUDY_ID
and SESSION_ID; MTurk adds workerId, assignmentId, hitId and turkSubmitTo (and an assignmentId
of ASSIGNMENT_ID_NOT_AVAILABLE while the worker only previews the HIT); a plain link may carry
an external id of its own. A parameter that is too long or holds unexpected characters is
refused with a clear message, and nothing is created."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from experiments.models import RaterSession
from experiments.recruiting.links import mturk_worker_site

# MTurk's assignmentId while a worker previews a HIT without having accepted it.
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
# Platform ids are letters, digits, "-" and "_" (Prolific's are 24 hex digits, MTurk's upper-
# case letters and digits): anything else is not a platform's id.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SUBMIT_TO = 200
# A plain link's own id is free text, but printable: control characters (NUL, which PostgreSQL
# refuses in text, line breaks that would split an export's row) and lone surrogates (which
# cannot be encoded) are refused.
MAX_EXTERNAL_ID = 200
UNPRINTABLE = {"Cc", "Cs"}

Source = RaterSession.Source
# Every parameter the landing page passes on to the start page, as the platform sent it.
PASSED_ON_PARAMS = [
    "PROLIFIC_PID",
    "STUDY_ID",
    "SESSION_ID",
    "workerId",
    "assignmentId",
    "hitId",
    "turkSubmitTo",
    "external_id",
]
_IDS = ["PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "workerId", "assignmentId", "hitId"]


class ArrivalRefused(Exception):
    """The link's platform parameters cannot be right; the message says which and why."""


@dataclass(frozen=True)
class Arrival:
    """A rater arriving by the study link: their platform, the platform's ids, and whether
    they only preview (MTurk, before accepting the HIT)."""

    source: str
    external_id: str = ""
    platform_study_id: str = ""
    platform_session_id: str = ""
    submit_to: str = ""
    preview: bool = False

    def passed_on(self) -> list[tuple[str, str]]:
        """The parameters the consent form sends on to the start page."""
        if self.source == Source.PROLIFIC:
            names = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")
            values = (self.external_id, self.platform_study_id, self.platform_session_id)
        elif self.source == Source.MTURK:
            names = ("workerId", "hitId", "assignmentId", "turkSubmitTo")
            values = (
                self.external_id,
                self.platform_study_id,
                self.platform_session_id,
                self.submit_to,
            )
        else:
            names, values = ("external_id",), (self.external_id,)
        return [(name, value) for name, value in zip(names, values, strict=True) if value]


def _value(params: Mapping[str, str], name: str) -> str:
    return str(params.get(name, "") or "").strip()


def arrival_read(params: Mapping[str, str]) -> Arrival:
    """The arrival these link parameters describe, or ArrivalRefused saying what is wrong."""
    for name in _IDS:
        value = _value(params, name)
        if value and not ID_PATTERN.fullmatch(value):
            raise ArrivalRefused(
                f"The link's {name} is not a platform id (1 to 64 letters, digits, - or _)."
            )
    prolific_id, worker_id = _value(params, "PROLIFIC_PID"), _value(params, "workerId")
    assignment = _value(params, "assignmentId")
    if prolific_id and (worker_id or assignment):
        raise ArrivalRefused("The link names both a Prolific participant and an MTurk worker.")
    if prolific_id:
        return Arrival(
            source=Source.PROLIFIC,
            external_id=prolific_id,
            platform_study_id=_value(params, "STUDY_ID"),
            platform_session_id=_value(params, "SESSION_ID"),
        )
    if assignment == MTURK_PREVIEW:
        return Arrival(source=Source.MTURK, platform_study_id=_value(params, "hitId"), preview=True)
    if worker_id or assignment:
        return _mturk_arrival(params, worker_id=worker_id, assignment=assignment)
    external_id = _value(params, "external_id")
    if len(external_id) > MAX_EXTERNAL_ID:
        raise ArrivalRefused(f"The link's external_id is longer than {MAX_EXTERNAL_ID} characters.")
    if any(unicodedata.category(char) in UNPRINTABLE for char in external_id):
        raise ArrivalRefused(
            "The link's external_id holds a control character (a NUL byte, a line break, a "
            "tab...) or a broken character; an id is printable text."
        )
    return Arrival(source=Source.LINK, external_id=external_id)


def _mturk_arrival(params: Mapping[str, str], *, worker_id: str, assignment: str) -> Arrival:
    if not worker_id or not assignment:
        raise ArrivalRefused("An MTurk link needs both the workerId and the assignmentId.")
    submit_to = _value(params, "turkSubmitTo")
    if not submit_to:
        raise ArrivalRefused("An MTurk link needs turkSubmitTo, where the HIT is submitted.")
    if len(submit_to) > MAX_SUBMIT_TO or mturk_worker_site(submit_to) is None:
        raise ArrivalRefused(
            "The link's turkSubmitTo is not one of MTurk's worker sites, so the finished task "
            "could not be submitted there."
        )
    return Arrival(
        source=Source.MTURK,
        external_id=worker_id,
        platform_study_id=_value(params, "hitId"),
        platform_session_id=assignment,
        submit_to=mturk_worker_site(submit_to) or "",
    )
