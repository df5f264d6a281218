"""Prolific's API (https://docs.prolific.com) over the standard library, and what the Prolific
commands do with it: create and publish a study, bring its submissions back (abandoned
sessions, approvals that pay the base reward), and pay bonuses, each payment recorded first."""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import socket
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from experiments.models import Payment, PlatformToken, RaterSession, Study
from experiments.recruiting.links import prolific_study_url
from experiments.services.payments import (
    base_due_cents,
    cents_as_amount,
    payment_excluded,
    rater_pay_list,
    session_earned_status,
)
from experiments.services.problems import InputProblems
from experiments.services.progress import progress_announce
from experiments.services.study_texts import minutes_shown

# Read at each request, so that a test can shorten it.
REQUEST_TIMEOUT_S = 30.0
# Submissions asked for per page (Prolific's default is 20); paging goes on until it ends.
SUBMISSIONS_PAGE_SIZE = 100
# Rows per bulk bonus. Prolific documents no limit; a third-party description of its API
# says 200 participants per request, so no bulk bonus is made larger.
BONUSES_PER_BATCH = 200
ERROR_DETAIL_CHARS = 400
# Prolific's participant ids are 24 hexadecimal characters; anything but letters and digits
# would also break the csv_bonuses lines, so such an id is never paid.
PARTICIPANT_ID = re.compile(r"^[0-9A-Za-z]{1,64}$")

# Submission statuses, as Prolific writes them (docs.prolific.com, "List study submissions":
# RESERVED, ACTIVE, TIMED-OUT, AWAITING REVIEW, APPROVED, RETURNED, REJECTED, SCREENED OUT).
AWAITING_REVIEW, APPROVED, REJECTED = "AWAITING REVIEW", "APPROVED", "REJECTED"
RETURNED, TIMED_OUT = "RETURNED", "TIMED-OUT"
GONE = (RETURNED, TIMED_OUT)
# What an abandoned session's end_reason says when Prolific ended it.
ENDED_BY_PROLIFIC = {
    RETURNED: "the submission was returned on Prolific",
    TIMED_OUT: "the submission timed out on Prolific",
}

# One completion code per outcome. The code types are the enum of "Create a draft study"
# (docs.prolific.com/api-reference/studies/create-study: COMPLETED, FAILED_ATTENTION_CHECK,
# FOLLOW_UP_STUDY, GIVE_BONUS, INCOMPATIBLE_DEVICE, NO_CONSENT, OTHER, FIXED_SCREENOUT).
# Failing the qualification is FAILED_ATTENTION_CHECK: FIXED_SCREENOUT needs a workspace
# feature and a FIXED_SCREEN_OUT_PAYMENT action with a reward and slots the study does not
# have. "Study full" has no type of its own: OTHER. Every code's action is MANUALLY_REVIEW
# (the action of Prolific's own CLI examples, prolific-oss/cli): nothing is approved or paid
# on a code alone, since a code can be passed on; prolific_sync --approve approves only the
# raters this server saw complete, and the researcher decides the others on Prolific.
MANUAL_REVIEW = [{"action": "MANUALLY_REVIEW"}]
CODE_TYPES = (
    ("code_completed", "COMPLETED"),
    ("code_screened_out", "FAILED_ATTENTION_CHECK"),
    ("code_no_consent", "NO_CONSENT"),
    ("code_full", "OTHER"),
    # The device check before consent failed (experiments.rating.display).
    ("code_device", "INCOMPATIBLE_DEVICE"),
)
# The rater answers with the keyboard and the exposures are timed to the display's frames.
DEVICES = ["desktop"]
DEFAULT_DESCRIPTION = (
    "You will see images one at a time and say, with a key press, whether each is a real "
    "photograph or was made by a computer. Please use a desktop or laptop computer with a "
    "keyboard."
)


class ProlificError(Exception):
    """Prolific's API could not be used, said in words. `untouched` is True when Prolific
    certainly did not act on the request (it refused it with a 4xx answer, or it was never
    reached); otherwise, after a timeout, a 5xx or a broken connection, its outcome is
    unknown."""

    def __init__(self, message: str, *, status: int | None = None, untouched: bool = False):
        super().__init__(message)
        self.status = status
        self.untouched = untouched


