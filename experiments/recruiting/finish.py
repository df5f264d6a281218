"""How a rater leaves, by platform and outcome: a Prolific participant is sent to Prolific's
completion URL with the study's code for that outcome; an MTurk worker's frame posts the
assignment to MTurk's externalSubmit; a link rater is shown their own completion code. The
finish page shows the code too, in case the redirect or the post does not happen."""

from __future__ import annotations

from dataclasses import dataclass, field

from experiments.models import RaterSession, Study
from experiments.recruiting.links import mturk_submit_url, prolific_complete_url

Source = RaterSession.Source

# The outcomes a rater can leave with (experiments.rating.lifecycle.session_outcome gives a
# session's; no_consent and full happen before there is one).
COMPLETED = "completed"
FAILED_QUALIFICATION = "failed_qualification"
NO_CONSENT = "no_consent"
FULL = "full"
CLOSED = "closed"
EXCLUDED = "excluded"
# No answer for the study's idle limit (or the platform said the submission was returned):
# Prolific and MTurk have no code for it; the rater returns the submission or the HIT.
ABANDONED = "abandoned"
# Already a rater of another study of an exclusive group: likewise returned, without a code.
OTHER_STUDY = "other_study"
# The device check before consent failed (experiments.rating.display): Prolific's
# INCOMPATIBLE_DEVICE code; an MTurk worker returns the HIT. No session was started.
DEVICE = "device"


@dataclass(frozen=True)
class Finish:
    """What the finish page does: show `code` (if any), and send the browser to
    `redirect_url` (Prolific) or post `post_fields` to `post_url` (MTurk)."""

    outcome: str
    source: str
    code: str = ""
    redirect_url: str = ""
    post_url: str = ""
    post_fields: dict[str, str] = field(default_factory=dict)


def prolific_code(study: Study, outcome: str) -> str:
    """The study's Prolific completion code for an outcome ("" where Prolific has none)."""
    return {
        COMPLETED: study.code_completed,
        FAILED_QUALIFICATION: study.code_screened_out,
        NO_CONSENT: study.code_no_consent,
        FULL: study.code_full,
        CLOSED: study.code_full,
        DEVICE: study.code_device,
    }.get(outcome, "")


def finish_for(
    *, study: Study, outcome: str, source: str, session: RaterSession | None = None
) -> Finish:
    """How a rater from `source` leaves with `outcome` (their session, once there is one)."""
    if source == Source.PROLIFIC:
        code = prolific_code(study, outcome)
        redirect = prolific_complete_url(code=code) if code else ""
        return Finish(outcome=outcome, source=source, code=code, redirect_url=redirect)
    if source == Source.MTURK and session is not None:
        post_url = mturk_submit_url(submit_to=session.submit_to) or ""
        # A worker who took part submits the assignment, whatever the outcome: the
        # researcher approves it or not (mturk_review approves completed ones).
        if (
            post_url
            and session.platform_session_id
            and outcome
            in (
                COMPLETED,
                FAILED_QUALIFICATION,
                CLOSED,
            )
        ):
            return Finish(
                outcome=outcome,
                source=source,
                code=session.completion_code,
                post_url=post_url,
                post_fields={
                    "assignmentId": session.platform_session_id,
                    "completion_code": session.completion_code,
                    "outcome": outcome,
                },
            )
        return Finish(outcome=outcome, source=source)
    code = session.completion_code if session is not None and outcome == COMPLETED else ""
    return Finish(outcome=outcome, source=source, code=code)
