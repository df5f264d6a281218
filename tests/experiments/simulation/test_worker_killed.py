"""Kill -9 one of two uvicorn workers on PostgreSQL + Redis while 20 simulated raters take a
study: the raters on it reconnect and complete, no answer is lost or stored twice, and the
dead worker's channel-layer group entries carry the timestamps by which they expire."""

from __future__ import annotations

import os
import signal
import time

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.db.models import Count
from redis import Redis

from experiments.models import Answer, RaterSession, Trial
from experiments.simulation.plan import plan_make
from tests.raters import live_study_make
from tests.workers import RatersInThread, workers_database_url, workers_running

pytestmark = pytest.mark.slow

RATERS = 20
TRIALS = 24  # one timed block, no qualification
# 0.4 s a trial: a rater takes about 10 s, long enough to kill a worker in the middle.
THINK_MS = 400
# A third of all answers: every rater is well into its block, none still joining (a rater
# whose start page fails does not retry, so the kill must not land on a join).
KILL_AT_ANSWERS = RATERS * TRIALS // 3
RUN_TIMEOUT_S = 120


@pytest.fixture
def two_workers(transactional_db, tmp_path):
    """Two uvicorn worker processes on the test database that pytest-django created
    (transactional_db: what the test writes is committed, so the workers see it) and on the
    test's Redis."""
    with workers_running(count=2, database_url=workers_database_url(), folder=tmp_path) as workers:
        yield workers