@dataclass(frozen=True)
class ProlificClient:
    """Calls Prolific's API with one researcher's token. `source` says where the token came
    from, for the error that names it; the token itself is never shown beyond its last four
    characters."""

    base_url: str
    token: str = field(repr=False)
    source: str

    @property
    def token_end(self) -> str:
        """The token as messages may show it: its last four characters, and not even those
        of a token too short to spare them."""
        return f"…{self.token[-4:]}" if len(self.token) >= 12 else "…"

    def request(
        self, method: str, path: str, *, what: str, body: Any = None, answer: bool = True
    ) -> Any:
        """The JSON Prolific answers to `method path` (body sent as JSON), or ProlificError
        naming the problem; `what` says what was being done, for that message. answer=False:
        any success will do, whatever its body."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url.rstrip("/") + path,
            data=data if data is not None else (b"" if method == "POST" else None),
            method=method,
            headers={
                "Authorization": f"Token {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": "hype-platform",
            },
        )
        try:
            with _OPENER.open(request, timeout=REQUEST_TIMEOUT_S) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise self._refusal(error.code, error.read(), what=what) from None
        except urllib.error.URLError as error:
            raise self._unreachable(error.reason, what=what) from None
        except TimeoutError:
            raise ProlificError(
                f"Prolific did not answer within {REQUEST_TIMEOUT_S:g} s while {what}; "
                "whether it acted on the request is unknown."
            ) from None
        except (OSError, http.client.HTTPException) as error:
            raise ProlificError(
                f"The connection to Prolific broke while {what} ({error.__class__.__name__}); "
                "whether it acted on the request is unknown."
            ) from None
        if not answer or not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise ProlificError(f"Prolific's answer while {what} was not JSON.") from None

    def _refusal(self, status: int, raw: bytes, *, what: str) -> ProlificError:
        # Each message ends its own sentence.
        detail = self._scrub(error_detail(raw)).rstrip(". ")
        said = f": {detail}" if detail else ""
        if status in (401, 403):
            message = (
                f"Prolific refused the API token ({self.token_end}) while {what} "
                f"(HTTP {status}{said}): check {self.source}."
            )
        elif status == 404:
            message = f"Prolific has no such resource (HTTP 404) while {what}{said}."
        elif status == 429:
            message = f"Prolific is busy (HTTP 429 Too Many Requests) while {what}: wait and rerun."
        elif 300 <= status < 400:
            message = (
                f"Prolific answered with a redirect (HTTP {status}) while {what}, which is not "
                "followed: check HYPE_PROLIFIC_API_URL."
            )
        elif 400 <= status < 500:
            message = f"Prolific refused the request while {what} (HTTP {status}){said}."
        else:
            return ProlificError(
                f"Prolific failed (HTTP {status}) while {what}{said}; whether it acted on the "
                "request is unknown.",
                status=status,
            )
        # 408: the server gave up waiting for the request, not a refusal of its content.
        return ProlificError(message, status=status, untouched=status != 408)

    def _unreachable(self, reason: Any, *, what: str) -> ProlificError:
        if isinstance(reason, TimeoutError):
            return ProlificError(
                f"Prolific did not answer within {REQUEST_TIMEOUT_S:g} s while {what}; "
                "whether it acted on the request is unknown."
            )
        if isinstance(reason, ConnectionRefusedError | socket.gaierror):
            # The request never left this machine.
            why = "connection refused" if isinstance(reason, ConnectionRefusedError) else reason
            return ProlificError(
                f"Could not reach Prolific at {self.base_url} while {what} ({why}): check "
                "HYPE_PROLIFIC_API_URL and the network.",
                untouched=True,
            )
        return ProlificError(
            f"The connection to Prolific at {self.base_url} failed while {what} ({reason}); "
            "whether it acted on the request is unknown."
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, self.token_end) if self.token else text

    # The operations the commands use, paths as docs.prolific.com gives them.

    def study_create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/api/v1/studies/", body=body, what="creating the study")

    def study_get(self, study_id: str) -> dict[str, Any]:
        return self.request(
            "GET", f"/api/v1/studies/{_part(study_id)}/", what=f"reading study {study_id}"
        )

    def study_transition(self, study_id: str, action: str) -> dict[str, Any]:
        return self.request(
            "POST",
            f"/api/v1/studies/{_part(study_id)}/transition/",
            body={"action": action},
            what=f"moving study {study_id} to {action}",
        )

    def submissions_list(self, study_id: str) -> list[dict[str, Any]]:
        """Every submission of the study, page after page ("List submissions": GET
        /api/v1/submissions/?study=, paged by page and page_size)."""
        found: dict[str, dict[str, Any]] = {}
        page = 1
        while True:
            query = urlencode({"study": study_id, "page": page, "page_size": SUBMISSIONS_PAGE_SIZE})
            try:
                answer = self.request(
                    "GET",
                    f"/api/v1/submissions/?{query}",
                    what=f"listing the submissions of study {study_id} (page {page})",
                )
            except ProlificError as error:
                # A page past the last is "not found" in page-numbered lists.
                if error.status == 404 and page > 1:
                    break
                raise
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list):
                raise ProlificError(
                    f"Prolific's list of submissions of study {study_id} had no results."
                )
            if not results:
                break
            new = [r for r in results if isinstance(r, dict) and r.get("id") not in found]
            if not new:
                raise ProlificError(
                    f"Prolific's list of submissions of study {study_id} did not move on at "
                    f"page {page}: nothing was changed."
                )
            found.update((r["id"], r) for r in new)
            # The next page's address only says that there is one: the token is never sent
            # wherever an answer points.
            links = answer.get("_links")
            count = (answer.get("meta") or {}).get("count")
            if isinstance(links, dict) and "next" in links:
                more = bool((links.get("next") or {}).get("href"))
            elif isinstance(count, int):
                more = len(found) < count
            else:
                more = len(results) >= SUBMISSIONS_PAGE_SIZE
            if not more:
                break
            page += 1
        return list(found.values())

    def submission_approve(self, submission_id: str) -> dict[str, Any]:
        # Documented as idempotent: a second approval of one submission is ignored.
        return self.request(
            "POST",
            f"/api/v1/submissions/{_part(submission_id)}/transition/",
            body={"action": "APPROVE"},
            what=f"approving submission {submission_id}",
        )

    def bulk_bonus_create(self, study_id: str, csv_bonuses: str) -> dict[str, Any]:
        return self.request(
            "POST",
            "/api/v1/submissions/bonus-payments/",
            body={"study_id": study_id, "csv_bonuses": csv_bonuses},
            what=f"setting up bonuses for study {study_id}",
        )

    def bulk_bonus_pay(self, bulk_id: str) -> dict[str, Any]:
        # NOT idempotent (docs.prolific.com, "Pay bonuses"): a second call pays again.
        return self.request(
            "POST",
            f"/api/v1/bulk-bonus-payments/{_part(bulk_id)}/pay/",
            what=f"paying bulk bonus {bulk_id}",
            answer=False,
        )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would carry the Authorization header to wherever it points.
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def counted(n: int, word: str) -> str:
    """ "1 bonus", "2 bonuses": a count and its noun."""
    if n == 1:
        return f"1 {word}"
    return f"{n} {word}es" if word.endswith(("s", "x")) else f"{n} {word}s"


def _part(value: str) -> str:
    """An id as one path segment, whatever it holds."""
    return quote(str(value), safe="")


def error_detail(raw: bytes) -> str:
    """What Prolific said in an error answer, in one short line: {"error": {"title",
    "detail"}} (the shape Prolific's CLI reads), {"detail"}, or field errors."""
    try:
        body = json.loads(raw)
    except ValueError:
        text = raw.decode("utf-8", "replace").strip()
        return " ".join(text.split())[:ERROR_DETAIL_CHARS]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"].get("detail") or body["error"].get("title") or body["error"]
    elif isinstance(body, dict) and "detail" in body and len(body) <= 2:
        body = body["detail"]
    return _flat(body)[:ERROR_DETAIL_CHARS]


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_flat(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(_flat(item) for item in value)
    return str(value)


def prolific_client_for(*, study: Study) -> ProlificClient:
    """A client with the study owner's stored Prolific token, or HYPE_PROLIFIC_TOKEN; an
    error saying how to give one when there is neither."""
    owner = study.owner.get_username()
    stored = PlatformToken.objects.filter(
        owner=study.owner, platform=PlatformToken.Platform.PROLIFIC
    ).first()
    base_url = settings.HYPE_PROLIFIC_API_URL
    if stored is not None and stored.token.strip():
        return ProlificClient(
            base_url=base_url,
            token=stored.token.strip(),
            source=f"the Prolific token stored for researcher {owner} (admin: Platform tokens)",
        )
    token = (settings.HYPE_PROLIFIC_TOKEN or "").strip()
    if token:
        return ProlificClient(
            base_url=base_url,
            token=token,
            source=f"HYPE_PROLIFIC_TOKEN (or store a token for researcher {owner} in the admin)",
        )
    raise ProlificError(
        f"No Prolific API token: store one for researcher {owner} in the admin (Platform "
        "tokens) or set HYPE_PROLIFIC_TOKEN. Nothing was sent."
    )


def _prolific_id_of(study: Study) -> str:
    if not study.prolific_study_id:
        raise InputProblems(
            [f'Study "{study.name}" is not on Prolific yet: run prolific_publish first.']
        )
    return study.prolific_study_id


def _normal_status(status: Any) -> str:
    # The list's filters accept AWAITING_REVIEW; its answers say AWAITING REVIEW.
    return str(status or "").strip().upper().replace("_", " ")


def _participant_of(submission: dict[str, Any]) -> str:
    return str(submission.get("participant_id") or submission.get("participant") or "")


def _currency_problem(study: Study, prolific_study: dict[str, Any]) -> str:
    currency = str(prolific_study.get("currency_code") or "").upper()
    if currency and currency != study.currency.upper():
        return (
            f"Prolific's study {prolific_study.get('id', study.prolific_study_id)} is in "
            f"{currency}, but this study's pay is in {study.currency}: Prolific pays rewards "
            "and bonuses in its own currency, so change the study's currency (or the "
            "workspace on Prolific) first."
        )
    return ""


# Creating and publishing the study.


def prolific_study_body(*, study: Study, base_url: str) -> dict[str, Any]:
    """The draft study Prolific is asked to create ("Create a draft study")."""
    description = study.instructions.strip() or DEFAULT_DESCRIPTION
    if study.pay_per_correct_cents:
        description += (
            f" You also earn a bonus of {cents_as_amount(study.pay_per_correct_cents)} "
            f"{study.currency} for each correct answer in the main task, paid after the study."
        )
    return {
        "name": study.name,
        "internal_name": f"HYPE {study.public_id}",
        "description": description,
        "external_study_url": prolific_study_url(study=study, base_url=base_url),
        "prolific_id_option": "url_parameters",
        "completion_codes": [
            {"code": getattr(study, name), "code_type": code_type, "actions": MANUAL_REVIEW}
            for name, code_type in CODE_TYPES
        ],
        "total_available_places": study.models.count() * study.raters_per_model,
        "estimated_completion_time": minutes_shown(study),
        "reward": study.pay_base_cents,
        "device_compatibility": DEVICES,
    }


@dataclass
class PublishResult:
    prolific_study_id: str
    created: bool
    published: bool
    places: int
    reward_cents: int
    currency: str
    minutes: int
    url: str
    warnings: list[str] = field(default_factory=list)


def _base_url_checked(base_url: str | None) -> str:
    base = (base_url or settings.HYPE_PUBLIC_URL or "").strip().rstrip("/")
    if not base:
        raise InputProblems(
            [
                "No public address for the study link: give --url https://your.server or set "
                "HYPE_PUBLIC_URL."
            ]
        )
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputProblems([f"{base!r} is not a web address like https://hype.example.org."])
    return base


def prolific_study_publish(
    *, study: Study, base_url: str | None = None, publish: bool = False
) -> PublishResult:
    """Create the study on Prolific as a draft and keep its id; with publish, publish it too
    (a study that already has a Prolific id is published as it is, never created twice)."""
    if study.prolific_study_id and not publish:
        raise InputProblems(
            [
                f'Study "{study.name}" is already on Prolific as {study.prolific_study_id}; '
                "no second study was created. Review it on Prolific, or rerun with --publish "
                "to publish that draft."
            ]
        )
    if study.prolific_study_id:
        client = prolific_client_for(study=study)
        mismatch = _currency_problem(study, client.study_get(study.prolific_study_id))
        if mismatch:
            raise InputProblems([mismatch + " The draft was not published."])
        answer = client.study_transition(study.prolific_study_id, "PUBLISH")
        return PublishResult(
            prolific_study_id=study.prolific_study_id,
            created=False,
            published=True,
            places=int(answer.get("total_available_places") or 0),
            reward_cents=int(answer.get("reward") or 0),
            currency=str(answer.get("currency_code") or study.currency),
            minutes=int(answer.get("estimated_completion_time") or 0),
            url=str(answer.get("external_study_url") or ""),
        )
    problems = []
    try:
        base = _base_url_checked(base_url)
    except InputProblems as error:
        problems += error.problems
        base = ""
    if study.pay_base_cents <= 0:
        problems.append(
            f'Study "{study.name}" pays nothing (pay_base_cents is 0): Prolific needs a '
            "reward; set the study's base pay first."
        )
    if not study.models.exists():
        problems.append(f'Study "{study.name}" has no models, so no places to offer.')
    if problems:
        raise InputProblems(problems)
    body = prolific_study_body(study=study, base_url=base)
    client = prolific_client_for(study=study)
    try:
        answer = client.study_create(body)
    except ProlificError as error:
        if not error.untouched:
            raise ProlificError(
                f"{error} Look on Prolific for a draft named {body['internal_name']!r} before "
                "rerunning, and delete it if there is one, so that there are not two."
            ) from None
        raise
    new_id = str(answer.get("id") or "")
    if not new_id:
        raise ProlificError("Prolific created the study but its answer had no id.")
    stored = Study.objects.filter(pk=study.pk, prolific_study_id="").update(
        prolific_study_id=new_id
    )
    if not stored:
        study.refresh_from_db(fields=["prolific_study_id"])
        raise ProlificError(
            f"Another run stored Prolific study {study.prolific_study_id} for this study "
            f"meanwhile: delete the duplicate draft {new_id} on Prolific."
        )
    study.prolific_study_id = new_id
    result = PublishResult(
        prolific_study_id=new_id,
        created=True,
        published=False,
        places=body["total_available_places"],
        reward_cents=body["reward"],
        currency=study.currency,
        minutes=body["estimated_completion_time"],
        url=body["external_study_url"],
    )
    mismatch = _currency_problem(study, answer)
    if mismatch:
        result.warnings.append(mismatch)
    if publish:
        if result.warnings:
            result.warnings.append("The draft was not published.")
        else:
            client.study_transition(new_id, "PUBLISH")
            result.published = True
    return result


# Bringing the submissions back.


@dataclass
class SyncReport:
    prolific_study_id: str
    statuses: Counter = field(default_factory=Counter)
    abandoned: list[str] = field(default_factory=list)
    approved: list[tuple[str, int]] = field(default_factory=list)  # (participant, cents)
    confirmed: list[str] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)
    to_approve: list[str] = field(default_factory=list)
    odd: list[str] = field(default_factory=list)
    # Awaiting review, and excluded here after completing: left for the researcher unless
    # --include-excluded (the reason of each).
    excluded: list[str] = field(default_factory=list)
    currency: str = ""
    stopped: str = ""

    @property
    def submissions(self) -> int:
        return sum(self.statuses.values())

    @property
    def changed(self) -> bool:
        return bool(self.abandoned or self.approved or self.confirmed or self.unconfirmed)


def _submission_for(
    session: RaterSession, submissions: list[dict[str, Any]], study_id: str, odd: list[str]
) -> dict[str, Any] | None:
    """The one submission of a rater that is this session's, or None (and why, in odd)."""
    pid = session.external_id
    if session.platform_study_id and session.platform_study_id != study_id:
        odd.append(
            f"Participant {pid}: their session here came from Prolific study "
            f"{session.platform_study_id}, not {study_id}; left alone."
        )
        return None
    if session.platform_session_id:
        mine = [s for s in submissions if s.get("id") == session.platform_session_id]
        for other in submissions:
            if other.get("id") != session.platform_session_id:
                odd.append(
                    f"Participant {pid}: submission {other.get('id')} is not their session's "
                    f"(SESSION_ID {session.platform_session_id}); left alone."
                )
        return mine[0] if mine else None
    if len(submissions) > 1:
        ids = ", ".join(str(s.get("id")) for s in submissions)
        odd.append(
            f"Participant {pid} has {len(submissions)} submissions ({ids}) and their session "
            "here names none of them; left alone."
        )
        return None
    return submissions[0]


def prolific_submissions_sync(
    *, study: Study, approve: bool = False, include_excluded: bool = False
) -> SyncReport:
    """Read every submission of the study on Prolific and bring back what they say: sessions
    still in progress here whose submission was returned or timed out become abandoned; with
    approve, every submission awaiting review whose session is completed here is approved (its
    base pay recorded first). A rater excluded after completing earned the pay but is left
    for the researcher (report.excluded), unless include_excluded. Answers are never touched;
    a rerun approves nothing twice."""
    study_id = _prolific_id_of(study)
    client = prolific_client_for(study=study)
    listed = client.submissions_list(study_id)
    report = SyncReport(prolific_study_id=study_id, currency=study.currency)
    by_participant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for submission in listed:
        submission["status"] = _normal_status(submission.get("status"))
        report.statuses[submission["status"]] += 1
        by_participant[_participant_of(submission)].append(submission)
    sessions = {
        s.external_id: s
        for s in RaterSession.objects.filter(study=study, source=RaterSession.Source.PROLIFIC)
    }
    pairs: list[tuple[RaterSession, dict[str, Any]]] = []
    for pid, submissions in sorted(by_participant.items()):
        session = sessions.get(pid)
        if session is None:
            ids = ", ".join(f"{s.get('id')} ({s['status']})" for s in submissions)
            report.odd.append(f"Participant {pid or '(none)'} has no session here: {ids}.")
            continue
        submission = _submission_for(session, submissions, study_id, report.odd)
        if submission is not None:
            pairs.append((session, submission))
    for pid, session in sorted(sessions.items()):
        if session.status == RaterSession.Status.COMPLETED and pid not in by_participant:
            report.odd.append(f"Participant {pid} completed here but has no submission there.")

    for session, submission in pairs:
        _sync_one(session, submission, report, include_excluded=include_excluded)
    if report.abandoned:
        progress_announce(study)
    if approve:
        for session, submission in pairs:
            if submission["status"] != AWAITING_REVIEW:
                continue
            excluded = payment_excluded(session)
            if session.status != RaterSession.Status.COMPLETED and not (
                include_excluded and excluded
            ):
                continue
            try:
                _approve_one(client, study, session, submission, report)
            except ProlificError as error:
                if error.untouched:
                    then = "Nothing was approved by that request"
                else:
                    then = "That approval is recorded as sent, its outcome unknown"
                report.stopped = (
                    f"{error} Approving stopped there. {then}; the next prolific_sync --approve "
                    "checks it (approving one submission twice pays it once)."
                )
                break
    return report


def _sync_one(
    session: RaterSession,
    submission: dict[str, Any],
    report: SyncReport,
    *,
    include_excluded: bool = False,
) -> None:
    pid, status = session.external_id, submission["status"]
    completed = session.status == RaterSession.Status.COMPLETED
    if status in GONE:
        if session.status in RaterSession.IN_PROGRESS:
            # Only a session still in progress at this very moment: a rater who completes
            # meanwhile keeps their completion.
            ended = RaterSession.objects.filter(
                pk=session.pk, status__in=RaterSession.IN_PROGRESS
            ).update(
                status=RaterSession.Status.ABANDONED,
                finished_at=timezone.now(),
                end_reason=ENDED_BY_PROLIFIC[status],
            )
            if ended:
                report.abandoned.append(f"{pid} ({status} on Prolific)")
        elif completed:
            report.odd.append(
                f"Participant {pid} completed here but their submission is {status} on "
                "Prolific: they are not paid through it; decide on Prolific (e.g. a bonus)."
            )
    elif status == AWAITING_REVIEW:
        if completed or (include_excluded and payment_excluded(session)):
            report.to_approve.append(pid)
        elif payment_excluded(session):
            report.excluded.append(f"{pid} (excluded: {session.excluded_reason})")
        elif session.status in RaterSession.IN_PROGRESS:
            report.odd.append(
                f"Participant {pid} submitted on Prolific but is still {session.status} here."
            )
        else:
            report.odd.append(
                f"Participant {pid} is awaiting review on Prolific and {session.status} here: "
                "not approved by this command; review it on Prolific."
            )
    elif status == APPROVED:
        payment = Payment.objects.filter(session=session, kind=Payment.Kind.BASE).first()
        if payment is not None and payment.status != Payment.Status.PAID:
            # Approved on Prolific, so its reward was paid: the recorded base pay with it.
            _base_paid(payment, session)
            report.confirmed.append(pid)
        elif payment is None:
            report.odd.append(
                f"Participant {pid} was approved on Prolific, not by this command"
                f"{'' if completed else f' (their session here is {session.status})'}; "
                "no base payment is recorded here."
            )
    elif status == REJECTED and completed:
        report.odd.append(f"Participant {pid} completed here but was rejected on Prolific.")


def _base_paid(payment: Payment, session: RaterSession) -> None:
    now = timezone.now()
    with transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.PAID, paid_at=now)
        RaterSession.objects.filter(pk=session.pk, approved_at__isnull=True).update(approved_at=now)


