"""A stand-in for MTurk's requester API: a local HTTP server that speaks the JSON 1.1 protocol
boto3 sends, keeps HITs, qualifications, assignments, approvals and bonuses as MTurk would,
and records every request. It never contacts anything; tests point HYPE's endpoints at it."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TARGET_PREFIX = "MTurkRequesterServiceV20170117."
CONTENT_TYPE = "application/x-amz-json-1.1"
ACCESS_KEY_ID = "AKIDHYPETESTS"
EXTERNAL_QUESTION = "AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"
# MTurk's id formats (botocore's model of the API: EntityId and CustomerId).
ENTITY_ID = re.compile(r"^[A-Z0-9]{1,64}$")
WORKER_ID = re.compile(r"^A[A-Z0-9]{1,63}$")
AMOUNT = re.compile(r"^[0-9]+(\.)?[0-9]{0,2}$")


class Refused(Exception):
    """An answer in MTurk's error form: {"__type": ..., "Message": ...} with an HTTP status."""

    def __init__(self, message: str, *, type_: str = "RequestError", status: int = 400, code=""):
        super().__init__(message)
        if type_ == "RequestError":
            # MTurk ends its messages with a time in milliseconds.
            message = f"{message} ({int(time.time() * 1000)})"
        self.body = {"__type": type_, "Message": message}
        if code:
            self.body["TurkErrorCode"] = code
        self.status = status


def _new_id(prefix: str = "3") -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(29))


