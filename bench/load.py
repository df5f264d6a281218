"""Load of the rater path: N simulated raters on real websockets, one trial per 2 s each, against
1, 2 and 4 uvicorn workers (PostgreSQL + Redis, directly and through pgbouncer), with a trivial
echo server as the baseline.
Run from the repository root: .venv/bin/python bench/load.py --quick (or --raters 50 200 1000)
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import load_raters

from common import REPOSITORY
from experiments.simulation.pgbouncer import pgbouncer_running

DATABASE_URL = "postgres://postgres@127.0.0.1:5432/hype_bench"
REDIS_URL = "redis://127.0.0.1:6379/5"
# The test suite's databases and Redis's default database: never this benchmark's.
FORBIDDEN_DATABASES = {"hype", "test_hype", "postgres"}
TARGET_RATERS, TARGET_P99_MS = 1000, 100.0
# One asyncio process drives a few hundred raters comfortably; more go to more processes.
RATERS_PER_GENERATOR = 300
JOIN_CONCURRENCY = 8
MODELS = ("model-a", "model-b")
SERVER_START_TIMEOUT_S = 90
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The echo baseline's pace is "kept" at this share of the intended one, with each generator
# process below this share of a core: otherwise the generator itself is the bottleneck. (How
# late its loop wakes is shown, not judged: on a shared machine other processes delay it too.)
PACE_KEPT = 0.95
GENERATOR_BUSY_KEPT = 0.8


# --- Settings and setup -------------------------------------------------------------------


def server_environment(database_url: str, redis_url: str, folder: Path) -> dict[str, str]:
    """The production settings (DEBUG=0) over plain http on this machine, as
    docs/deployment.md says for a load test; media and static files in a temporary folder."""
    return {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "bench-load-not-a-secret-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SAMESITE": "Lax",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MEDIA_ROOT": str(folder / "media"),
        "STATIC_ROOT": str(folder / "static"),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "hype.settings",
    }


def targets_check(database_url: str, redis_url: str) -> None:
    name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    if name in FORBIDDEN_DATABASES:
        sys.exit(f"--database-url: {name!r} belongs to the project or its tests; use another")
    redis_db = urllib.parse.urlsplit(redis_url).path.lstrip("/") or "0"
    if redis_db == "0":
        sys.exit("--redis-url: Redis database 0 is the project's; use another (e.g. /5)")


def database_recreate(database_url: str) -> None:
    """Drop and create the benchmark's own database, from the server's maintenance database."""
    import psycopg2

    parts = urllib.parse.urlsplit(database_url)
    name = parts.path.lstrip("/")
    connection = psycopg2.connect(parts._replace(path="/postgres").geturl())
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
        # As docs/deployment.md says: Django wants its connections in UTC, and a server that
        # calls it Etc/UTC costs a SET TIME ZONE on every new connection.
        cursor.execute(f"ALTER DATABASE \"{name}\" SET timezone TO 'UTC'")
    connection.close()


def redis_flush(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()  # this database only, never another


def manage(env: dict[str, str], *arguments: str) -> None:
    subprocess.run([sys.executable, "manage.py", *arguments], cwd=REPOSITORY, env=env, check=True)


def noise_images_write(folder: Path, count: int, side: int, seed: int) -> None:
    """`count` distinct noise images: the import keeps one of each picture, and what the
    pictures show does not matter to the rater path."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        pixels = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:04d}.png")


@dataclass(frozen=True)
class BenchStudy:
    public_id: str
    image_bytes: int
    description: str


def study_make(folder: Path, *, raters: int, side: int) -> BenchStudy:
    """A live HYPE_time study through the project's import service: two models, the paper's
    three blocks of 150 timed trials, no qualification (every rater starts on the task)."""
    import django

    django.setup()
    import numpy as np
    from django.contrib.auth import get_user_model

    from experiments.models import Image, Study
    from experiments.services.imports.study import study_create

    owner = get_user_model().objects.create_user("bench-researcher", password="bench-load-pw")
    params = {"qualification_trials": 0, "raters_per_model": raters, "idle_minutes": 120}
    probe = Study(**params)  # what one rater needs of each group, from the study's own rules
    per_group = probe.time_blocks * probe.reals_in(probe.time_trials_per_block)
    noise_images_write(folder / "real", per_group, side, seed=1)
    for number, model in enumerate(MODELS):
        noise_images_write(folder / model, per_group, side, seed=2 + number)
    report = study_create(
        owner=owner,
        name="bench/load.py",
        method=Study.Method.TIME,
        real_dir=folder / "real",
        model_dirs={model: folder / model for model in MODELS},
        params=params,
        display_size=(side, side),
        status=Study.Status.LIVE,
        rng=np.random.default_rng(0),
    )
    study = report.study
    image = Image.objects.filter(study=study, role=Image.Role.TASK).first()
    description = (
        f"HYPE_time, {len(MODELS)} models, qualification_trials=0 (raters start on the timed "
        f"task), {study.time_blocks} blocks x {study.time_trials_per_block} trials, "
        f"{study.mask_count} masks a trial (not fetched), feedback {study.feedback}, "
        f"{side}x{side} images ({image.file.size:,} bytes), {report.real} real + "
        f"{sum(report.fakes.values())} fake images"
    )
    return BenchStudy(study.public_id, image.file.size, description)