def test_a_worker_killed_mid_study_loses_no_answer_and_every_rater_completes_on_the_other(
    two_workers,
):
    workers = two_workers
    study = live_study_make(
        real=40,
        fakes_per_model=40,
        qualification_trials=0,
        time_blocks=1,
        time_trials_per_block=TRIALS,
        raters_per_model=RATERS,
    )
    plan = plan_make(
        study,
        base_url=workers.base_url,
        raters=RATERS,
        concurrency=RATERS,
        think_ms=THINK_MS,
        seed=0,
    )
    thread = RatersInThread(plan)
    lines = thread.lines
    thread.start()

    try:
        # Wait until every rater is on its websocket, a third of the way through.
        answers = Answer.objects.filter(trial__session__study=study)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while (
            answers.count() < KILL_AT_ANSWERS
            or answers.values("trial__session").distinct().count() < RATERS
        ):
            assert thread.is_alive(), (
                f"the raters finished before the kill: {thread.outcome}\n{lines}"
            )
            assert time.monotonic() < deadline, f"no answers come:\n{workers.log_tail()}"
            time.sleep(0.05)
        held = workers.sockets_by_worker()
        # The kernel shares the connections out between the workers as it likes: kill the one
        # holding the most, so that the kill certainly cuts raters off. uvicorn's supervisor
        # starts a new worker in its place; the raters reconnect to whichever accepts them.
        victim = max(held, key=held.get)
        survivor = next(pid for pid in held if pid != victim)
        answers_at_kill = answers.count()
        os.kill(victim, signal.SIGKILL)

        thread.join(RUN_TIMEOUT_S)
        assert not thread.is_alive(), f"the raters did not finish:\n{lines}\n{workers.log_tail()}"
    finally:
        if thread.is_alive():
            # Stop the server first: the raters then give up within their reconnects, and no
            # thread of theirs still holds a connection to the test database at its teardown.
            workers.stop()
            thread.join(RUN_TIMEOUT_S)
    report = thread.report()
    print(
        f"sockets per worker at the kill {held}, killed {victim} after {answers_at_kill} "
        f"answers; workers now {workers.pids()}; reconnects "
        f"{sum(r.reconnects for r in report.raters)}, duplicates acked "
        f"{sum(r.duplicates for r in report.raters)}, {report.seconds:.1f} s"
    )

    # The kill hit raters, and those raters came back.
    assert held[victim] > 0, held
    assert victim not in workers.pids() and survivor in workers.pids()
    reconnected = {r.external_id for r in report.raters if r.reconnects}
    assert len(reconnected) == held[victim], (held, [r.reconnects for r in report.raters])

    # Every rater completed, by the simulation's account and by the server's.
    assert not report.failures, [r.error for r in report.failures]
    assert [r.outcome for r in report.raters] == ["completed"] * RATERS
    sessions = {s.external_id: s for s in RaterSession.objects.filter(study=study)}
    assert len(sessions) == RATERS
    assert {s.status for s in sessions.values()} == {RaterSession.Status.COMPLETED}

    # Nothing lost, nothing doubled: every trial of every session has exactly one answer.
    # Every stored answer was acknowledged - as new, or as a duplicate when the worker died
    # between storing it and acknowledging it and the rater sent it again - except, at most
    # once a reconnect, one whose ack died with the worker and that the rater then dropped
    # because the server had moved on to the next trial (it holds an answer for one trial).
    for run in report.raters:
        session = sessions[run.external_id]
        stored = Answer.objects.filter(trial__session=session).count()
        assert Trial.objects.filter(session=session).count() == TRIALS
        assert stored == TRIALS, (run, stored)
        assert 0 <= stored - (run.answers + run.duplicates) <= run.reconnects, run
        assert not Trial.objects.filter(session=session, answer__isnull=True).exists()
    doubled = (
        Answer.objects.filter(trial__session__study=study)
        .values("trial")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not doubled.exists()

    # The dead worker never left its raters' groups (its disconnect never ran): each rater it
    # served keeps one entry in Redis, its channel there; the live connections left theirs.
    # The entries carry the time they were added, the groups the layer's group_expiry: a
    # group_send drops an entry older than that, and Redis the whole group after it.
    layer = get_channel_layer()
    # Hours, not channels_redis's default day (hype/settings.py, HYPE_CHANNEL_GROUP_EXPIRY_S).
    assert layer.group_expiry == settings.CHANNEL_LAYERS["default"]["CONFIG"]["group_expiry"]
    assert layer.group_expiry <= 4 * 3600
    redis = Redis.from_url(os.environ["REDIS_URL"])
    now = time.time()
    stale: dict[str, list[tuple[bytes, float]]] = {}
    for external_id, session in sessions.items():
        key = f"{layer.prefix}:group:rater.{session.public_id}"
        entries = redis.zrange(key, 0, -1, withscores=True)
        if entries:
            stale[external_id] = entries
            assert 0 < redis.ttl(key) <= layer.group_expiry, (key, redis.ttl(key))
    assert set(stale) == reconnected
    channels = [channel for entries in stale.values() for channel, _ in entries]
    assert len(channels) == len(reconnected)
    # One dead process's channels: channels_redis names them after its layer's client prefix.
    (dead,) = {channel.split(b"!")[0] + b"!" for channel in channels}
    # Each reconnect told the rater's group that an older tab must stand down: what went to
    # the dead channel waits in its process's inbox, which expires after the layer's expiry.
    inbox = layer.prefix.encode() + dead
    assert 0 < redis.ttl(inbox) <= layer.expiry, (inbox, redis.ttl(inbox))
    added = [score for entries in stale.values() for _, score in entries]
    assert all(now - RUN_TIMEOUT_S < score <= now for score in added)

    # A layer whose group_expiry their age exceeds drops them at its next group_send.
    time.sleep(max(0.0, 2.0 - (now - max(added))))
    impatient = RedisChannelLayer(hosts=[os.environ["REDIS_URL"]], group_expiry=1)

    async def send_to_every_group():
        for session in sessions.values():
            await impatient.group_send(f"rater.{session.public_id}", {"type": "nothing.here"})
        await impatient.close_pools()  # flush() would delete every group itself

    async_to_sync(send_to_every_group)()
    for session in sessions.values():
        assert redis.zcard(f"{layer.prefix}:group:rater.{session.public_id}") == 0
    redis.close()
