"""Test support for several worker processes: `uvicorn --workers N` serving the whole app on the
test's own PostgreSQL database and Redis, as production runs it, for the tests that kill one
or put a pool in front of the database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from experiments.simulation.client import simulation_run
from experiments.simulation.server import listening_socket

REPOSITORY = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60


def services_required() -> None:
    """The workers share the test's PostgreSQL database and Redis: without them (the SQLite
    pass) skip, unless CI says the services must be there (HYPE_REQUIRE_SERVICES)."""
    missing = []
    if connection.vendor != "postgresql" or not os.environ.get("DATABASE_URL"):
        missing.append("DATABASE_URL (PostgreSQL)")
    if not os.environ.get("REDIS_URL"):
        missing.append("REDIS_URL")
    if missing:
        reason = f"two worker processes need {' and '.join(missing)}"
        if os.environ.get("HYPE_REQUIRE_SERVICES"):
            pytest.fail(f"HYPE_REQUIRE_SERVICES is set, but {reason}")
        pytest.skip(reason)


def _proc_children(parent: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        # uvicorn's workers are multiprocessing "spawn" children; the resource tracker is not.
        if ppid == parent and b"spawn_main" in cmdline:
            children.append(int(entry))
    return sorted(children)


def _established_inodes(port: int) -> set[str]:
    """The socket inodes of the connections accepted on `port` (the server's side)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                    inodes.add(fields[9])
    return inodes


@dataclass
class Workers:
    """`uvicorn --workers N` in its own process group, on the test's database and Redis."""

    process: subprocess.Popen
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return _proc_children(self.process.pid)

    def sockets_by_worker(self) -> dict[int, int]:
        """How many client connections each worker process holds right now."""
        inodes = _established_inodes(self.port)
        held = {}
        for pid in self.pids():
            count = 0
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        target = os.readlink(f"/proc/{pid}/fd/{fd}")
                        if target.startswith("socket:[") and target[8:-1] in inodes:
                            count += 1
            held[pid] = count
        return held

    def stop(self) -> None:
        """SIGTERM to the group (uvicorn stops its workers), then SIGKILL to what is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _healthy(base_url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{base_url}/healthz", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def workers_database_url() -> str:
    """DATABASE_URL naming the database pytest-django created (test_...), which other
    processes can reach: with transactional_db, what a test writes is committed."""
    services_required()
    parts = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    return parts._replace(path="/" + connection.settings_dict["NAME"]).geturl()


@contextlib.contextmanager
def workers_running(*, count: int, database_url: str, folder: Path) -> Iterator[Workers]:
    """`count` uvicorn worker processes serving the whole app on database_url (the test's
    database, or a pool in front of it) and the test's Redis (one channel layer and cache for
    all); stopped on exit, whatever happened."""
    env = {
        **os.environ,
        # DEBUG: the runserver-like settings (plain http, no collected static files); the
        # simulated raters fetch only Django's pages and the websocket.
        "DEBUG": "1",
        "DATABASE_URL": database_url,
        "DATABASE_CONN_MAX_AGE": "0",
        "REDIS_URL": os.environ["REDIS_URL"],
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        # As tests/experiments/conftest.py does in process: bots answer at machine speed.
        "HYPE_RATER_FLOOD_MESSAGES": "10000",
        "HYPE_RATER_FLOOD_WINDOW_S": "1",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "hype.settings",
    }
    probe = listening_socket()
    port = probe.getsockname()[1]
    probe.close()  # uvicorn binds it again; a race with another process is unlikely
    log = folder / "uvicorn.log"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "hype.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(count),
        "--lifespan",
        "off",
        "--no-access-log",
        # info: each worker says "Started server process [pid]" once Django is loaded.
        "--log-level",
        "info",
    ]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command,
            cwd=REPOSITORY,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so that every worker can be killed
        )
    workers = Workers(process, port, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, f"uvicorn exited:\n{workers.log_tail()}"
            pids = workers.pids()
            text = log.read_text(errors="replace")
            started = all(f"Started server process [{pid}]" in text for pid in pids)
            if len(pids) == count and started and _healthy(workers.base_url):
                break
            assert time.monotonic() < deadline, f"uvicorn did not start:\n{workers.log_tail()}"
            time.sleep(0.2)
        yield workers
    finally:
        workers.stop()


class RatersInThread(threading.Thread):
    """simulation_run(plan) in a thread of its own, so that the test can watch or harm the
    server meanwhile; its progress lines in `lines`, and report() gives its SimulationReport
    or raises what it raised (an error in the thread is not lost)."""

    def __init__(self, plan):
        super().__init__(name="simulated-raters", daemon=True)
        self.plan = plan
        self.lines: list[str] = []
        self.outcome: dict = {}

    def run(self) -> None:
        try:
            self.outcome["report"] = simulation_run(plan=self.plan, report=self.lines.append)
        except BaseException as error:  # reported by report(), not lost in the thread
            self.outcome["error"] = error

    def report(self):
        assert not self.is_alive(), "the raters did not finish"
        if "error" in self.outcome:
            raise self.outcome["error"]
        return self.outcome["report"]