def rater_data_clear() -> None:
    """Between points: every rater session and what hangs off it (blocks, trials, answers),
    so that each point starts from the same empty study."""
    from django.db import connection

    from experiments.models import RaterSession

    with connection.cursor() as cursor:
        cursor.execute(f'TRUNCATE "{RaterSession._meta.db_table}" CASCADE')


def answers_stored(study_public_id: str) -> Counter:
    """The stored Answer rows of the study, counted per trial's public id."""
    from django.db import connection

    from experiments.models import Answer

    rows = Answer.objects.filter(trial__session__study__public_id=study_public_id)
    counts = Counter(rows.values_list("trial__public_id", flat=True))
    connection.close()
    return counts


# --- Servers and CPU ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """uvicorn in its own process group, as `make serve WORKERS=K` runs it; stopped by SIGTERM
    to its first process (which stops the workers), then SIGKILL to the group it leads."""

    def __init__(self, app: str, workers: int, env: dict[str, str], log: Path, extra=()):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log = log
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--lifespan",
            "off",
            "--proxy-headers",
            "--forwarded-allow-ips",
            "127.0.0.1",
            *extra,
        ]
        with open(log, "ab") as output:
            self.process = subprocess.Popen(
                command,
                cwd=REPOSITORY,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.log}):\n{self.log_tail()}")
            try:
                with opener.open(f"{self.base_url}/healthz", timeout=5) as response:
                    if response.status == 200 and self._workers_up():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start ({self.log}):\n{self.log_tail()}")
            time.sleep(0.3)
        # Every worker imports Django before it accepts: give the slowest a moment.
        time.sleep(2 if self.workers > 1 else 0.2)

    def _workers_up(self) -> bool:
        return self.workers == 1 or len(descendants([self.process.pid])) > self.workers

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_errors(self) -> int:
        text = self.log.read_text(errors="replace")
        return text.count("Traceback")

    def first_traceback(self) -> str:
        """The first traceback in the server's log, with the lines that led to it."""
        lines = self.log.read_text(errors="replace").splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("Traceback")), None)
        if start is None:
            return ""
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()),
            len(lines) - 1,
        )
        return "\n".join(lines[max(0, start - 2) : end + 1])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the group this server leads
        self.process.wait()


def _proc_stats() -> dict[int, tuple[str, int, int, int]]:
    """pid -> (command name, parent pid, own CPU ticks, waited-for children's CPU ticks)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                data = handle.read()
        except OSError:
            continue  # gone meanwhile
        name = data[data.index("(") + 1 : data.rindex(")")]
        fields = data[data.rindex(")") + 2 :].split()
        # Fields 4, 14-17 of proc(5): ppid, utime, stime, cutime, cstime.
        own = int(fields[11]) + int(fields[12])
        children = int(fields[13]) + int(fields[14])
        stats[int(entry)] = (name, int(fields[1]), own, children)
    return stats


def descendants(roots: list[int], stats=None) -> set[int]:
    stats = stats if stats is not None else _proc_stats()
    found, frontier = set(), set(roots) & set(stats)
    while frontier:
        found |= frontier
        frontier = {pid for pid, (_, ppid, _, _) in stats.items() if ppid in frontier} - found
    return found


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds so far: the server's processes, every postgres (and pgbouncer) process,
    the machine."""

    server_s: float
    postgres_s: float
    redis_s: float
    machine_busy_s: float

    @staticmethod
    def take(server_pid: int | None) -> CpuSnapshot:
        stats = _proc_stats()
        # A process's own time while it lives, then its parent's children-time once reaped:
        # summing both over a group counts short-lived processes (a PostgreSQL backend per
        # connection) that start and end inside the window.
        server = descendants([server_pid], stats) if server_pid else set()
        server_ticks = sum(stats[pid][2] + stats[pid][3] for pid in server)
        # PostgreSQL's processes, and pgbouncer's when the workers connect through it: the
        # database side of a trial either way.
        postgres_ticks = sum(
            own + kids for name, _, own, kids in stats.values() if name in ("postgres", "pgbouncer")
        )
        redis_ticks = sum(own for name, _, own, _ in stats.values() if name == "redis-server")
        with open("/proc/stat") as handle:
            jiffies = [int(value) for value in handle.readline().split()[1:]]
        busy = sum(jiffies) - jiffies[3] - jiffies[4]  # all but idle and iowait
        return CpuSnapshot(
            server_ticks / CLOCK_TICKS,
            postgres_ticks / CLOCK_TICKS,
            redis_ticks / CLOCK_TICKS,
            busy / CLOCK_TICKS,
        )

    def __sub__(self, other: CpuSnapshot) -> CpuSnapshot:
        return CpuSnapshot(
            self.server_s - other.server_s,
            self.postgres_s - other.postgres_s,
            self.redis_s - other.redis_s,
            self.machine_busy_s - other.machine_busy_s,
        )


