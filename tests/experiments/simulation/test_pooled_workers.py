"""Four worker processes behind PgBouncer, as docs/deployment.md deploys them: many simulated
raters at once complete their study, PostgreSQL never holds more connections than the pool,
the workers' connections beyond it wait their turn, and nothing is refused ("too many
clients") or lost."""

from __future__ import annotations

import time

import pytest
from django.db.models import Count

from experiments.models import Answer, RaterSession
from experiments.simulation.pgbouncer import pgbouncer_pools, pgbouncer_running, pgbouncer_servers
from experiments.simulation.plan import plan_make
from tests.raters import live_study_make
from tests.workers import RatersInThread, workers_database_url, workers_running

pytestmark = pytest.mark.slow

WORKERS = 4
# Each worker's rater thread keeps one connection (experiments.rating.threads), so the pool
# must be larger than the workers' rater threads: the other two serve every image request of
# the 40 raters in turn. Fewer PostgreSQL connections than the workers' threads could ask for:
# the pool is what bounds them.
POOL = WORKERS + 2
RATERS = 40
TRIALS = 12
RUN_TIMEOUT_S = 180


def test_four_workers_behind_pgbouncer_serve_forty_raters_on_a_pool_of_six_connections(
    transactional_db, tmp_path
):
    study = live_study_make(
        real=20,
        fakes_per_model=20,
        qualification_trials=0,
        time_blocks=1,
        time_trials_per_block=TRIALS,
        raters_per_model=RATERS,
    )
    with (
        pgbouncer_running(database_url=workers_database_url(), pool_size=POOL) as bouncer,
        workers_running(count=WORKERS, database_url=bouncer, folder=tmp_path) as workers,
    ):
        plan = plan_make(
            study, base_url=workers.base_url, raters=RATERS, concurrency=RATERS, think_ms=50, seed=1
        )
        thread = RatersInThread(plan)
        thread.start()
        servers_seen, waiting_seen = 0, 0
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while thread.is_alive() and time.monotonic() < deadline:
            servers_seen = max(servers_seen, len(pgbouncer_servers(bouncer)))
            waiting_seen = max(
                waiting_seen, sum(int(p["cl_waiting"]) for p in pgbouncer_pools(bouncer))
            )
            time.sleep(0.05)
        thread.join(10)
        log = workers.log.read_text(errors="replace")
    report = thread.report()
    print(
        f"{RATERS} raters on {WORKERS} workers: at most {servers_seen} PostgreSQL connections "
        f"(pool {POOL}), at most {waiting_seen} worker connections waiting, "
        f"{report.seconds:.1f} s"
    )

    assert 0 < servers_seen <= POOL
    assert "too many clients" not in log and "Traceback" not in log, log[-3000:]
    assert not report.failures, [r.error for r in report.failures]
    assert [r.outcome for r in report.raters] == ["completed"] * RATERS
    sessions = RaterSession.objects.filter(study=study)
    assert {s.status for s in sessions} == {RaterSession.Status.COMPLETED}
    counts = sessions.annotate(n=Count("trials__answer")).values_list("n", flat=True)
    assert list(counts) == [TRIALS] * RATERS
    assert Answer.objects.filter(trial__session__study=study).count() == RATERS * TRIALS
