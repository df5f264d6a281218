"""Who a rater is, from the parameters on the study link: Prolific and MTurk add their worker
id (and their own session ids), a plain link may carry an external id of its own."""

from __future__ import annotations

from collections.abc import Mapping

from experiments.models import RaterSession

# Where each platform puts the worker's id in the study link, in the order they are read.
EXTERNAL_ID_PARAMS = [
    ("PROLIFIC_PID", RaterSession.Source.PROLIFIC),
    ("workerId", RaterSession.Source.MTURK),
    ("external_id", RaterSession.Source.LINK),
]
# Every parameter the landing page passes on to the start page, as the platform sent it.
PASSED_ON_PARAMS = [
    "PROLIFIC_PID",
    "STUDY_ID",
    "SESSION_ID",
    "workerId",
    "assignmentId",
    "hitId",
    "external_id",
]
MAX_PARAM_LENGTH = 200


def arrival_params(params: Mapping[str, str]) -> list[tuple[str, str]]:
    """The platform parameters of the landing URL to pass on, each cut to a safe length."""
    return [(k, params[k][:MAX_PARAM_LENGTH]) for k in PASSED_ON_PARAMS if params.get(k)]


def arrival_identity(params: Mapping[str, str]) -> tuple[str, str]:
    """(external id, source) of the arriving rater; ("", link) when the link names nobody."""
    for param, source in EXTERNAL_ID_PARAMS:
        if params.get(param, "").strip():
            return params[param], source
    return "", RaterSession.Source.LINK
