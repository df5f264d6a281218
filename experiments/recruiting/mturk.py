"""Amazon Mechanical Turk through boto3: a study published as one ExternalQuestion HIT, with a
qualification that keeps anyone from taking part twice, and its assignments reviewed: matched
to our sessions, approved, and paid their bonus, each payment recorded before MTurk is asked."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)
from django.conf import settings
from django.utils import timezone

from experiments.models import Payment, RaterSession, Study
from experiments.recruiting.links import study_link
from experiments.services.payments import (
    base_due_cents,
    bonus_due_cents,
    cents_as_amount,
    payment_excluded,
    session_earned_status,
)
from experiments.services.problems import InputProblems
from experiments.services.raters import sessions_counted
from experiments.services.study_texts import minutes_shown, pay_shown

REGION = "us-east-1"
CURRENCY = "USD"  # the only currency MTurk pays in
CONNECT_TIMEOUT_S = 10
# A request MTurk has not answered by then may still have been done: its payment stays "sent"
# until a rerun finds out.
READ_TIMEOUT_S = 60
LIFETIME_HOURS = 72
# The time a worker has for an assignment: three times the minutes raters are told, and at
# least 30 minutes more, so a slow rater is not cut off before submitting.
DURATION_FACTOR = 3
DURATION_EXTRA_MINUTES = 30
FRAME_HEIGHT = 0  # 0: MTurk sizes the frame to the worker's window
EXTERNAL_QUESTION_XMLNS = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/"
    "ExternalQuestion.xsd"
)
# MTurk forgets a UniqueRequestToken 24 hours after it first sees it. A bonus sent longer ago
# than this (an hour less, for clocks that disagree) is looked up in MTurk's list of bonuses
# before it is sent again, as the token no longer stops a second payment.
TOKEN_MEMORY = timedelta(hours=23)
WORKER_ID = re.compile(r"^A[A-Z0-9]{1,63}$")  # MTurk's worker ids (botocore's CustomerId)
ASSIGNMENT_STATUSES = ["Submitted", "Approved", "Rejected"]
# How AWS refuses a request's credentials or its signature.
CREDENTIAL_ERRORS = {
    "AccessDeniedException",
    "ExpiredTokenException",
    "IncompleteSignature",
    "IncompleteSignatureException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
}
ACTIONS = {
    "create_qualification_type": "create the study's qualification",
    "list_qualification_types": "list your qualifications",
    "create_hit": "create the HIT",
    "get_hit": "describe the HIT",
    "list_hits": "list your HITs",
    "associate_qualification_with_worker": "give a worker the study's qualification",
    "list_assignments_for_hit": "list the HIT's assignments",
    "approve_assignment": "approve an assignment",
    "send_bonus": "send a bonus",
    "list_bonus_payments": "list an assignment's bonuses",
}


class MTurkError(Exception):
    """A request to MTurk that failed, said in words. kind: credentials, connection, service
    (MTurk failed on its side) or request (MTurk refused this one request). outcome_known:
    MTurk did not do it; False when it may have done it (no answer, or a failure on its side)."""

    def __init__(self, message: str, *, kind: str, outcome_known: bool, code: str = ""):
        super().__init__(message)
        self.kind = kind
        self.outcome_known = outcome_known
        self.code = code


class MTurk:
    """A boto3 client of MTurk's requester API (the marketplace or the sandbox) whose every
    failure is an MTurkError."""

    def __init__(self, *, sandbox: bool):
        self.sandbox = sandbox
        self.endpoint = (
            settings.HYPE_MTURK_SANDBOX_ENDPOINT if sandbox else settings.HYPE_MTURK_ENDPOINT
        )
        self.where = "MTurk's sandbox" if sandbox else "MTurk"
        config = Config(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            # One attempt per call: what happened to each request is then known here, and a
            # request is only ever repeated by a rerun, with the same token.
            retries={"total_max_attempts": 1},
        )
        # A session of its own: boto3's default one keeps the credentials it first found.
        self.client = boto3.session.Session().client(
            "mturk", endpoint_url=self.endpoint, region_name=REGION, config=config
        )

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(**params)
        except (NoCredentialsError, PartialCredentialsError):
            raise MTurkError(
                "No AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
                "AWS_PROFILE) in the environment, for the AWS account linked to your MTurk "
                "requester account. Nothing was sent.",
                kind="credentials",
                outcome_known=True,
            ) from None
        except ClientError as error:
            raise self._refusal(operation, error) from None
        except (EndpointConnectionError, ConnectTimeoutError) as error:
            raise MTurkError(
                f"Could not connect to {self.where} at {self.endpoint} ({error}). Nothing was "
                "sent: check the network and the endpoint setting.",
                kind="connection",
                outcome_known=True,
            ) from None
        except ParamValidationError as error:
            raise MTurkError(
                f"The request to {ACTIONS.get(operation, operation)} is not valid: {error}",
                kind="request",
                outcome_known=True,
            ) from None
        except BotoCoreError as error:
            raise MTurkError(
                f"{self.where} did not answer the request to {ACTIONS.get(operation, operation)} "
                f"({error}): it may or may not have been done.",
                kind="connection",
                outcome_known=False,
            ) from None

    def _refusal(self, operation: str, error: ClientError) -> MTurkError:
        details = error.response.get("Error", {})
        code = details.get("Code", "")
        message = details.get("Message", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        turk_code = error.response.get("TurkErrorCode", "")
        action = ACTIONS.get(operation, operation)
        if code in CREDENTIAL_ERRORS or status == 403:
            return MTurkError(
                f"{self.where} refused the AWS credentials ({code}: {message}). Check "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: they must be a key of the AWS "
                "account linked to your MTurk requester account, allowed to use MTurk.",
                kind="credentials",
                outcome_known=True,
                code=code,
            )
        if code == "ServiceFault" or status >= 500:
            return MTurkError(
                f"{self.where} failed on its side when asked to {action} ({code}: {message}); "
                "it may or may not have been done.",
                kind="service",
                outcome_known=False,
                code=code,
            )
        return MTurkError(
            f"{self.where} refused to {action}: {message}",
            kind="request",
            outcome_known=True,
            code=turk_code or code,
        )

    def pages(self, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item under `key` of every page of a listing."""
        token = None
        while True:
            page = self.call(operation, **params, **({"NextToken": token} if token else {}))
            yield from page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return


