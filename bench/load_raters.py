"""The load generator of bench/load.py: simulated raters, each with its own cookie jar, who
open the study link, consent, open the rater socket and then, one trial per pace, fetch the
trial's image over HTTP, send `presented` and answer, timing each answer to the next trial.

One process runs a slice of the raters on one asyncio loop (generator_process); bench/load.py
starts several. Nothing here knows Django: the same code drives HYPE and the echo baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import resource
import time
import urllib.parse
from collections import Counter
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

REFRESH_MS = 1000 / 60
# Longer than any sane answer-to-trial time: past it the socket counts as dead.
RECEIVE_TIMEOUT_S = 30.0
MAX_RECONNECTS = 3
# How often the loop-lag probe wakes: how late it wakes says how busy this process is.
LAG_PROBE_S = 0.05


class Refused(Exception):
    """The server answered with an error message (docs/protocol.md, "error")."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class SessionEnded(Exception):
    """A `finished` message: the session is over, the rater stops."""


class HttpConnection:
    """One keep-alive HTTP/1.1 connection, as a browser holds to the site (no client library
    for asyncio is installed: asyncio streams and a few lines of parsing)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        # A kept-alive connection the server has closed meanwhile fails on first use: open a
        # fresh one and send again (every request here is safe to repeat until answered).
        for attempt in range(2):
            reused = self.writer is not None
            if not reused:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                return await self._exchange(method, path, headers, body)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if not reused or attempt:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, method, path, headers, body):
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status = int(status_line.split()[1])
        response_headers = []
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            response_headers.append((name.strip().lower(), value.strip()))
        found = dict(response_headers)
        if "content-length" in found:
            content = await self.reader.readexactly(int(found["content-length"]))
        elif found.get("transfer-encoding", "").lower() == "chunked":
            content = await self._chunked()
        else:
            content = await self.reader.read()
            self.close()
        if found.get("connection", "").lower() == "close":
            self.close()
        return status, response_headers, content

    async def _chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readline()).split(b";")[0], 16)
            if size == 0:
                await self.reader.readline()
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readline()


class Stats:
    """What one generator process measured, sent back to bench/load.py as plain values."""

    def __init__(self):
        self.latencies_ms: list[float] = []  # answers sent in the window: answer -> next trial
        self.lateness_ms: list[float] = []  # answers sent in the window: after their due time
        self.completed_in_window = 0  # answers whose next trial arrived in the window
        self.errors: Counter = Counter()
        self.acked: list[str] = []  # trials acknowledged as stored (duplicate: false)
        self.acked_duplicate: list[str] = []
        self.unacked: list[str] = []  # answers sent whose ack never came
        self.joined = 0
        self.join_failed = 0
        self.join_s = 0.0
        self.reconnects = 0
        self.raters_lost = 0  # raters who gave up mid-run (too many reconnects, session over)
        self.cpu_s = 0.0  # this process's CPU in the window
        self.loop_lag_ms: list[float] = []
        self.first_refusal = ""  # what the server said, the first time it refused a page

    def refused(self, code: str, content: bytes) -> Refused:
        if not self.first_refusal:
            text = content.decode("utf-8", "replace")
            # The page's message, without its markup: enough to say why.
            words = " ".join(re.sub(r"<[^>]+>", " ", text).split())
            self.first_refusal = f"{code}: {words[:600]}"
        return Refused(code)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self), errors=dict(self.errors))


class Clock:
    """The window, shared by every generator process as wall-clock times, on this process's
    monotonic clock."""

    def __init__(self, t0_wall: float, warmup_s: float, seconds: float):
        offset = time.time() - time.monotonic()
        self.t0 = t0_wall - offset
        self.start = self.t0 + warmup_s
        self.end = self.start + seconds

    def in_window(self, moment: float) -> bool:
        return self.start <= moment <= self.end


async def sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


class Rater:
    """One simulated browser: its cookies, its keep-alive HTTP connection, its socket."""

    def __init__(self, index: int, config: dict[str, Any], stats: Stats):
        self.index = index
        self.config = config
        self.stats = stats
        self.base_url = config["base_url"]
        parts = urllib.parse.urlsplit(self.base_url)
        self.http = HttpConnection(parts.hostname, parts.port)
        self.cookies: dict[str, str] = {}
        self.ws: ClientConnection | None = None
        self.trial: dict[str, Any] | None = None  # the trial being asked
        self.pending: dict[str, Any] | None = None  # an answer sent and not yet acknowledged
        self.reconnects = 0
        self.rng = random.Random(config["seed"] * 1_000_003 + index)

    # --- HTTP, with the rater's cookies -------------------------------------------------

    def _cookie_header(self) -> dict[str, str]:
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        return {"Cookie": cookie} if cookie else {}

    async def _http(self, method: str, path: str, headers=None, body: bytes = b""):
        status, response_headers, content = await self.http.request(
            method, path, {**self._cookie_header(), **(headers or {})}, body
        )
        for name, value in response_headers:
            if name == "set-cookie":
                pair = value.split(";", 1)[0]
                cookie_name, _, cookie_value = pair.partition("=")
                self.cookies[cookie_name.strip()] = cookie_value.strip()
        return status, dict(response_headers), content

    async def join(self) -> None:
        """The landing page, consent (POST start) and the task page, as a browser does."""
        study = self.config["study"]
        landing = f"/s/{study}/"
        status, _, content = await self._http("GET", landing)
        if status != 200:
            raise self.stats.refused(f"landing_http_{status}", content)
        form = urllib.parse.urlencode(
            {
                "consent": "on",
                "external_id": f"{self.config['run_id']}-{self.index:05d}",
                "csrfmiddlewaretoken": self.cookies.get("csrftoken", ""),
            }
        ).encode()
        status, headers, content = await self._http(
            "POST",
            f"/s/{study}/start",
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": self.base_url,
                "Referer": self.base_url + landing,
            },
            form,
        )
        task = headers.get("location", "")
        if status != 302 or not task.endswith("/task"):
            raise self.stats.refused(f"start_http_{status}", content)
        status, _, content = await self._http("GET", urllib.parse.urlsplit(task).path)
        if status != 200:
            raise self.stats.refused(f"task_http_{status}", content)

    # --- The socket ---------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the socket and say hello; self.trial is then the trial being asked."""
        ws_url = "ws" + self.base_url.removeprefix("http") + f"/ws/rate/{self.config['study']}/"
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        self.ws = await connect(
            ws_url,
            origin=self.base_url,
            additional_headers=self._cookie_header(),
            proxy=None,
            open_timeout=RECEIVE_TIMEOUT_S,
        )
        await self._send(
            {"type": "hello", "refresh_ms": REFRESH_MS, "screen": {"width": 1280, "height": 800}}
        )
        self.trial = await self._next_trial()

    async def _send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def _next_trial(self) -> dict[str, Any]:
        """Read until the next `trial`, recording the acks on the way."""
        while True:
            async with asyncio.timeout(RECEIVE_TIMEOUT_S):
                message = json.loads(await self.ws.recv())
            kind = message.get("type")
            if kind == "trial":
                return message
            if kind == "ack":
                if self.pending and message["trial"] == self.pending["trial"]:
                    self.pending = None
                (self.stats.acked_duplicate if message["duplicate"] else self.stats.acked).append(
                    message["trial"]
                )
            elif kind == "finished":
                raise SessionEnded(message.get("outcome", ""))
            elif kind == "error":
                raise Refused(message.get("code", "error"))
            # session, feedback, progress, qualification: nothing to do for a simulated rater

    def _answer(self, trial: dict[str, Any]) -> dict[str, Any]:
        timed = trial["timed"]
        return {
            "type": "answer",
            "trial": trial["trial"],
            "choice": self.rng.choice(("real", "fake")),
            "rt_ms": round(self.rng.uniform(400, 1200), 1),
            "shown_ms": trial["frames"] * REFRESH_MS if timed else None,
            "mask_ms": sum(m["frames"] for m in trial["masks"]) * REFRESH_MS if timed else None,
            "refresh_ms": REFRESH_MS,
            "page_hidden": False,
        }

    async def _fetch_image(self, trial: dict[str, Any]) -> None:
        status, _, content = await self._http("GET", trial["image_url"])
        if status != 200 or not content:
            self.stats.errors[f"image_http_{status}"] += 1
            self.stats.refused(f"image_http_{status}", content)

    async def run(self, clock: Clock) -> None:
        """Answer one trial per pace (jittered, the phase spread over the first pace) until
        the window ends; a slow server is not caught up with, as a person would not."""
        pace = self.config["pace_s"]
        due = clock.t0 + self.rng.uniform(0, pace)
        resend = False
        while due <= clock.end:
            try:
                trial = self.trial
                if resend and self.pending and self.pending["trial"] == trial["trial"]:
                    # After a reconnect, as the browser does: presented again, then the answer
                    # it holds (the image is gone by now).
                    answer = self.pending
                    await self._send({"type": "presented", "trial": trial["trial"]})
                else:
                    if not trial["answer_only"]:
                        await self._fetch_image(trial)
                        await self._send({"type": "presented", "trial": trial["trial"]})
                    await sleep_until(due)
                    answer = self._answer(trial)
                resend = False
                sent_at = time.monotonic()
                self.pending = answer
                await self._send(answer)
                self.trial = await self._next_trial()
                received_at = time.monotonic()
                if clock.in_window(sent_at):
                    self.stats.latencies_ms.append((received_at - sent_at) * 1000)
                    self.stats.lateness_ms.append(max(0.0, sent_at - due) * 1000)
                if clock.in_window(received_at):
                    self.stats.completed_in_window += 1
                due = max(due + pace * self.rng.uniform(0.8, 1.2), received_at)
            except SessionEnded:
                self.stats.errors["session_finished"] += 1
                self.stats.raters_lost += 1
                return
            except (Refused, ConnectionClosed, OSError, TimeoutError, InvalidStatus) as error:
                kind = error.code if isinstance(error, Refused) else type(error).__name__
                self.stats.errors[kind] += 1
                if self.reconnects >= MAX_RECONNECTS:
                    self.stats.raters_lost += 1
                    return
                self.reconnects += 1
                self.stats.reconnects += 1
                await asyncio.sleep(0.2 * 2**self.reconnects)
                try:
                    await self.connect()
                except (Refused, ConnectionClosed, OSError, TimeoutError, InvalidStatus) as again:
                    kind = again.code if isinstance(again, Refused) else type(again).__name__
                    self.stats.errors[f"reconnect_{kind}"] += 1
                    self.stats.raters_lost += 1
                    return
                resend = True
                due = max(due, time.monotonic())

    async def close(self) -> None:
        if self.pending:
            self.stats.unacked.append(self.pending["trial"])
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        self.http.close()


