"""A stand-in for Prolific's API on 127.0.0.1: the operations the Prolific commands use, with
the JSON shapes docs.prolific.com gives (and Prolific's own CLI reads where the docs say
little), state the tests seed and inspect, every request recorded, and faults on demand.

Like the real API, paying one bulk bonus twice pays twice, so a test can catch it."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

CODE_TYPES = {
    "COMPLETED",
    "FAILED_ATTENTION_CHECK",
    "FOLLOW_UP_STUDY",
    "GIVE_BONUS",
    "INCOMPATIBLE_DEVICE",
    "NO_CONSENT",
    "OTHER",
    "FIXED_SCREENOUT",
}
ACTIONS = {
    "AUTOMATICALLY_APPROVE",
    "ADD_TO_PARTICIPANT_GROUP",
    "REMOVE_FROM_PARTICIPANT_GROUP",
    "MANUALLY_REVIEW",
    "REQUEST_RETURN",
    "DYNAMIC_PAYMENT",
    "FIXED_SCREEN_OUT_PAYMENT",
}
SUBMISSION_STATUSES = {
    "RESERVED",
    "ACTIVE",
    "TIMED-OUT",
    "AWAITING REVIEW",
    "APPROVED",
    "RETURNED",
    "REJECTED",
    "SCREENED OUT",
}
REQUIRED_STUDY_FIELDS = (
    "name",
    "description",
    "external_study_url",
    "prolific_id_option",
    "completion_codes",
    "total_available_places",
    "estimated_completion_time",
    "reward",
)
DEFAULT_PAGE_SIZE = 20  # "Paginate by page_size and page (Default page_size is 20)"
_ids = itertools.count(1)


def object_id() -> str:
    """An id shaped like Prolific's: 24 hexadecimal characters."""
    return f"{next(_ids):08x}{secrets.token_hex(8)}"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    """What the next matching request gets instead of a normal answer: `status` (and
    `body`) without acting, or after acting (`act_first`: the answer is lost); `hang_s`
    waits that long first (a client with a shorter timeout gives up)."""

    method: str
    path: re.Pattern
    status: int | None = None
    body: Any = None
    hang_s: float | None = None
    act_first: bool = False
    times: int = 1


class Refusal(Exception):
    """An error answer: status and Prolific's error shape."""

    def __init__(self, status: int, detail: Any, title: str = ""):
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.title = title or {400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}.get(
            status, "Error"
        )