def mturk_client(*, sandbox: bool) -> MTurk:
    """A client of the sandbox's or the marketplace's requester API, with the AWS credentials
    of the environment (region us-east-1, where MTurk's API is)."""
    return MTurk(sandbox=sandbox)


# Publishing.


@dataclass(frozen=True)
class PublishedHIT:
    hit_id: str
    hit_group_id: str
    qualification_id: str
    sandbox: bool
    url: str
    request: dict[str, Any]  # what CreateHIT was sent
    found_existing: bool  # an earlier run made the HIT and its answer was lost


def qualification_name(study: Study) -> str:
    return f"HYPE {study.public_id}: took part"


def hit_annotation(study: Study) -> str:
    """The HIT's RequesterAnnotation (only its requester sees it): the study it is for."""
    return f"hype:{study.public_id}"


def assignment_minutes(study: Study) -> int:
    minutes = minutes_shown(study)
    return max(DURATION_FACTOR * minutes, minutes + DURATION_EXTRA_MINUTES)


def external_question(url: str) -> str:
    return (
        f'<ExternalQuestion xmlns="{EXTERNAL_QUESTION_XMLNS}">'
        f"<ExternalURL>{escape(url)}</ExternalURL>"
        f"<FrameHeight>{FRAME_HEIGHT}</FrameHeight>"
        "</ExternalQuestion>"
    )