def _approve_one(
    client: ProlificClient,
    study: Study,
    session: RaterSession,
    submission: dict[str, Any],
    report: SyncReport,
) -> None:
    pid = session.external_id
    with transaction.atomic():
        payment, _ = Payment.objects.select_for_update().get_or_create(
            session=session,
            kind=Payment.Kind.BASE,
            defaults={
                "amount_cents": base_due_cents(study, status=session_earned_status(session)),
                "currency": study.currency,
                "request_token": f"prolific-base-{session.public_id}",
            },
        )
    if payment.status == Payment.Status.PAID:
        report.odd.append(
            f"Participant {pid}: recorded as approved here, yet awaiting review on Prolific; "
            "not approved again."
        )
        return
    # A payment already SENT whose answer never came: Prolific still shows the submission
    # awaiting review, and approving is idempotent there, so it is asked again.
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.SENT, sent_at=timezone.now())
    try:
        answer = client.submission_approve(str(submission["id"]))
    except ProlificError as error:
        if error.untouched:
            Payment.objects.filter(pk=payment.pk).update(
                status=Payment.Status.PREPARED, sent_at=None
            )
        raise
    if _normal_status(answer.get("status")) == APPROVED:
        _base_paid(payment, session)
        report.approved.append((pid, payment.amount_cents))
    else:
        report.unconfirmed.append(f"{pid} (Prolific answered {answer.get('status')!r})")