# --- One point: N raters against one server ----------------------------------------------


@dataclass
class Point:
    server: str  # "echo" or "K=2"
    raters: int
    generators: int
    seconds: float
    pace_s: float
    joined: int = 0
    join_s: float = 0.0
    completed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    lateness_ms: list[float] = field(default_factory=list)
    loop_lag_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    generator_cpu_s: float = 0.0
    cpu: CpuSnapshot | None = None
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    lost: int | None = None
    doubled: int | None = None
    unacked: int = 0
    acked: int = 0
    raters_lost: int = 0
    reconnects: int = 0
    server_log_errors: int = 0
    first_refusal: str = ""
    acked_ids: set[str] = field(default_factory=set, repr=False)
    acked_duplicate_ids: set[str] = field(default_factory=set, repr=False)

    @property
    def trials_per_s(self) -> float:
        return self.completed / self.seconds

    @property
    def pace_share(self) -> float:
        """Achieved trials per rater and second over the intended 1 / pace (1: on pace). The
        raters' phases are spread at random, so on pace this is 1 up to counting noise."""
        return self.trials_per_s / max(1, self.joined) * self.pace_s

    @property
    def pace_kept(self) -> bool:
        """On pace, up to counting noise: at least PACE_KEPT of the expected trials, or within
        two standard deviations of a Poisson count of them, whichever asks less."""
        expected = self.joined * self.seconds / self.pace_s
        return self.completed >= min(PACE_KEPT * expected, expected - 2 * math.sqrt(expected))

    @property
    def generator_busy(self) -> float:
        """The load generator's CPU in the window, as a share of its processes' cores."""
        return self.generator_cpu_s / self.seconds / self.generators

    def percentile(self, values: list[float], q: float) -> float:
        if not values:
            return math.nan
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]

    def latency(self, q: float) -> float:
        return self.percentile(self.latencies_ms, q)


def point_run(server: Server, label: str, *, study: str, raters: int, args, run_id: str) -> Point:
    generators = args.generators or min(
        os.cpu_count() or 1, max(1, math.ceil(raters / RATERS_PER_GENERATOR))
    )
    point = Point(label, raters, generators, args.seconds, args.pace)
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    try:
        for number in range(generators):
            parent, child = context.Pipe()
            config = {
                "base_url": server.base_url,
                "study": study,
                "raters": list(range(number, raters, generators)),
                "run_id": run_id,
                "seed": number,
                "pace_s": args.pace,
                "warmup_s": args.warmup,
                "seconds": args.seconds,
                "drain_s": args.drain,
                "join_concurrency": JOIN_CONCURRENCY,
            }
            process = context.Process(
                target=load_raters.generator_process, args=(child, config), daemon=True
            )
            process.start()
            pipes.append(parent)
            processes.append(process)
        for pipe in pipes:
            pipe.recv()  # ("ready", joined): every rater has consented and said hello
        t0 = time.time() + 1.0
        for pipe in pipes:
            pipe.send(("go", t0))
        time.sleep(max(0.0, t0 + args.warmup - time.time()))
        before = CpuSnapshot.take(server.process.pid)
        time.sleep(max(0.0, t0 + args.warmup + args.seconds - time.time()))
        point.cpu = CpuSnapshot.take(server.process.pid) - before
        point.load = os.getloadavg()
        for pipe in pipes:
            _, stats = pipe.recv()
            point.joined += stats["joined"]
            point.join_s = max(point.join_s, stats["join_s"])
            point.completed += stats["completed_in_window"]
            point.latencies_ms += stats["latencies_ms"]
            point.lateness_ms += stats["lateness_ms"]
            point.loop_lag_ms += stats["loop_lag_ms"]
            point.errors.update(stats["errors"])
            point.generator_cpu_s += stats["cpu_s"]
            point.unacked += len(stats["unacked"])
            point.raters_lost += stats["raters_lost"]
            point.reconnects += stats["reconnects"]
            point.acked += len(stats["acked"])
            point.first_refusal = point.first_refusal or stats["first_refusal"]
            point.acked_ids.update(stats["acked"])
            point.acked_duplicate_ids.update(stats["acked_duplicate"])
        for process in processes:
            process.join(10)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(5)
    point.server_log_errors = server.log_errors()
    return point