def mturk_publish_problems(*, study: Study, base_url: str, sandbox: bool, hours: int) -> list[str]:
    """Why the study cannot be published on MTurk as asked; [] when it can."""
    problems = []
    if study.mturk_hit_id:
        where = "MTurk's sandbox" if study.mturk_sandbox else "MTurk"
        problems.append(
            f'Study "{study.name}" already has a HIT on {where}: {study.mturk_hit_id}. '
            "HYPE publishes one HIT per study; review it with mturk_review."
        )
    if study.currency != CURRENCY:
        problems.append(
            f"MTurk pays in US dollars only, and this study's pay is in {study.currency}: set "
            "its currency to USD, and its pay in US cents, to publish it on MTurk."
        )
    if study.pay_base_cents <= 0:
        problems.append(
            "The study's base pay is 0: MTurk's reward for the HIT is the base pay, so set it "
            "(in cents) first."
        )
    if study.status != Study.Status.LIVE:
        problems.append(
            f'Study "{study.name}" is {study.get_status_display().lower()}: open it first, or '
            "the workers who accept the HIT find it closed."
        )
    if not study.models.exists():
        problems.append("The study has no generative models, so it needs no raters.")
    if not 1 <= hours <= 365 * 24:
        problems.append(f"--hours must be from 1 to {365 * 24} (a year); it is {hours}.")
    if not base_url:
        problems.append(
            "No public address of this server: give --url https://your.server or set "
            "HYPE_PUBLIC_URL. Workers open the study there."
        )
    else:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(f"{base_url!r} is not a web address like https://your.server.")
        elif parts.scheme != "https" and not sandbox:
            problems.append(
                f"{base_url} is not https: MTurk shows the study inside its own https page, "
                "so the study link must use https."
            )
    return problems


def mturk_hit_request(*, study: Study, url: str, qualification_id: str, hours: int) -> dict:
    """What CreateHIT is sent for the study: its link as an ExternalQuestion, the base pay as
    the reward, one assignment per rater wanted, and no worker who took part already."""
    minutes = minutes_shown(study)
    return {
        # The study's own name may name its models; workers see a neutral title.
        "Title": "Real or computer-made? Judge images for a research study",
        "Description": (
            "Look at images and say whether each is a real photograph or made by a computer. "
            f"About {minutes} minutes. Pays {pay_shown(study)}."
            + (" The bonus is sent after approval." if study.pay_per_correct_cents else "")
        ),
        "Keywords": "images, photos, research, perception, real or fake",
        "Question": external_question(url),
        "Reward": cents_as_amount(study.pay_base_cents),
        "MaxAssignments": study.models.count() * study.raters_per_model,
        "AssignmentDurationInSeconds": assignment_minutes(study) * 60,
        "LifetimeInSeconds": hours * 3600,
        "QualificationRequirements": [
            {
                "QualificationTypeId": qualification_id,
                "Comparator": "DoesNotExist",
                "ActionsGuarded": "DiscoverPreviewAndAccept",
            }
        ],
        "RequesterAnnotation": hit_annotation(study),
        # A rerun after a lost answer sends the same token: MTurk makes no second HIT.
        "UniqueRequestToken": f"hype-{study.public_id}-hit",
    }