# Paying bonuses.


@dataclass(frozen=True)
class BonusLine:
    participant: str
    cents: int
    currency: str
    batch: str = ""


@dataclass
class BonusReport:
    currency: str
    paid: list[tuple[str, list[BonusLine]]] = field(default_factory=list)  # (batch, lines)
    waiting: list[BonusLine] = field(default_factory=list)  # a dry run: what would be paid
    unconfirmed: dict[str, list[BonusLine]] = field(default_factory=dict)  # batch -> lines
    already_paid: list[BonusLine] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)
    # Raters excluded after completing, with a bonus earned: left out unless include_excluded.
    excluded: list[str] = field(default_factory=list)
    abandoned_batches: list[str] = field(default_factory=list)
    stopped: str = ""


def _bonus_rows(study: Study) -> dict[int, Payment]:
    """The study's Prolific bonus payments recorded so far, by session id."""
    rows = Payment.objects.filter(
        session__study=study,
        session__source=RaterSession.Source.PROLIFIC,
        kind=Payment.Kind.BONUS,
    ).select_related("session")
    return {p.session_id: p for p in rows}


def _line(payment: Payment) -> BonusLine:
    return BonusLine(
        participant=payment.session.external_id,
        cents=payment.amount_cents,
        currency=payment.currency,
        batch=payment.platform_batch_id,
    )