def answers_check(point: Point, study: str) -> None:
    """Lost: acknowledged as stored but not in the database. Doubled: more than one row for
    a trial (the schema forbids it), or a row for an answer no client was ever acknowledged."""
    stored = answers_stored(study)
    acked_any = point.acked_ids | point.acked_duplicate_ids
    point.lost = len(point.acked_ids - set(stored))
    point.doubled = sum(1 for n in stored.values() if n > 1) + len(set(stored) - acked_any)


# --- The report ---------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def point_row(point: Point) -> str:
    cpu = point.cpu
    errors = sum(point.errors.values())
    lost = "-" if point.lost is None else str(point.lost)
    doubled = "-" if point.doubled is None else str(point.doubled)

    def per_trial(seconds: float) -> str:
        return f"{seconds / point.completed * 1000:.1f}" if point.completed else "-"

    return (
        f"{point.server:>7} {point.raters:>5} {point.joined:>5} {point.generators:>3} "
        f"{point.trials_per_s:>8.1f} {point.pace_share * 100:>5.0f}% "
        f"{_ms(point.latency(50)):>6} {_ms(point.latency(95)):>6} {_ms(point.latency(99)):>6} "
        f"{errors:>6} {lost:>5} {doubled:>7} "
        f"{per_trial(cpu.server_s):>8} {per_trial(cpu.postgres_s):>8} "
        f"{per_trial(point.generator_cpu_s):>8} "
        f"{point.generator_busy * 100:>5.0f}% "
        f"{_ms(point.percentile(point.loop_lag_ms, 99)):>5} "
        f"{cpu.machine_busy_s / point.seconds / (os.cpu_count() or 1) * 100:>5.0f}% "
        f"{point.load[0]:>5.2f}"
    )


HEADER = (
    " server     N  conn gen trials/s  pace  p50ms  p95ms  p99ms errors  lost doubled "
    "srv-ms/t  db-ms/t gen-ms/t  gen% lag99  busy load1"
)
LEGEND = """\
  N: raters asked for; conn: raters who consented and opened the socket; gen: generator
  processes. trials/s: answers whose next trial arrived in the window. pace: achieved trials
  per rater and second over the intended ones (100%: on pace). p50/p95/p99: answer sent ->
  next `trial` received, over the answers sent in the window that got one. errors: error
  messages, HTTP errors, dropped or timed-out sockets (listed below). lost: acked (duplicate:
  false) but not stored; doubled: more than one row per trial, or stored but never acked.
  K=2: two workers connecting to PostgreSQL directly, a new connection per request and per
  socket message (DATABASE_CONN_MAX_AGE 0); K=2+pgb: the same through pgbouncer (a session
  pool of --pool-size server connections). srv-ms/t, db-ms/t, gen-ms/t: CPU ms per trial of
  the server's processes, of every postgres and pgbouncer process on the machine (other
  databases too: the echo rows show that background), and of the load generator. gen%: the
  generator's CPU over its processes' cores. lag99: p99 of how late the generator's loop woke
  from a 50 ms sleep (ms). busy: the machine's CPU use over all its cores. load1:
  os.getloadavg()[0] at the window's end."""