def mturk_hit_publish(
    *,
    study: Study,
    sandbox: bool = False,
    base_url: str | None = None,
    hours: int = LIFETIME_HOURS,
    client: MTurk | None = None,
) -> PublishedHIT:
    """Publish the study on MTurk (or its sandbox): its qualification, then its HIT, each id
    stored on the study as soon as MTurk gives it. InputProblems when the study cannot be
    published (nothing is sent); MTurkError when MTurk fails."""
    base_url = (base_url or settings.HYPE_PUBLIC_URL or "").rstrip("/")
    problems = mturk_publish_problems(study=study, base_url=base_url, sandbox=sandbox, hours=hours)
    if problems:
        raise InputProblems(problems)
    client = client or mturk_client(sandbox=sandbox)
    qualification_id = mturk_qualification_ensure(study=study, client=client)
    url = study_link(study=study, base_url=base_url)
    request = mturk_hit_request(
        study=study, url=url, qualification_id=qualification_id, hours=hours
    )
    found_existing = False
    try:
        hit = client.call("create_hit", **request)["HIT"]
    except MTurkError as error:
        hit = None
        if error.kind == "request" and "HitAlreadyExists" in f"{error.code} {error}":
            hit = _hit_annotated(client, hit_annotation(study))
            found_existing = hit is not None
        if hit is None:
            if not error.outcome_known:
                raise MTurkError(
                    f"{error} Run mturk_publish again within 24 hours: it sends the same "
                    "request token, so MTurk makes no second HIT, and HYPE finds the one it "
                    "made, if it did.",
                    kind=error.kind,
                    outcome_known=False,
                ) from None
            raise
    study.mturk_hit_id = hit["HITId"]
    study.save(update_fields=["mturk_hit_id", "updated_at"])
    return PublishedHIT(
        hit_id=hit["HITId"],
        hit_group_id=hit.get("HITGroupId", ""),
        qualification_id=qualification_id,
        sandbox=sandbox,
        url=url,
        request=request,
        found_existing=found_existing,
    )


def mturk_qualification_ensure(*, study: Study, client: MTurk) -> str:
    """The id of the study's "took part" qualification where the client publishes: the stored
    one, or a new one, stored on the study at once. Never granted automatically: HYPE grants
    it to every worker who starts (mturk_workers_qualify)."""
    if study.mturk_qualification_id and study.mturk_sandbox == client.sandbox:
        return study.mturk_qualification_id
    name = qualification_name(study)
    try:
        created = client.call(
            "create_qualification_type",
            Name=name,
            Description=(
                f"Took part in HYPE study {study.public_id}. Workers who have it do not see "
                "the study's HITs, so that nobody takes part twice."
            ),
            Keywords="HYPE",
            QualificationTypeStatus="Active",
            AutoGranted=False,
        )
        qualification_id = created["QualificationType"]["QualificationTypeId"]
    except MTurkError as error:
        # MTurk refuses a name it has: an earlier run made the type, and its answer was lost.
        found = _qualification_named(client, name) if error.kind == "request" else None
        if found is None:
            raise
        qualification_id = found
    study.mturk_qualification_id = qualification_id
    study.mturk_sandbox = client.sandbox
    study.save(update_fields=["mturk_qualification_id", "mturk_sandbox", "updated_at"])
    return qualification_id


def _qualification_named(client: MTurk, name: str) -> str | None:
    for qualification in client.pages(
        "list_qualification_types",
        "QualificationTypes",
        Query=name,
        MustBeRequestable=False,
        MustBeOwnedByCaller=True,
        MaxResults=100,
    ):
        if qualification.get("Name") == name:
            return qualification["QualificationTypeId"]
    return None


def _hit_annotated(client: MTurk, annotation: str) -> dict[str, Any] | None:
    """The newest of the requester's HITs made for this annotation, if any."""
    hits = [
        hit
        for hit in client.pages("list_hits", "HITs", MaxResults=100)
        if hit.get("RequesterAnnotation") == annotation
    ]
    return max(hits, key=lambda hit: str(hit.get("CreationTime", "")), default=None)


# Reviewing.


@dataclass
class AssignmentMatch:
    """One of the HIT's assignments and our session for it: `session` is None when there is
    none, or when the two disagree (`problem` says how)."""

    assignment_id: str
    worker_id: str
    status: str  # MTurk's: Submitted, Approved or Rejected
    approval_time: Any = None
    session: RaterSession | None = None
    problem: str = ""