def _bonuses_due(
    study: Study, report: BonusReport, *, include_excluded: bool = False
) -> dict[int, Any]:
    """The completed Prolific raters with a bonus due (rater_pay_list), by session id; why
    the others with one due are not paid here goes to report.held_back, and the raters
    excluded after completing (unless include_excluded) to report.excluded."""
    held_back = report.held_back
    due = {}
    elsewhere = 0
    for row in rater_pay_list(study):
        if row.bonus_cents <= 0:
            continue
        if row.decide and not include_excluded:
            report.excluded.append(f"{row.worker_id} (excluded: {row.excluded_reason})")
        elif row.source != RaterSession.Source.PROLIFIC:
            elsewhere += 1
        elif not PARTICIPANT_ID.match(row.worker_id):
            held_back.append(f"{row.worker_id!r} is not a Prolific participant id: not paid.")
        else:
            due[row.session_id] = row
    if elsewhere:
        held_back.append(
            f"{elsewhere} raters with a bonus due came from elsewhere (not Prolific): not paid "
            "here."
        )
    return due


def _sort_rows(study: Study, report: BonusReport, rows: dict[int, Payment]) -> list[Payment]:
    """Sent rows into report.unconfirmed, paid ones into report.already_paid; the prepared
    ones are returned."""
    prepared = []
    for payment in rows.values():
        if payment.status == Payment.Status.SENT:
            report.unconfirmed.setdefault(payment.platform_batch_id, []).append(_line(payment))
        elif payment.status == Payment.Status.PAID:
            report.already_paid.append(_line(payment))
        else:
            prepared.append(payment)
    return prepared


