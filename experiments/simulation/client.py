"""Simulated raters over the real protocol: each opens the study link, consents, and answers
every trial over the websocket as the SimulatedObserver its plan gives the model the server
assigned it. The engine behind `manage.py simulate_raters` and `manage.py load_demo`
(docs/demo.md)."""

from __future__ import annotations

import asyncio
import hashlib
import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from channels.db import database_sync_to_async
from django.conf import settings
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from experiments.models import Trial
from experiments.simulation.plan import RaterRun, SimulationError, SimulationPlan, SimulationReport
from hype.science.observers import SimulatedObserver

REFRESH_MS = 1000 / 60
RECEIVE_TIMEOUT_S = 60.0
MAX_RECONNECTS = 5
RESUMABLE = {"server_error", "rate_limited"}

Report = Callable[[str], None]


# --- One rater ----------------------------------------------------------------------------


def _join(base_url: str, study: str, external_id: str) -> str:
    """Open the study link and consent, as a browser would; returns the Cookie header."""
    jar = http.cookiejar.CookieJar()
    # No proxies: the simulator talks to a server on this machine.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar)
    )
    landing = f"{base_url}/s/{study}/"
    try:
        opener.open(landing, timeout=30).read()
        token = next((c.value for c in jar if c.name == settings.CSRF_COOKIE_NAME), "")
        form = {"consent": "on", "external_id": external_id, "csrfmiddlewaretoken": token}
        request = urllib.request.Request(
            f"{base_url}/s/{study}/start",
            data=urllib.parse.urlencode(form).encode(),
            headers={"Origin": base_url, "Referer": landing},
        )
        with opener.open(request, timeout=30) as response:
            response.read()
            if not response.url.endswith("/task"):
                raise SimulationError(f"starting a session led to {response.url}, not the task")
    except urllib.error.HTTPError as error:
        raise SimulationError(f"POST /s/{study}/start answered {error.code}") from None
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def task_stream(*, seed: int, model: str, ordinal: int) -> np.random.Generator:
    """The random stream of the ordinal-th rater the server gives `model` (from 0): it decides
    every task answer of that rater, one draw a trial, so a run can be replayed offline."""
    # blake2b, not hash(): the same number in every process.
    key = int.from_bytes(hashlib.blake2b(model.encode(), digest_size=8).digest(), "big")
    return np.random.default_rng([seed, 2, key, ordinal])


@database_sync_to_async
def _block_oracle(trial_public_id: str) -> dict[str, tuple[bool, str | None]]:
    """The simulator's oracle: the label of every trial in this trial's block and the rater's
    model, from the database (one query a block). The protocol never tells the browser."""
    block_id = Trial.objects.filter(public_id=trial_public_id).values("block_id")
    rows = Trial.objects.filter(block_id__in=block_id).values_list(
        "public_id", "is_real", "session__model__name"
    )
    labels = {public_id: (is_real, model) for public_id, is_real, model in rows}
    if trial_public_id not in labels:
        raise SimulationError(
            f"trial {trial_public_id} is not in this database: simulate_raters must run with "
            "the server's database settings"
        )
    return labels


class _Socket:
    """A websocket that sends JSON under a client-side message budget and keeps order."""

    def __init__(self, ws: ClientConnection, pace: tuple[int, float] | None):
        self.ws = ws
        self.pace = pace
        self.sent: deque[float] = deque()

    async def send(self, message: dict[str, Any]) -> None:
        if self.pace:
            limit, window_s = self.pace
            while len(self.sent) >= limit:
                wait = self.sent[0] + window_s - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.sent.popleft()
            self.sent.append(time.monotonic())
        await self.ws.send(json.dumps(message))

    async def until(self, *types: str) -> dict[str, Any]:
        while True:
            async with asyncio.timeout(RECEIVE_TIMEOUT_S):
                message = json.loads(await self.ws.recv())
            if message["type"] in types:
                return message