@dataclass
class ReviewReport:
    """What mturk_assignments_review found and did. `notes` need a look but leave no money in
    doubt; `problems` are payments refused; `unknown` are payments whose outcome is not known
    (they stay "sent"; a rerun resolves them); `stopped` says why the review stopped early."""

    hit_id: str
    sandbox: bool
    hit_status: str = ""
    reward: str = ""
    workers_qualified: int = 0
    statuses: Counter = field(default_factory=Counter)
    matched: int = 0
    completed: int = 0  # of the matched assignments, those whose session completed here
    done: Counter = field(default_factory=Counter)
    bonus_cents: int = 0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    # Raters excluded after completing whose approval or bonus was left for the researcher
    # (unless include_excluded): "worker (what was left: the reason)".
    excluded: list[str] = field(default_factory=list)
    stopped: str = ""

    @property
    def settled(self) -> bool:
        """Nothing refused, nothing in doubt, nothing left undone by an early stop."""
        return not (self.problems or self.unknown or self.stopped)


class _Stop(Exception):
    """MTurk cannot be asked any further in this run (credentials, network, its own fault)."""


def mturk_review_problems(*, study: Study, approve: bool, bonus: bool) -> list[str]:
    problems = []
    if not study.mturk_hit_id:
        problems.append(f'Study "{study.name}" has no MTurk HIT: publish it with mturk_publish.')
    if (approve or bonus) and study.currency != CURRENCY:
        problems.append(
            f"MTurk pays in US dollars only, and this study's pay is in {study.currency}: "
            "nothing can be paid on MTurk at these amounts."
        )
    return problems


def mturk_assignments_review(
    *,
    study: Study,
    approve: bool = False,
    bonus: bool = False,
    include_excluded: bool = False,
    client: MTurk | None = None,
) -> ReviewReport:
    """Review the study's HIT: give every worker who started here the study's qualification,
    list the HIT's assignments and match each to its session (assignment and worker must both
    agree), then, if asked, approve the submitted assignments of completed sessions and send
    the bonuses of approved ones. A rater excluded after completing earned both but is left for
    the researcher (report.excluded) unless include_excluded. Every payment is recorded before
    MTurk is asked and moved on by its answer, so a rerun pays nothing twice. InputProblems:
    nothing was done."""
    problems = mturk_review_problems(study=study, approve=approve, bonus=bonus)
    if problems:
        raise InputProblems(problems)
    client = client or mturk_client(sandbox=study.mturk_sandbox)
    report = ReviewReport(hit_id=study.mturk_hit_id, sandbox=study.mturk_sandbox)
    hit = client.call("get_hit", HITId=study.mturk_hit_id)["HIT"]
    report.hit_status = hit.get("HITStatus", "")
    report.reward = hit.get("Reward", "")
    if approve and _amount_cents(report.reward) != base_due_cents(
        study, status=RaterSession.Status.COMPLETED
    ):
        raise InputProblems(
            [
                f"The HIT pays {report.reward} USD, but the study's base pay is now "
                f"{cents_as_amount(study.pay_base_cents)} USD: set the base pay back to the "
                "HIT's reward (which cannot change) before approving, so the payments "
                "recorded are what MTurk pays."
            ]
        )
    report.workers_qualified = mturk_workers_qualify(study=study, client=client, report=report)
    matches = mturk_assignments_match(
        study=study,
        assignments=list(
            client.pages(
                "list_assignments_for_hit",
                "Assignments",
                HITId=study.mturk_hit_id,
                AssignmentStatuses=ASSIGNMENT_STATUSES,
                MaxResults=100,
            )
        ),
    )
    for match in matches:
        report.statuses[match.status] += 1
        if match.session is not None:
            report.matched += 1
            report.completed += match.session.status == RaterSession.Status.COMPLETED
        elif match.problem:
            report.notes.append(match.problem)
    try:
        for match in matches:
            if match.session is None:
                continue
            if approve:
                _base_review(client, study, match, report, include_excluded=include_excluded)
            if bonus:
                _bonus_review(client, study, match, report, include_excluded=include_excluded)
    except _Stop as stop:
        report.stopped = str(stop)
    return report