class FakeMTurk:
    """MTurk's state and operations. Tests seed assignments with `assignment_accept` (a worker
    accepting and submitting the HIT, refused as MTurk refuses it), make an operation answer
    late with `answer_late`, or fail with `fail_next`, and read `requests`, `bonuses`,
    `approvals` and `worker_qualifications` afterwards."""

    def __init__(self, *, page_size: int = 100):
        self.page_size = page_size
        self.access_key_ids = {ACCESS_KEY_ID}
        self.requests: list[dict[str, Any]] = []
        self.qualification_types: dict[str, dict[str, Any]] = {}
        self.worker_qualifications: dict[tuple[str, str], int] = {}
        self.hits: dict[str, dict[str, Any]] = {}
        self.hit_tokens: dict[str, str] = {}
        self.assignments: dict[str, dict[str, Any]] = {}
        self.approvals: list[str] = []
        self.bonuses: list[dict[str, Any]] = []
        self.bonus_tokens: dict[str, str] = {}
        self._late: dict[str, list[float]] = {}
        self._failures: dict[str, list[Refused]] = {}
        self._lock = threading.Lock()
        self._clock = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # What a test arranges and reads.

    @property
    def url(self) -> str:
        assert self._server is not None, "the stand-in is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def answer_late(self, operation: str, seconds: float, *, times: int = 1) -> None:
        """Do the next `times` requests of `operation`, then wait `seconds` before answering:
        a client that gives up sooner does not learn that they were done."""
        self._late.setdefault(operation, []).extend([seconds] * times)

    def fail_next(self, operation: str, message: str, *, type_: str = "RequestError", status=400):
        """Refuse the next request of `operation` without doing it."""
        self._failures.setdefault(operation, []).append(
            Refused(message, type_=type_, status=status)
        )

    def assignment_accept(
        self, hit_id: str, worker_id: str, *, status: str = "Submitted"
    ) -> dict[str, Any]:
        """A worker accepts the HIT and submits it: refused, as MTurk does, when the worker
        does not meet its qualification requirements, already has an assignment of it, or
        the HIT has no assignment left."""
        with self._lock:
            hit = self.hits[hit_id]
            for requirement in hit.get("QualificationRequirements", []):
                held = (requirement["QualificationTypeId"], worker_id) in self.worker_qualifications
                if requirement["Comparator"] == "DoesNotExist" and held:
                    raise Refused(f"Worker {worker_id} does not meet the requirements")
                if requirement["Comparator"] == "Exists" and not held:
                    raise Refused(f"Worker {worker_id} does not meet the requirements")
            mine = [a for a in self.assignments.values() if a["HITId"] == hit_id]
            if any(a["WorkerId"] == worker_id for a in mine):
                raise Refused(f"Worker {worker_id} already has an assignment of this HIT")
            if len(mine) >= hit["MaxAssignments"]:
                raise Refused("The HIT has no assignments left")
            assignment = {
                "AssignmentId": _new_id(),
                "WorkerId": worker_id,
                "HITId": hit_id,
                "AssignmentStatus": status,
                "AcceptTime": time.time(),
                "SubmitTime": time.time(),
            }
            if status == "Approved":
                assignment["ApprovalTime"] = time.time()
            self.assignments[assignment["AssignmentId"]] = assignment
            return dict(assignment)

    def operations(self) -> list[str]:
        return [request["operation"] for request in self.requests]

    def requests_of(self, operation: str) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["operation"] == operation]

    # The server.

    def start(self) -> FakeMTurk:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (the name http.server calls)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, body, late = fake.handle(dict(self.headers.items()), raw)
                if late:
                    time.sleep(late)
                data = json.dumps(body).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", CONTENT_TYPE)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                    self.end_headers()
                    self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict, float]:
        """(status, JSON body, seconds to wait before answering) for one request."""
        headers = {name.lower(): value for name, value in headers.items()}
        target = headers.get("x-amz-target", "")
        operation = target.removeprefix(TARGET_PREFIX)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        with self._lock:
            self.requests.append({"operation": operation, "body": body, "headers": headers})
        try:
            self._authorise(headers)
            if not target.startswith(TARGET_PREFIX) or not hasattr(self, f"_op_{operation}"):
                raise Refused(f"Unknown operation {target!r}", type_="UnknownOperationException")
            if headers.get("content-type", "").split(";")[0] != CONTENT_TYPE:
                raise Refused("Unsupported content type", type_="SerializationException")
            if not isinstance(body, dict):
                raise Refused("The body is not a JSON object", type_="SerializationException")
            with self._lock:
                failures = self._failures.get(operation)
                if failures:
                    raise failures.pop(0)
                answer = getattr(self, f"_op_{operation}")(body)
                late = self._late.get(operation)
                return 200, answer, late.pop(0) if late else 0.0
        except Refused as refused:
            return refused.status, refused.body, 0.0

    def _authorise(self, headers: dict[str, str]) -> None:
        # The signature itself is not checked; who signed, and that someone did, is.
        authorization = headers.get("authorization", "")
        if not authorization:
            raise Refused(
                "Missing Authentication Token",
                type_="MissingAuthenticationTokenException",
                status=403,
            )
        found = re.search(r"Credential=([^/,\s]+)/", authorization)
        if not authorization.startswith("AWS4-HMAC-SHA256 ") or not found:
            raise Refused("Authorization header requires a Credential", type_="IncompleteSignature")
        if found.group(1) not in self.access_key_ids:
            raise Refused(
                "The security token included in the request is invalid.",
                type_="UnrecognizedClientException",
            )

    # MTurk's operations, each on the request's JSON; called under the lock.

    def _op_CreateQualificationType(self, body):  # noqa: N802 (MTurk's operation names)
        _required(body, "Name", "Description", "QualificationTypeStatus")
        if any(q["Name"] == body["Name"] for q in self.qualification_types.values()):
            raise Refused(
                "You have already created a QualificationType with this name. A "
                "QualificationType's name must be unique among all of the QualificationTypes "
                "created by the same user."
            )
        qualification = {
            "QualificationTypeId": _new_id(),
            "CreationTime": time.time(),
            "Name": body["Name"],
            "Description": body["Description"],
            "Keywords": body.get("Keywords", ""),
            "QualificationTypeStatus": body["QualificationTypeStatus"],
            "IsRequestable": False,
            "AutoGranted": bool(body.get("AutoGranted", False)),
        }
        self.qualification_types[qualification["QualificationTypeId"]] = qualification
        return {"QualificationType": dict(qualification)}

    def _op_ListQualificationTypes(self, body):  # noqa: N802
        _required(body, "MustBeRequestable")
        query = body.get("Query", "").lower()
        found = [q for q in self.qualification_types.values() if query in q["Name"].lower()]
        return self._page(body, found, "QualificationTypes")

    def _op_CreateHIT(self, body):  # noqa: N802
        _required(
            body,
            "LifetimeInSeconds",
            "AssignmentDurationInSeconds",
            "Reward",
            "Title",
            "Description",
        )
        token = body.get("UniqueRequestToken")
        if token and token in self.hit_tokens:
            hit_id = self.hit_tokens[token]
            raise Refused(
                f"There is already a HIT which exists with the same Unique Request Token. "
                f"HITId: {hit_id}",
                code="AWS.MechanicalTurk.HitAlreadyExists",
            )
        _amount(body["Reward"], "Reward")
        if EXTERNAL_QUESTION not in body.get("Question", ""):
            raise Refused("Question must be an ExternalQuestion in this stand-in")
        if not 30 <= body["AssignmentDurationInSeconds"] <= 31536000:
            raise Refused("AssignmentDurationInSeconds is out of range")
        if not 30 <= body["LifetimeInSeconds"] <= 31536000:
            raise Refused("LifetimeInSeconds is out of range")
        for requirement in body.get("QualificationRequirements", []):
            if requirement.get("QualificationTypeId") not in self.qualification_types:
                raise Refused(
                    f"QualificationType {requirement.get('QualificationTypeId')} does not exist"
                )
        hit = {
            key: body[key]
            for key in (
                "Title",
                "Description",
                "Keywords",
                "Question",
                "Reward",
                "MaxAssignments",
                "AssignmentDurationInSeconds",
                "RequesterAnnotation",
                "QualificationRequirements",
            )
            if key in body
        }
        hit.setdefault("MaxAssignments", 1)
        now = time.time()
        hit.update(
            HITId=_new_id(),
            HITTypeId=_new_id(),
            HITGroupId=_new_id(),
            CreationTime=now + next(self._clock) / 1000,
            Expiration=now + body["LifetimeInSeconds"],
            HITStatus="Assignable",
        )
        self.hits[hit["HITId"]] = hit
        if token:
            self.hit_tokens[token] = hit["HITId"]
        return {"HIT": dict(hit)}

    def _op_GetHIT(self, body):  # noqa: N802
        _required(body, "HITId")
        if body["HITId"] not in self.hits:
            raise Refused(f"Hit {body['HITId']} does not exist.")
        return {"HIT": dict(self.hits[body["HITId"]])}

    def _op_ListHITs(self, body):  # noqa: N802
        return self._page(body, list(self.hits.values()), "HITs")

    def _op_AssociateQualificationWithWorker(self, body):  # noqa: N802
        _required(body, "QualificationTypeId", "WorkerId")
        if body["QualificationTypeId"] not in self.qualification_types:
            raise Refused(f"QualificationType {body['QualificationTypeId']} does not exist")
        if not WORKER_ID.match(body["WorkerId"]):
            raise Refused(f"{body['WorkerId']} is not a valid worker id")
        # Assigning it again only sets its value.
        key = (body["QualificationTypeId"], body["WorkerId"])
        self.worker_qualifications[key] = body.get("IntegerValue", 1)
        return {}

    def _op_ListAssignmentsForHIT(self, body):  # noqa: N802
        _required(body, "HITId")
        if body["HITId"] not in self.hits:
            raise Refused(f"Hit {body['HITId']} does not exist.")
        statuses = body.get("AssignmentStatuses") or ["Submitted", "Approved", "Rejected"]
        found = [
            a
            for a in self.assignments.values()
            if a["HITId"] == body["HITId"] and a["AssignmentStatus"] in statuses
        ]
        return self._page(body, found, "Assignments")

    def _op_ApproveAssignment(self, body):  # noqa: N802
        _required(body, "AssignmentId")
        assignment = self.assignments.get(body["AssignmentId"])
        if assignment is None:
            raise Refused(f"Assignment {body['AssignmentId']} does not exist.")
        if assignment["AssignmentStatus"] != "Submitted":
            raise Refused("This operation can be called with a status of: Submitted")
        assignment.update(AssignmentStatus="Approved", ApprovalTime=time.time())
        self.approvals.append(body["AssignmentId"])
        return {}

    def _op_SendBonus(self, body):  # noqa: N802
        _required(body, "WorkerId", "BonusAmount", "AssignmentId", "Reason")
        token = body.get("UniqueRequestToken")
        if token and token in self.bonus_tokens:
            raise Refused(
                f"The request with UniqueRequestToken {token} was already processed: "
                f"request {self.bonus_tokens[token]}."
            )
        amount = _amount(body["BonusAmount"], "BonusAmount")
        assignment = self.assignments.get(body["AssignmentId"])
        if assignment is None or assignment["WorkerId"] != body["WorkerId"]:
            raise Refused(
                f"Assignment {body['AssignmentId']} does not belong to worker {body['WorkerId']}"
            )
        if amount <= 0:
            raise Refused("BonusAmount must be more than zero")
        bonus = {
            "WorkerId": body["WorkerId"],
            "BonusAmount": body["BonusAmount"],
            "AssignmentId": body["AssignmentId"],
            "Reason": body["Reason"],
            "GrantTime": time.time(),
        }
        self.bonuses.append({**bonus, "UniqueRequestToken": token})
        if token:
            self.bonus_tokens[token] = str(uuid.uuid4())
        return {}

    def _op_ListBonusPayments(self, body):  # noqa: N802
        found = [
            {key: value for key, value in bonus.items() if key != "UniqueRequestToken"}
            for bonus in self.bonuses
            if bonus["AssignmentId"] == body.get("AssignmentId")
            or self.assignments.get(bonus["AssignmentId"], {}).get("HITId") == body.get("HITId")
        ]
        return self._page(body, found, "BonusPayments")

    def _page(self, body: dict, items: list[dict], key: str) -> dict:
        size = min(self.page_size, body.get("MaxResults") or 100)
        start = int(body.get("NextToken") or 0)
        page = [dict(item) for item in items[start : start + size]]
        answer: dict[str, Any] = {"NumResults": len(page), key: page}
        if start + size < len(items):
            answer["NextToken"] = str(start + size)
        return answer