def unconfirmed_message(unconfirmed: dict[str, list[BonusLine]], *, study: Study) -> str:
    """What to do about bonuses sent to Prolific whose payment was never confirmed."""
    parts = []
    for batch, lines in sorted(unconfirmed.items()):
        total = sum(line.cents for line in lines)
        parts.append(
            f"bulk bonus {batch} ({counted(len(lines), 'rater')}, "
            f"{cents_as_amount(total)} {lines[0].currency})"
        )
    commands = "; ".join(
        f"manage.py prolific_bonus {study.public_id} --confirm-paid {batch}"
        for batch in sorted(unconfirmed)
    )
    return (
        f"Bonuses were sent to Prolific but their payment was never confirmed: "
        f"{'; '.join(parts)}. They are not paid again from here: Prolific's pay call is not "
        "idempotent. Check on Prolific whether they were paid (the bonus payments on the "
        "study's submissions); if they were, or once you have paid them on Prolific yourself, "
        f"record it with: {commands}"
    )


def prolific_bonuses_plan(*, study: Study, include_excluded: bool = False) -> BonusReport:
    """What a run would pay, from this server's records alone (nothing is sent, nothing
    changes): each completed Prolific rater's bonus not paid yet, and any bonuses whose
    payment is unknown (a run stops for those)."""
    report = BonusReport(currency=study.currency)
    rows = _bonus_rows(study)
    prepared = {p.session_id: p for p in _sort_rows(study, report, rows)}
    due = _bonuses_due(study, report, include_excluded=include_excluded)
    for session_id, row in due.items():
        if session_id in prepared:
            report.waiting.append(_line(prepared[session_id]))
        elif session_id not in rows:
            report.waiting.append(
                BonusLine(participant=row.worker_id, cents=row.bonus_cents, currency=row.currency)
            )
    report.waiting.sort(key=lambda line: line.participant)
    return report