def mturk_workers_qualify(*, study: Study, client: MTurk, report: ReviewReport) -> int:
    """Give the study's qualification to every worker who started a session here, without
    telling them; giving it again changes nothing. Returns how many have it now."""
    if not study.mturk_qualification_id:
        report.notes.append("The study has no MTurk qualification id: nobody was given it.")
        return 0
    workers = (
        RaterSession.objects.filter(study=study, source=RaterSession.Source.MTURK)
        .order_by("external_id")
        .values_list("external_id", flat=True)
        .distinct()
    )
    given = 0
    for worker_id in workers:
        if not WORKER_ID.match(worker_id):
            report.notes.append(
                f"{worker_id!r} is not an MTurk worker id: not given the qualification."
            )
            continue
        try:
            client.call(
                "associate_qualification_with_worker",
                QualificationTypeId=study.mturk_qualification_id,
                WorkerId=worker_id,
                IntegerValue=1,
                SendNotification=False,
            )
        except MTurkError as error:
            if error.kind != "request":
                raise
            report.notes.append(f"Worker {worker_id}: {error}")
            continue
        given += 1
    return given


def mturk_assignments_match(
    *, study: Study, assignments: list[dict[str, Any]]
) -> list[AssignmentMatch]:
    """Each assignment with its session here: the MTurk session whose assignment id and worker
    id are both the assignment's (and whose HIT, when it recorded one, is the study's)."""
    sessions = list(sessions_counted(study).filter(source=RaterSession.Source.MTURK))
    by_assignment: dict[str, list[RaterSession]] = {}
    by_worker = {session.external_id: session for session in sessions}
    for session in sessions:
        if session.platform_session_id:
            by_assignment.setdefault(session.platform_session_id, []).append(session)
    matches = []
    for assignment in assignments:
        match = AssignmentMatch(
            assignment_id=assignment.get("AssignmentId", ""),
            worker_id=assignment.get("WorkerId", ""),
            status=assignment.get("AssignmentStatus", ""),
            approval_time=assignment.get("ApprovalTime"),
        )
        claimed = by_assignment.get(match.assignment_id, [])
        worker_session = by_worker.get(match.worker_id)
        said = f"Assignment {match.assignment_id} of worker {match.worker_id} ({match.status})"
        if len(claimed) > 1:
            match.problem = f"{said}: {len(claimed)} sessions here claim it; nothing done."
        elif claimed and claimed[0].external_id != match.worker_id:
            match.problem = (
                f"{said}: the session here for this assignment is worker "
                f"{claimed[0].external_id}'s; nothing done."
            )
        elif not claimed and worker_session is not None:
            other = worker_session.platform_session_id or "no assignment"
            match.problem = f"{said}: this worker's session here is for {other}; nothing done."
        elif not claimed:
            match.problem = f"{said}: no session here; nothing done."
        elif claimed[0].platform_study_id and claimed[0].platform_study_id != study.mturk_hit_id:
            match.problem = (
                f"{said}: the session here came from HIT {claimed[0].platform_study_id}, not "
                f"{study.mturk_hit_id}; nothing done."
            )
        else:
            match.session = claimed[0]
        matches.append(match)
    return matches