def report(points: list[Point], args) -> None:
    print()
    print(HEADER)
    for point in points:
        print(point_row(point))
    print(LEGEND)
    for point in points:
        details = dict(point.errors)
        if point.unacked:
            details["answers never acked"] = point.unacked
        if point.reconnects:
            details["reconnects"] = point.reconnects
        if point.raters_lost:
            details["raters who gave up"] = point.raters_lost
        if point.server_log_errors:
            details["tracebacks in the server's log (so far)"] = point.server_log_errors
        if details:
            print(
                f"  {point.server} N={point.raters}: "
                + ", ".join(f"{k} {v}" for k, v in details.items())
            )
        redis = f"{point.cpu.redis_s / point.completed * 1000:.1f}" if point.completed else "-"
        print(
            f"  {point.server} N={point.raters}: joined (landing, start, task, socket, hello) "
            f"in {point.join_s:.1f} s; Redis {redis} CPU ms per trial; answers were "
            f"late on their schedule by p50 {_ms(point.percentile(point.lateness_ms, 50))} / "
            f"p99 {_ms(point.percentile(point.lateness_ms, 99))} ms"
        )

    echo = {p.raters: p for p in points if p.server == "echo"}
    print()
    print("Latency against the echo baseline at the same N (server / echo):")
    for point in points:
        base = echo.get(point.raters)
        if point.server == "echo" or base is None or not point.latencies_ms:
            continue
        ratios = "   ".join(
            f"p{q} {point.latency(q) / base.latency(q):6.1f}x" for q in (50, 95, 99)
        )
        print(f"  {point.server:>7} N={point.raters:<5} {ratios}")

    kept = [
        p.raters for p in echo.values() if p.pace_kept and p.generator_busy <= GENERATOR_BUSY_KEPT
    ]
    missed = sorted(p.raters for p in echo.values() if p.raters not in kept)
    print()
    if kept:
        print(
            f"The load generator keeps the pace (against the echo baseline: >= {PACE_KEPT:.0%} "
            f"of it or within counting noise, each generator process under "
            f"{GENERATOR_BUSY_KEPT:.0%} of a core) up to N = {max(kept)} on this machine"
            + (f"; not at N = {', '.join(map(str, missed))}" if missed else "")
            + "."
        )
        for point in points:
            if point.raters == max(kept) and point.server != "echo" and point.completed:
                cpu = point.cpu
                per_trial = (cpu.server_s + cpu.postgres_s) / max(1, point.completed) * 1000
                print(
                    f"  At N = {max(kept)}, {point.server}: {per_trial:.1f} ms of server + "
                    f"PostgreSQL CPU per trial ({point.trials_per_s:.1f} trials/s)."
                )
    else:
        print(
            "The load generator could not keep the pace even against the echo server here: "
            "the server rows measure the generator as much as the server."
        )
    for point in points:
        if point.server != "echo" and not point.pace_kept:
            reason = (
                "the generator was behind too"
                if echo.get(point.raters) and echo[point.raters].raters not in kept
                else "the server was the bottleneck"
            )
            print(
                f"  {point.server} N={point.raters}: raters kept {point.pace_share:.0%} of the "
                f"intended pace ({reason})."
            )

    print()
    target = [p for p in points if p.server != "echo" and p.raters >= TARGET_RATERS]
    print(
        f"Target (the issue): {TARGET_RATERS:,} concurrent raters at p99 <= "
        f"{TARGET_P99_MS:.0f} ms with nothing lost."
    )
    if not target:
        largest = max((p.raters for p in points if p.server != "echo"), default=0)
        print(f"  Not measured in this run (largest N here: {largest}).")
    for point in target:
        met = (
            point.latency(99) <= TARGET_P99_MS
            and point.lost == 0
            and point.doubled == 0
            and point.joined >= TARGET_RATERS
            and point.pace_kept
        )
        print(
            f"  {point.server} N={point.raters}: {'MET' if met else 'not met'} (p99 "
            f"{_ms(point.latency(99))} ms, lost {point.lost}, doubled {point.doubled}, "
            f"{point.joined} connected, pace {point.pace_share:.0%})"
        )