async def _lag_probe(clock: Clock, stats: Stats) -> None:
    """How late this loop wakes from a short sleep: a busy generator shows it here first."""
    while time.monotonic() < clock.end:
        before = time.monotonic()
        await asyncio.sleep(LAG_PROBE_S)
        woke = time.monotonic()
        if clock.in_window(woke):
            stats.loop_lag_ms.append((woke - before - LAG_PROBE_S) * 1000)


async def _cpu_in_window(clock: Clock, stats: Stats) -> None:
    await sleep_until(clock.start)
    started = time.process_time()
    await sleep_until(clock.end)
    stats.cpu_s = time.process_time() - started


async def _generate(pipe, config: dict[str, Any]) -> None:
    stats = Stats()
    raters = [Rater(index, config, stats) for index in config["raters"]]
    gate = asyncio.Semaphore(config["join_concurrency"])

    async def join(rater: Rater) -> Rater | None:
        async with gate:
            try:
                await rater.join()
                await rater.connect()
                return rater
            except (Refused, ConnectionClosed, OSError, TimeoutError, InvalidStatus) as error:
                kind = error.code if isinstance(error, Refused) else type(error).__name__
                stats.errors[f"join_{kind}"] += 1
                stats.join_failed += 1
                await rater.close()
                return None

    started = time.monotonic()
    joined = [r for r in await asyncio.gather(*(join(r) for r in raters)) if r is not None]
    stats.join_s = time.monotonic() - started
    stats.joined = len(joined)
    pipe.send(("ready", len(joined)))
    _, t0_wall = await asyncio.to_thread(pipe.recv)
    clock = Clock(t0_wall, config["warmup_s"], config["seconds"])
    probes = [
        asyncio.create_task(_lag_probe(clock, stats)),
        asyncio.create_task(_cpu_in_window(clock, stats)),
    ]
    # After the window the raters finish the trial they are on; a server that is far behind
    # gets drain_s more, then what is still unanswered is counted as such.
    runs = [asyncio.create_task(rater.run(clock)) for rater in joined]
    await sleep_until(clock.end)
    if runs:
        _, late = await asyncio.wait(runs, timeout=config["drain_s"])
        for task in late:
            task.cancel()
    await asyncio.gather(*runs, *probes, return_exceptions=True)
    for rater in joined:
        await rater.close()
    pipe.send(("done", stats.as_dict()))


def generator_process(pipe, config: dict[str, Any]) -> None:
    """A process of the load generator: join config["raters"], say ready, wait for the start
    time, run, send the Stats back."""
    # One socket and one HTTP connection per rater: allow as many files as the system does.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(_generate(pipe, config))