def prolific_bonuses_confirm(*, study: Study, batch_id: str) -> list[BonusLine]:
    """Record as paid the bonuses of a bulk bonus that was sent but never confirmed, once the
    researcher has seen on Prolific that it was paid. Calls nothing."""
    rows = [p for p in _bonus_rows(study).values() if p.platform_batch_id == batch_id]
    sent = [p for p in rows if p.status == Payment.Status.SENT]
    if not sent:
        if not rows:
            why = "no bonus of this study is in that bulk bonus"
        elif all(p.status == Payment.Status.PAID for p in rows):
            why = "its bonuses are already recorded as paid"
        else:
            why = "its bonuses were never sent to Prolific, so there is nothing to confirm"
        raise InputProblems([f"Nothing to confirm for bulk bonus {batch_id!r}: {why}."])
    Payment.objects.filter(pk__in=[p.pk for p in sent], status=Payment.Status.SENT).update(
        status=Payment.Status.PAID, paid_at=timezone.now()
    )
    return [_line(p) for p in sent]


def _eligible(
    session: RaterSession, submissions: list[dict[str, Any]], study_id: str
) -> tuple[bool, str]:
    """Whether a rater's bonus may go to their Prolific id: their submission in this study is
    theirs (the session's own SESSION_ID when it has one) and approved."""
    pid = session.external_id
    if not submissions:
        return False, f"{pid}: no submission in Prolific study {study_id}; not paid."
    odd: list[str] = []
    submission = _submission_for(session, submissions, study_id, odd)
    if submission is None:
        return False, " ".join(odd) or f"{pid}: none of their submissions is this session's."
    status = _normal_status(submission.get("status"))
    if status == AWAITING_REVIEW:
        return False, (
            f"{pid}: their submission is AWAITING REVIEW on Prolific; bonuses go to approved "
            "submissions only: run prolific_sync --approve first."
        )
    if status != APPROVED:
        return False, (
            f"{pid}: their submission is {status} on Prolific; bonuses go to approved "
            "submissions only."
        )
    return True, ""


class _Stop(Exception):
    """A run stops here; the message says what was and was not paid."""


def prolific_bonuses_pay(*, study: Study, include_excluded: bool = False) -> BonusReport:
    """Pay each completed Prolific rater's bonus (bonus_due_cents) through bulk bonuses,
    recording every step so that nothing is paid twice: rows prepared, the bulk bonus's id
    stored on them, marked sent (committed) before Prolific is asked to pay, paid once it
    accepts. Bonuses sent whose payment was never confirmed stop the run before anything is
    sent; only raters whose Prolific submission is theirs and approved are paid, and raters
    excluded after completing only with include_excluded. Call it outside any transaction,
    so that each step is committed as it is taken."""
    report = BonusReport(currency=study.currency)
    rows = _bonus_rows(study)
    prepared = _sort_rows(study, report, rows)
    if report.unconfirmed:
        report.stopped = unconfirmed_message(report.unconfirmed, study=study)
        return report
    study_id = _prolific_id_of(study)
    client = prolific_client_for(study=study)
    mismatch = _currency_problem(study, client.study_get(study_id))
    if mismatch:
        raise InputProblems([mismatch + " No bonus was paid."])
    by_participant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for submission in client.submissions_list(study_id):
        by_participant[_participant_of(submission)].append(submission)

    due = _bonuses_due(study, report, include_excluded=include_excluded)
    payable: set[int] = set()
    sessions = RaterSession.objects.in_bulk({*due, *(p.session_id for p in prepared)})
    for session_id in sorted(sessions):
        if session_id in rows and rows[session_id].status != Payment.Status.PREPARED:
            continue
        session = sessions[session_id]
        if session_id not in due:
            if not payment_excluded(session):
                report.held_back.append(
                    f"{session.external_id}: a bonus was prepared but none is due now; not paid."
                )
            continue
        ok, why = _eligible(session, by_participant.get(session.external_id, []), study_id)
        if ok:
            payable.add(session_id)
        else:
            report.held_back.append(why)
    created = []
    try:
        with transaction.atomic():
            for session_id in sorted(payable - set(rows)):
                row = due[session_id]
                created.append(
                    Payment.objects.create(
                        session=sessions[session_id],
                        kind=Payment.Kind.BONUS,
                        amount_cents=row.bonus_cents,
                        currency=study.currency,
                        request_token=f"prolific-bonus-{row.public_id}",
                    )
                )
    except IntegrityError:
        # One bonus per rater: another run recorded some of these since this one looked.
        report.stopped = (
            "Another prolific_bonus run is paying this study's bonuses now; this run paid "
            "nothing. Rerun once it has finished."
        )
        return report
    prepared += created

    batches: dict[str, list[Payment]] = defaultdict(list)
    loose = []
    for payment in prepared:
        if payment.platform_batch_id:
            batches[payment.platform_batch_id].append(payment)
        elif payment.session_id in payable:
            loose.append(payment)
    for batch, members in list(batches.items()):
        # A bulk bonus is paid whole or not at all. One whose raters are not all payable now
        # is left unpaid on Prolific (it never was paid: its rows were never sent), and its
        # payable raters go into a new one.
        if any(p.session_id not in payable for p in members):
            Payment.objects.filter(
                pk__in=[p.pk for p in members], status=Payment.Status.PREPARED
            ).update(platform_batch_id="")
            for payment in members:
                payment.platform_batch_id = ""
            report.abandoned_batches.append(batch)
            loose += [p for p in members if p.session_id in payable]
            del batches[batch]
    try:
        for batch, members in sorted(batches.items()):
            _batch_pay(client, study, batch, members, report)
        loose.sort(key=lambda p: p.session_id)
        for start in range(0, len(loose), BONUSES_PER_BATCH):
            members = loose[start : start + BONUSES_PER_BATCH]
            batch = _batch_create(client, study, study_id, members)
            _batch_pay(client, study, batch, members, report)
    except _Stop as stop:
        report.stopped = str(stop)
    return report