def _base_review(
    client: MTurk,
    study: Study,
    match: AssignmentMatch,
    report: ReviewReport,
    *,
    include_excluded: bool = False,
):
    """Approve a submitted assignment of a completed session once; record one that MTurk
    approved already (by an earlier run, on its site, or automatically) as paid. A rater
    excluded after completing is approved only with include_excluded (MTurk's own approval
    of one is recorded: that money has gone)."""
    session = match.session
    completed = session.status == RaterSession.Status.COMPLETED
    if match.status == "Rejected":
        return
    if payment_excluded(session):
        if include_excluded or match.status == "Approved":
            completed = True
        else:
            report.excluded.append(
                f"{match.worker_id} (approval of {match.assignment_id}: excluded: "
                f"{session.excluded_reason})"
            )
            return
    if not completed:
        # MTurk pays an approved one its reward, whoever approved it; HYPE records no pay due.
        approved = match.status == "Approved"
        report.done["approved, not completed here" if approved else "not completed here"] += 1
        return
    payment = _payment(
        session, Payment.Kind.BASE, base_due_cents(study, status=session_earned_status(session))
    )
    if match.status == "Approved":
        if payment.status == Payment.Status.PAID:
            report.done["already approved"] += 1
        else:
            _paid(payment)
            report.done["approval recorded"] += 1
        if session.approved_at is None:
            session.approved_at = match.approval_time or timezone.now()
            session.save(update_fields=["approved_at"])
        return
    if payment.status == Payment.Status.PAID:
        report.notes.append(
            f"Assignment {match.assignment_id}: recorded as approved, but MTurk lists it as "
            "submitted; not approved again."
        )
        return
    first = payment.status == Payment.Status.PREPARED
    if not _sent(payment, report=report):
        return
    try:
        client.call("approve_assignment", AssignmentId=match.assignment_id)
    except MTurkError as error:
        _failed(payment, error, first=first, what=f"Approving {match.assignment_id}", report=report)
        return
    _paid(payment)
    session.approved_at = timezone.now()
    session.save(update_fields=["approved_at"])
    match.status = "Approved"
    report.done["approved"] += 1


def _bonus_review(
    client: MTurk,
    study: Study,
    match: AssignmentMatch,
    report: ReviewReport,
    *,
    include_excluded: bool = False,
):
    """Send an approved, completed rater's bonus once, under the payment's own token (a rater
    excluded after completing only with include_excluded)."""
    session = match.session
    due = bonus_due_cents(
        study, status=session_earned_status(session), task_correct=session.task_correct
    )
    if due <= 0:
        return
    if payment_excluded(session) and not include_excluded:
        report.excluded.append(
            f"{match.worker_id} (bonus of {cents_as_amount(due)} USD: excluded: "
            f"{session.excluded_reason})"
        )
        return
    if match.status != "Approved":
        report.done["bonus waits for approval"] += 1
        return
    payment = _payment(session, Payment.Kind.BONUS, due)
    if payment.status == Payment.Status.PAID:
        report.done["bonus already paid"] += 1
        return
    if payment.status == Payment.Status.PREPARED and payment.amount_cents != due:
        payment.amount_cents = due
        payment.save(update_fields=["amount_cents"])
    fresh = False
    if payment.status == Payment.Status.SENT and (
        payment.sent_at is None or timezone.now() - payment.sent_at >= TOKEN_MEMORY
    ):
        # MTurk has forgotten the token: only its list of bonuses says whether it paid.
        if _bonus_listed(client, match, payment, report):
            _paid(payment)
            report.done["bonus found paid"] += 1
            report.bonus_cents += payment.amount_cents
            return
        fresh = True  # what follows is a new request, with 24 hours of its own
    first = payment.status == Payment.Status.PREPARED
    if not _sent(payment, report=report, fresh=fresh):
        return
    what = f"The bonus of worker {match.worker_id} ({cents_as_amount(payment.amount_cents)} USD)"
    try:
        client.call(
            "send_bonus",
            WorkerId=match.worker_id,
            BonusAmount=cents_as_amount(payment.amount_cents),
            AssignmentId=match.assignment_id,
            Reason=_bonus_reason(study, session),
            UniqueRequestToken=payment.request_token,
        )
    except MTurkError as error:
        # MTurk refuses a token it has seen: if an earlier request paid, its list shows it.
        if error.kind == "request" and _bonus_listed(client, match, payment, report):
            _paid(payment)
            report.done["bonus found paid"] += 1
            report.bonus_cents += payment.amount_cents
            return
        _failed(payment, error, first=first, what=what, report=report)
        return
    _paid(payment)
    report.done["bonus paid"] += 1
    report.bonus_cents += payment.amount_cents