# --- Main ---------------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raters", type=int, nargs="+", default=[25, 100])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per point")
    parser.add_argument("--warmup", type=float, default=6.0, help="seconds before the window")
    parser.add_argument("--drain", type=float, default=10.0, help="seconds after it, at most")
    parser.add_argument("--pace", type=float, default=2.0, help="seconds per trial per rater")
    parser.add_argument("--generators", type=int, default=0, help="0: one per 300 raters")
    parser.add_argument("--image-size", type=int, default=128, help="pixels a side")
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument(
        "--via",
        nargs="+",
        choices=["direct", "pgbouncer"],
        default=["direct", "pgbouncer"],
        help="how the workers reach PostgreSQL: directly, through pgbouncer, or both in turn",
    )
    parser.add_argument(
        "--pool-size", type=int, default=20, help="pgbouncer's server connections (--via)"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run: does it work?")
    args = parser.parse_args()
    if args.quick:
        args.raters, args.workers = [5], [1]
        args.seconds, args.warmup, args.drain = 6.0, 2.0, 5.0
    return args


def _stop_on_sigterm(signum, frame) -> None:
    # As Ctrl-C does: unwind, so that the finally blocks stop the servers and generators.
    raise SystemExit(128 + signum)


def main() -> None:
    args = arguments()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    targets_check(args.database_url, args.redis_url)
    points: list[Point] = []
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="hype-bench-load-") as temporary:
        folder = Path(temporary)
        env = server_environment(args.database_url, args.redis_url, folder)
        os.environ.update(env)
        print(
            f"Setting up: database {urllib.parse.urlsplit(args.database_url).path.lstrip('/')} "
            f"(dropped and created), Redis {args.redis_url} (flushed), migrate, collectstatic, "
            "the study...",
            flush=True,
        )
        database_recreate(args.database_url)
        redis_flush(args.redis_url)
        manage(env, "migrate", "--noinput", "--verbosity", "0")
        manage(env, "collectstatic", "--noinput", "--verbosity", "0")
        study = study_make(folder / "images", raters=max(args.raters), side=args.image_size)
        print(
            f"Rater path under load, one trial per {args.pace:g} s per rater: {study.description}."
        )
        print(
            f"Server: uvicorn hype.asgi:application --workers K --lifespan off (as make serve), "
            f"DEBUG=0 over plain http, {args.database_url}, {args.redis_url}. Baseline: the same "
            "uvicorn serving bench/load_echo.py (no Django, no database), 1 worker."
        )
        from django.conf import settings

        print(
            "Rater sockets' database threads per worker: "
            f"HYPE_RATER_DATABASE_THREADS={settings.HYPE_RATER_DATABASE_THREADS}, each keeping "
            f"its connection HYPE_RATER_CONNECTION_MAX_AGE_S="
            f"{settings.HYPE_RATER_CONNECTION_MAX_AGE_S} s (0: one per message)."
        )
        print(
            f"Machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at the start; "
            f"window {args.seconds:g} s after {args.warmup:g} s of warm-up, per point.",
            flush=True,
        )
        print(HEADER, flush=True)
        echo_env = {**env, "LOAD_ECHO_IMAGE_BYTES": str(study.image_bytes)}
        try:
            echo = Server(
                "load_echo:application",
                1,
                echo_env,
                folder / "echo.log",
                extra=("--app-dir", str(REPOSITORY / "bench")),
            )
            servers.append(echo)
            echo.wait_ready()
            for raters in args.raters:
                point = point_run(
                    echo, "echo", study="echo", raters=raters, args=args, run_id=f"echo{raters}"
                )
                points.append(point)
                print(point_row(point), flush=True)
            echo.stop()
            for workers in args.workers:
                for via in args.via:
                    label = f"K={workers}" + ("+pgb" if via == "pgbouncer" else "")
                    with contextlib.ExitStack() as stack:
                        server_env = env
                        if via == "pgbouncer":
                            bouncer = stack.enter_context(
                                pgbouncer_running(
                                    database_url=args.database_url, pool_size=args.pool_size
                                )
                            )
                            server_env = {**env, "DATABASE_URL": bouncer}
                        server = Server(
                            "hype.asgi:application",
                            workers,
                            server_env,
                            folder / f"server-{workers}-{via}.log",
                        )
                        servers.append(server)
                        server.wait_ready()
                        for raters in args.raters:
                            point = point_run(
                                server,
                                label,
                                study=study.public_id,
                                raters=raters,
                                args=args,
                                run_id=f"k{workers}{via}n{raters}",
                            )
                            answers_check(point, study.public_id)
                            points.append(point)
                            print(point_row(point), flush=True)
                            rater_data_clear()
                        if server.log_errors():
                            print(
                                "  The first traceback in the server's log:\n"
                                f"{server.first_traceback()}"
                            )
                        server.stop()
        finally:
            for server in servers:
                server.stop()
        report(points, args)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("Interrupted: the servers and the load generators are stopped.")