@dataclass
class FakeProlific:
    """The fake's state; `url` once started. Seed submissions with submission_add, inject
    faults with fail, read `requests`, `studies`, `bulk_bonuses`, `payments`."""

    token: str = "fake-prolific-token-7Qx2"
    currency: str = "USD"
    studies: dict[str, dict[str, Any]] = field(default_factory=dict)
    submissions: dict[str, dict[str, Any]] = field(default_factory=dict)
    bulk_bonuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[str] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    # Called in the server's thread when /pay/ arrives, before it pays (with the bulk id).
    on_pay: Callable[[str], None] | None = None
    url: str = ""

    def __post_init__(self):
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # Running.

    def start(self) -> FakeProlific:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake._handle(self)

            def do_POST(self):
                fake._handle(self)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeProlific:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # Seeding and inspecting, from the test.

    def submission_add(
        self,
        *,
        study_id: str,
        participant_id: str,
        status: str,
        submission_id: str | None = None,
        study_code: str | None = None,
    ) -> dict[str, Any]:
        assert status in SUBMISSION_STATUSES, status
        submission = {
            "id": submission_id or object_id(),
            "participant_id": participant_id,
            "status": status,
            "study_id": study_id,
            "started_at": "2024-05-01T10:00:00.000000Z",
            "completed_at": None if status in ("RESERVED", "ACTIVE") else "2024-05-01T10:40:00Z",
            "has_siblings": False,
            "study_code": study_code,
            "return_requested": None,
        }
        with self._lock:
            self.submissions[submission["id"]] = submission
        return submission

    def study_add(self, **fields: Any) -> dict[str, Any]:
        """A study that exists on Prolific already (a draft unless status says otherwise)."""
        study = {"id": object_id(), "status": "UNPUBLISHED", "currency_code": self.currency}
        study.update(fields)
        with self._lock:
            self.studies[study["id"]] = study
        return study

    def fail(
        self,
        method: str,
        path: str,
        *,
        status: int | None = None,
        body: Any = None,
        hang_s: float | None = None,
        act_first: bool = False,
        times: int = 1,
    ) -> None:
        """Make the next `times` requests `method` whose path matches the regex `path` fail."""
        with self._lock:
            self.faults.append(
                Fault(method, re.compile(path), status, body, hang_s, act_first, times)
            )

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        """The recorded requests `method` whose path matches the regex `path`, in order."""
        pattern = re.compile(path)
        return [r for r in self.requests if r.method == method and pattern.search(r.path)]

    # Serving.

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        method, path = handler.command, parts.path
        with self._lock:
            self.requests.append(
                Recorded(
                    method=method,
                    path=path,
                    query=dict(parse_qsl(parts.query)),
                    headers=dict(handler.headers.items()),
                    body=body,
                )
            )
            fault = next(
                (f for f in self.faults if f.method == method and f.path.search(path)), None
            )
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
        if handler.headers.get("Authorization") != f"Token {self.token}":
            return self._send(handler, 401, _error(401, "Unauthorized", "Invalid token."))
        if fault is not None and not fault.act_first:
            if fault.hang_s:
                self._stopping.wait(fault.hang_s)
            return self._send(handler, fault.status or 504, fault.body or _error(504, "", ""))
        try:
            status, answer = self._route(method, path, dict(parse_qsl(parts.query)), body)
        except Refusal as error:
            status, answer = error.status, _error(error.status, error.title, error.detail)
        if fault is not None:
            if fault.hang_s:
                self._stopping.wait(fault.hang_s)
            status, answer = fault.status or 504, fault.body or _error(504, "", "")
        self._send(handler, status, answer)

    def _send(self, handler: BaseHTTPRequestHandler, status: int, answer: Any) -> None:
        data = b"" if answer is None else json.dumps(answer).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting

    def _route(self, method: str, path: str, query: dict[str, str], body: Any):
        routes = [
            ("POST", r"^/api/v1/studies/$", self._study_create),
            ("GET", r"^/api/v1/studies/([^/]+)/$", self._study_get),
            ("POST", r"^/api/v1/studies/([^/]+)/transition/$", self._study_transition),
            ("GET", r"^/api/v1/submissions/$", self._submissions_list),
            ("POST", r"^/api/v1/submissions/bonus-payments/$", self._bonus_create),
            ("POST", r"^/api/v1/submissions/([^/]+)/transition/$", self._submission_transition),
            ("POST", r"^/api/v1/bulk-bonus-payments/([^/]+)/pay/$", self._bonus_pay),
        ]
        for route_method, pattern, view in routes:
            match = re.match(pattern, path)
            if match and route_method == method:
                with self._lock:
                    return view(*match.groups(), query=query, body=body)
        raise Refusal(404, f"No {method} {path} here.")

    def _study_create(self, *, query, body):
        if not isinstance(body, dict):
            raise Refusal(400, "Expected a JSON object.")
        missing = {name: ["This field is required."] for name in REQUIRED_STUDY_FIELDS}
        problems = {k: v for k, v in missing.items() if k not in body}
        if body.get("prolific_id_option") not in ("question", "url_parameters", "not_required"):
            problems["prolific_id_option"] = ["Not a valid choice."]
        if body.get("prolific_id_option") == "url_parameters" and "{{%PROLIFIC_PID%}}" not in str(
            body.get("external_study_url")
        ):
            problems["external_study_url"] = ["Must carry {{%PROLIFIC_PID%}}."]
        codes = body.get("completion_codes")
        if not isinstance(codes, list) or not codes:
            problems["completion_codes"] = ["At least one completion code is required."]
        else:
            for code in codes:
                if code.get("code_type") not in CODE_TYPES or not code.get("code"):
                    problems["completion_codes"] = [f"Bad code {code!r}."]
                for action in code.get("actions") or []:
                    if action.get("action") not in ACTIONS:
                        problems["completion_codes"] = [f"Bad action {action!r}."]
        for name in ("total_available_places", "estimated_completion_time", "reward"):
            value = body.get(name)
            if name in body and (not isinstance(value, int) or value < 1):
                problems[name] = ["Must be a whole number of at least 1."]
        for device in body.get("device_compatibility") or []:
            if device not in ("desktop", "tablet", "mobile"):
                problems["device_compatibility"] = [f"{device!r} is not a valid choice."]
        if problems:
            raise Refusal(400, problems)
        study = dict(body)
        study.update(
            id=object_id(),
            status="UNPUBLISHED",
            currency_code=self.currency,
            places_taken=0,
            date_created="2024-05-01T09:00:00Z",
        )
        self.studies[study["id"]] = study
        return 201, study

    def _study(self, study_id: str) -> dict[str, Any]:
        if study_id not in self.studies:
            raise Refusal(404, f"Study {study_id} not found.")
        return self.studies[study_id]

    def _study_get(self, study_id, *, query, body):
        return 200, self._study(study_id)

    def _study_transition(self, study_id, *, query, body):
        study = self._study(study_id)
        action = (body or {}).get("action")
        moves = {
            "PUBLISH": ("UNPUBLISHED", "ACTIVE"),
            "PAUSE": ("ACTIVE", "PAUSED"),
            "START": ("PAUSED", "ACTIVE"),
            "STOP": ("ACTIVE", "AWAITING REVIEW"),
        }
        if action not in moves:
            raise Refusal(400, {"action": [f"{action!r} is not a valid choice."]})
        before, after = moves[action]
        if study["status"] != before:
            raise Refusal(400, f"A {study['status']} study cannot {action}.")
        study["status"] = after
        return 200, study

    def _submissions_list(self, *, query, body):
        found = [
            s
            for s in self.submissions.values()
            if "study" not in query or s["study_id"] == query["study"]
        ]
        page, size = int(query.get("page", 1)), int(query.get("page_size", DEFAULT_PAGE_SIZE))
        last = max(1, -(-len(found) // size))
        if page < 1 or page > last:
            raise Refusal(404, "Invalid page.")

        def href(number: int) -> str | None:
            if not 1 <= number <= last:
                return None
            return f"{self.url}/api/v1/submissions/?{urlencode({**query, 'page': number})}"

        return 200, {
            "results": [dict(s) for s in found[(page - 1) * size : page * size]],
            "_links": {
                "self": {"href": href(page), "title": "Current"},
                "next": {"href": href(page + 1), "title": "Next"},
                "previous": {"href": href(page - 1), "title": "Previous"},
                "last": {"href": href(last), "title": "Last"},
            },
            "meta": {"count": len(found)},
        }

    def _submission_transition(self, submission_id, *, query, body):
        if submission_id not in self.submissions:
            raise Refusal(404, f"Submission {submission_id} not found.")
        submission = self.submissions[submission_id]
        action = (body or {}).get("action")
        if action != "APPROVE":
            raise Refusal(400, {"action": ["This fake approves only."]})
        # Documented as idempotent: approving an approved submission is ignored.
        if submission["status"] == "AWAITING REVIEW":
            submission["status"] = "APPROVED"
            self.approvals.append(submission_id)
        elif submission["status"] != "APPROVED":
            raise Refusal(400, f"A {submission['status']} submission cannot be approved.")
        return 200, {
            "id": submission["id"],
            "started_at": submission["started_at"],
            "status": submission["status"],
            "completed_at": submission["completed_at"],
            "entered_code": submission["study_code"],
            "participant": submission["participant_id"],
            "study_id": submission["study_id"],
        }

    def _bonus_create(self, *, query, body):
        study_id = (body or {}).get("study_id")
        self._study(study_id)
        taking_part = {
            key
            for s in self.submissions.values()
            if s["study_id"] == study_id
            for key in (s["id"], s["participant_id"])
        }
        rows, wrong = [], []
        for line in str((body or {}).get("csv_bonuses") or "").splitlines():
            if not line.strip():
                continue
            who, _, amount = line.partition(",")
            try:
                value = Decimal(amount)
            except InvalidOperation:
                value = Decimal(0)
            if who not in taking_part or value <= 0 or value.as_tuple().exponent < -2:
                wrong.append(line)
            else:
                rows.append((who, value))
        if wrong or not rows:
            raise Refusal(400, {"csv_bonuses": [f"Incorrect lines: {wrong or 'none'}"]})
        cents = float(sum(value for _, value in rows) * 100)
        bulk = {"id": object_id(), "study": study_id, "rows": rows, "paid": 0}
        self.bulk_bonuses[bulk["id"]] = bulk
        fees = round(cents / 3, 2)
        return 201, {
            "id": bulk["id"],
            "study": study_id,
            "amount": cents,
            "fees": fees,
            "vat": 0.0,
            "total_amount": round(cents + fees, 2),
        }

    def _bonus_pay(self, bulk_id, *, query, body):
        if bulk_id not in self.bulk_bonuses:
            raise Refusal(404, f"Bulk bonus payment {bulk_id} not found.")
        if self.on_pay is not None:
            self.on_pay(bulk_id)
        bulk = self.bulk_bonuses[bulk_id]
        # Not idempotent: every call pays again, as Prolific's documentation warns.
        bulk["paid"] += 1
        self.payments.append({"bulk": bulk_id, "rows": list(bulk["rows"])})
        return 202, {}

    def paid_to(self, participant_id: str) -> list[Decimal]:
        """Every bonus amount paid to a participant, one entry per payment."""
        return [
            amount
            for payment in self.payments
            for who, amount in payment["rows"]
            if who == participant_id
        ]


def _error(status: int, title: str, detail: Any) -> dict[str, Any]:
    # The shape Prolific's CLI (prolific-oss/cli, client.JSONAPIError) reads.
    return {"error": {"status": status, "title": title, "detail": detail}}


@contextmanager
def prolific_serving(settings, **options: Any) -> Iterator[FakeProlific]:
    """A FakeProlific served on 127.0.0.1 (a free port) for one test, with the settings
    (pytest-django's `settings` fixture) pointing the platform at it: its API address, its
    token, and a public address for the study links."""
    with FakeProlific(**options) as fake:
        settings.HYPE_PROLIFIC_API_URL = fake.url
        settings.HYPE_PROLIFIC_TOKEN = fake.token
        settings.HYPE_PUBLIC_URL = "https://hype.example.org"
        yield fake