def _bonus_reason(study: Study, session: RaterSession) -> str:
    per = cents_as_amount(study.pay_per_correct_cents)
    return (
        f"Your bonus for the image study you completed: {per} USD for each correct answer, "
        f"and you gave {session.task_correct}. Thank you for taking part."
    )


def _bonus_listed(
    client: MTurk, match: AssignmentMatch, payment: Payment, report: ReviewReport
) -> bool:
    """Whether MTurk lists a bonus of this amount to this worker on this assignment."""
    try:
        bonuses = list(
            client.pages(
                "list_bonus_payments",
                "BonusPayments",
                AssignmentId=match.assignment_id,
                MaxResults=100,
            )
        )
    except MTurkError as error:
        if error.kind != "request":
            raise _Stop(str(error)) from None
        report.notes.append(f"Assignment {match.assignment_id}: {error}")
        return False
    return any(
        bonus.get("WorkerId") == match.worker_id
        and _amount_cents(bonus.get("BonusAmount", "")) == payment.amount_cents
        for bonus in bonuses
    )


def _payment(session: RaterSession, kind: str, cents: int) -> Payment:
    """The session's payment of this kind, prepared (with its deterministic token) if new."""
    payment, _ = Payment.objects.get_or_create(
        session=session,
        kind=kind,
        defaults={
            "amount_cents": cents,
            "currency": session.study.currency,
            "request_token": f"hype-{session.public_id}-{kind}",
        },
    )
    return payment


def _sent(payment: Payment, *, report: ReviewReport, fresh: bool = False) -> bool:
    """Record the payment as sent, before MTurk is asked: whatever happens next, it may have
    been made. Only from the status read here: False (and nothing sent) when a review running
    at the same time moved it on. sent_at is the first request's, unless `fresh`."""
    sent_at = timezone.now() if fresh or payment.sent_at is None else payment.sent_at
    moved = (
        Payment.objects.filter(pk=payment.pk, status=payment.status)
        .exclude(status=Payment.Status.PAID)
        .update(status=Payment.Status.SENT, sent_at=sent_at)
    )
    if not moved:
        report.notes.append(
            f"The {payment.kind} payment {payment.request_token} changed while this review "
            "ran (another review at the same time?); not sent. Rerun to see it."
        )
        return False
    payment.status, payment.sent_at = Payment.Status.SENT, sent_at
    return True


def _paid(payment: Payment) -> None:
    payment.status = Payment.Status.PAID
    payment.paid_at = timezone.now()
    payment.save(update_fields=["status", "paid_at"])


def _failed(payment: Payment, error: MTurkError, *, first: bool, what: str, report: ReviewReport):
    """After a payment's request failed: back to prepared only when MTurk did not do it and no
    earlier request with its token might have; otherwise it stays sent, for a rerun."""
    if error.outcome_known and first:
        Payment.objects.filter(
            pk=payment.pk, status=Payment.Status.SENT, sent_at=payment.sent_at
        ).update(status=Payment.Status.PREPARED, sent_at=None)
        report.problems.append(f"{what}: not paid. {error}")
    elif error.outcome_known:
        report.unknown.append(
            f"{what}: an earlier request may have paid it, and this one failed. {error} "
            "It stays sent; rerun to find out."
        )
    else:
        report.unknown.append(
            f"{what}: {error} It stays sent; rerun: the same token keeps MTurk from paying twice."
        )
    if error.kind != "request":
        raise _Stop(str(error))


def _amount_cents(amount: str) -> int | None:
    """MTurk's amount of dollars ("1.5", "1.50") in cents; None if it is not one."""
    try:
        return int((Decimal(amount) * 100).to_integral_exact())
    except (InvalidOperation, ValueError, TypeError):
        return None