class _Rater:
    """One simulated rater's state across reconnects."""

    def __init__(self, engine: _Engine, index: int):
        self.engine = engine
        self.plan = engine.plan
        self.index = index
        self.external_id = f"{self.plan.run_id}-{index:04d}"
        # The qualification answers come from the rater's own stream; the task's from its
        # model's stream (see _Engine.task_stream), so results do not depend on which rater
        # the server happened to give which model.
        self.qualification_rng = np.random.default_rng([self.plan.seed, 1, index])
        self.model: str | None = None
        self.observer: SimulatedObserver | None = None
        self.task_rng: np.random.Generator | None = None
        self.pending: dict[str, Any] | None = None
        self.labels: dict[str, tuple[bool, str | None]] = {}
        self.answers = 0
        self.duplicates = 0
        self.reconnects = 0

    def result(self, outcome: str, error: str = "") -> RaterRun:
        return RaterRun(
            index=self.index,
            external_id=self.external_id,
            model=self.model,
            outcome=outcome,
            answers=self.answers,
            duplicates=self.duplicates,
            reconnects=self.reconnects,
            error=error,
        )

    async def run(self) -> RaterRun:
        plan = self.plan
        try:
            cookie = await asyncio.to_thread(_join, plan.base_url, plan.study, self.external_id)
        except (SimulationError, OSError) as error:
            return self.result("error", f"could not join: {error}")
        while True:
            try:
                return await self._session(cookie)
            except (ConnectionClosed, OSError, TimeoutError) as error:
                self.reconnects += 1
                if self.reconnects > MAX_RECONNECTS:
                    return self.result(
                        "error", f"gave up after {MAX_RECONNECTS} reconnects: {error}"
                    )
                await asyncio.sleep(0.2 * 2**self.reconnects)
            except InvalidStatus as error:
                return self.result("error", f"the websocket was refused: {error}")
            except _Refused as refused:
                # Both leave nothing half-done on the server: reconnect, resend, go on.
                if refused.code in RESUMABLE and self.reconnects < MAX_RECONNECTS:
                    self.reconnects += 1
                    await asyncio.sleep(0.2 * 2**self.reconnects)
                    continue
                return self.result("error", f"{refused.code}: {refused.text}")

    async def _session(self, cookie: str) -> RaterRun:
        plan = self.plan
        ws_url = "ws" + plan.base_url.removeprefix("http") + f"/ws/rate/{plan.study}/"
        async with connect(
            ws_url,
            origin=plan.base_url,
            additional_headers={"Cookie": cookie},
            proxy=None,
            open_timeout=30,
        ) as ws:
            socket = _Socket(ws, plan.pace)
            await socket.send(
                {
                    "type": "hello",
                    "refresh_ms": REFRESH_MS,
                    "screen": {"width": 1280, "height": 800, "dpr": 1},
                }
            )
            await socket.until("session")
            message = await socket.until("trial", "finished", "error")
            while True:
                if message["type"] == "finished":
                    return self.result(message["outcome"])
                if message["type"] == "error":
                    raise _Refused(message)
                await self._answer(socket, message)
                message = await socket.until("trial", "finished", "error")

    async def _answer(self, socket: _Socket, trial: dict[str, Any]) -> None:
        if self.pending and self.pending["trial"] == trial["trial"]:
            # A resumed session: resend the answer the server may not have stored, after
            # `presented` if the server never stored that either (it offers the trial to be
            # shown, not answer_only), as the browser does (docs/protocol.md).
            if not trial["answer_only"]:
                await socket.send({"type": "presented", "trial": trial["trial"]})
            answer = self.pending
        else:
            if not trial["answer_only"]:
                await socket.send({"type": "presented", "trial": trial["trial"]})
            if self.plan.think_ms:
                await asyncio.sleep(self.plan.think_ms / 1000)
            answer = await self._decide(trial)
            self.pending = answer
        await socket.send(answer)
        ack = await socket.until("ack", "error")
        if ack["type"] == "error":
            raise _Refused(ack)
        self.pending = None
        if ack["duplicate"]:
            self.duplicates += 1
        else:
            self.answers += 1

    async def _decide(self, trial: dict[str, Any]) -> dict[str, Any]:
        if trial["trial"] not in self.labels:
            self.labels = await _block_oracle(trial["trial"])
        is_real, model = self.labels[trial["trial"]]
        if trial["phase"] == "qualification":
            correct = self.qualification_rng.random() < self.plan.qualification_accuracy
            says_real = is_real if correct else not is_real
        else:
            if self.observer is None or model != self.model:
                self.model = model
                self.observer = self.plan.observers.get(model, self.plan.default_observer)
                self.task_rng = self.engine.task_stream(model)
            exposure = trial["exposure_ms"] if trial["timed"] else None
            says_real = self.observer.answer(
                is_real=is_real, exposure_ms=exposure, rng=self.task_rng
            )
        timed = trial["timed"]
        return {
            "type": "answer",
            "trial": trial["trial"],
            "choice": "real" if says_real else "fake",
            "rt_ms": 600.0 + self.plan.think_ms,
            "shown_ms": trial["frames"] * REFRESH_MS if timed else None,
            "mask_ms": sum(m["frames"] for m in trial["masks"]) * REFRESH_MS if timed else None,
            "refresh_ms": REFRESH_MS,
            "page_hidden": False,
        }


class _Refused(Exception):
    def __init__(self, message: dict[str, Any]):
        super().__init__(message.get("message", ""))
        self.code = message.get("code", "")
        self.text = message.get("message", "")


class _Engine:
    def __init__(self, plan: SimulationPlan, report: Report):
        self.plan = plan
        self.report = report
        self.assigned: dict[str, int] = {}

    def task_stream(self, model: str) -> np.random.Generator:
        # The k-th rater the server gives a model gets that model's k-th stream: the answers
        # per model are the same on every run with the same seed, whatever the interleaving.
        ordinal = self.assigned.get(model, 0)
        self.assigned[model] = ordinal + 1
        return task_stream(seed=self.plan.seed, model=model, ordinal=ordinal)

    async def run(self) -> list[RaterRun]:
        gate = asyncio.Semaphore(max(1, self.plan.concurrency))
        done = 0

        async def one(index: int) -> RaterRun:
            nonlocal done
            async with gate:
                result = await _Rater(self, index).run()
            done += 1
            detail = f", {result.error}" if result.error else ""
            self.report(
                f"  rater {index + 1} ({result.model or 'no model'}): {result.outcome}, "
                f"{result.answers} answers{detail} [{done}/{self.plan.raters} done]"
            )
            return result

        return list(await asyncio.gather(*(one(i) for i in range(self.plan.raters))))


def _server_check(base_url: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{base_url}/healthz", timeout=10) as response:
            response.read()
    except (urllib.error.URLError, OSError) as error:
        raise SimulationError(
            f"no HYPE server answers at {base_url} ({error}); start one, e.g. "
            "`python manage.py runserver`"
        ) from None


def simulation_run(*, plan: SimulationPlan, report: Report = lambda line: None) -> SimulationReport:
    """Run plan.raters simulated raters, plan.concurrency at a time, to the end of their
    sessions; every answer goes through the server's websocket like a browser's."""
    _server_check(plan.base_url)
    started = time.monotonic()
    results = asyncio.run(_Engine(plan, report).run())
    return SimulationReport(raters=tuple(results), seconds=time.monotonic() - started)