def _required(body: dict, *names: str) -> None:
    missing = [name for name in names if name not in body]
    if missing:
        raise Refused(f"Missing required parameters: {', '.join(missing)}")
    for name in ("HITId", "AssignmentId", "QualificationTypeId"):
        if name in body and not ENTITY_ID.match(str(body[name])):
            raise Refused(f"{name} {body[name]!r} is not valid")


def _amount(value: str, name: str) -> Decimal:
    if not isinstance(value, str) or not AMOUNT.match(value):
        raise Refused(f"{name} {value!r} is not an amount of US dollars")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise Refused(f"{name} {value!r} is not an amount of US dollars") from None


@contextlib.contextmanager
def fake_mturk_serving(monkeypatch, settings, **options) -> Iterator[FakeMTurk]:
    """The stand-in, running, with HYPE's endpoints (marketplace and sandbox alike) pointed at
    it and dummy AWS credentials in the environment: no credential, config file or instance
    metadata of the machine is read."""
    fake = FakeMTurk(**options).start()
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-for-the-stand-in")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/hype-tests/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/hype-tests/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings.HYPE_MTURK_ENDPOINT = fake.url
    settings.HYPE_MTURK_SANDBOX_ENDPOINT = fake.url
    try:
        yield fake
    finally:
        fake.stop()