def _csv(members: Iterable[Payment]) -> str:
    return "".join(f"{p.session.external_id},{cents_as_amount(p.amount_cents)}\n" for p in members)


def _batch_create(
    client: ProlificClient, study: Study, study_id: str, members: list[Payment]
) -> str:
    """Set up one bulk bonus for these prepared rows and store its id on them."""
    expected = sum(p.amount_cents for p in members)
    try:
        answer = client.bulk_bonus_create(study_id, _csv(members))
    except ProlificError as error:
        # Setting up a bulk bonus pays nothing; the rows stay prepared for the next run.
        raise _Stop(f"{error} Nothing was paid by this step.") from None
    batch = str(answer.get("id") or "")
    if not batch:
        raise _Stop("Prolific set up the bonuses but its answer had no id. Nothing was paid.")
    amount = answer.get("amount")
    # Prolific answers the amount in cents: another total means it read the lines otherwise
    # (another currency, whole units for cents), so that bulk bonus is never paid.
    if isinstance(amount, int | float) and round(amount) != expected:
        raise _Stop(
            f"Prolific read bulk bonus {batch} as {cents_as_amount(round(amount))} rather than "
            f"{cents_as_amount(expected)} {study.currency}, so it was not paid: check the "
            "study's currency on Prolific."
        )
    with transaction.atomic():
        claimed = Payment.objects.filter(
            pk__in=[p.pk for p in members], status=Payment.Status.PREPARED, platform_batch_id=""
        ).update(platform_batch_id=batch)
        if claimed != len(members):
            # Another run took some of these rows meanwhile (raising rolls this back).
            raise _Stop(
                f"Another prolific_bonus run is paying these raters; bulk bonus {batch} was "
                "left unpaid on Prolific. Nothing was paid by this run's last step."
            )
    for payment in members:
        payment.platform_batch_id = batch
    return batch


def _batch_pay(
    client: ProlificClient, study: Study, batch: str, members: list[Payment], report: BonusReport
) -> None:
    """Mark the bulk bonus's rows sent, ask Prolific once to pay it, and mark them paid."""
    lines = [dataclasses.replace(_line(p), batch=batch) for p in members]
    # Committed before Prolific is asked (the commands hold no transaction): a crash or a
    # lost answer from now on leaves the rows sent, and sent rows are never paid again.
    with transaction.atomic():
        sent = Payment.objects.filter(
            pk__in=[p.pk for p in members],
            platform_batch_id=batch,
            status=Payment.Status.PREPARED,
        ).update(status=Payment.Status.SENT, sent_at=timezone.now())
        if sent != len(members):
            # Raising rolls the marks back: this run sends nothing.
            raise _Stop(
                f"Another prolific_bonus run sent bulk bonus {batch} meanwhile; this run did "
                "not pay it."
            )
    try:
        client.bulk_bonus_pay(batch)
    except ProlificError as error:
        if error.untouched:
            # Refused outright, so nothing was paid: the same bulk bonus is paid next time.
            Payment.objects.filter(platform_batch_id=batch, status=Payment.Status.SENT).update(
                status=Payment.Status.PREPARED, sent_at=None
            )
            raise _Stop(
                f"{error} Nothing was paid; bulk bonus {batch} stays ready and the next run "
                "pays it."
            ) from None
        report.unconfirmed[batch] = lines
        raise _Stop(f"{error} {unconfirmed_message({batch: lines}, study=study)}") from None
    Payment.objects.filter(platform_batch_id=batch, status=Payment.Status.SENT).update(
        status=Payment.Status.PAID, paid_at=timezone.now()
    )
    report.paid.append((batch, lines))
