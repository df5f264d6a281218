"""The rater path's compiled statements build what the ORM builds, and the rater threads keep
their database connection between messages, one thread per rater session."""

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync
from django.db import connection, connections, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from experiments.models import RaterSession, Trial
from experiments.rating.sessions import _SESSION_LOCKED, STUDY_FIELDS_NOT_RATED
from experiments.rating.statements import TEXT_MARKER, CompiledGet
from experiments.rating.threads import in_rater_thread, rater_threads_close
from tests.raters import live_study_make, rater_in

pytestmark = pytest.mark.django_db(transaction=True)


def _orm_session(pk: int) -> RaterSession:
    return (
        RaterSession.objects.select_related("study", "current_trial__block")
        .defer(*(f"study__{name}" for name in STUDY_FIELDS_NOT_RATED))
        .get(pk=pk)
    )


def _fields(obj) -> dict:
    deferred = obj.get_deferred_fields()
    return {
        f.attname: getattr(obj, f.attname)
        for f in obj._meta.concrete_fields
        if f.attname not in deferred
    }


def test_a_compiled_get_builds_the_same_objects_as_the_orm_with_their_related_rows():
    study = live_study_make()
    session, _ = rater_in(study)
    with transaction.atomic():
        compiled = _SESSION_LOCKED.get(session.id)
    expected = _orm_session(session.id)
    assert _fields(compiled) == _fields(expected)
    assert compiled.get_deferred_fields() == expected.get_deferred_fields()
    assert _fields(compiled.study) == _fields(expected.study)
    assert compiled.study.get_deferred_fields() == expected.study.get_deferred_fields()
    assert compiled.current_trial is not None
    assert _fields(compiled.current_trial) == _fields(expected.current_trial)
    assert _fields(compiled.current_trial.block) == _fields(expected.current_trial.block)
    # The related rows came with the one statement: reading them runs none.
    with CaptureQueriesContext(connection) as queries:
        read = (compiled.study.public_id, compiled.current_trial.block.kind)
    assert read == (study.public_id, expected.current_trial.block.kind)
    assert queries.captured_queries == []


def test_it_compiles_once_and_then_runs_one_statement_per_call_with_the_new_key():
    study = live_study_make()
    first, _ = rater_in(study)
    second, _ = rater_in(study)
    trials = CompiledGet(
        lambda: Trial.objects.select_related("session"), key="public_id", marker=TEXT_MARKER
    )
    one = Trial.objects.filter(session=first).first()
    other = Trial.objects.filter(session=second).first()
    trials.get(one.public_id)
    with CaptureQueriesContext(connection) as queries:
        assert trials.get(other.public_id).session_id == second.id
        assert trials.get(one.public_id).session_id == first.id
    assert len(queries.captured_queries) == 2


def test_a_missing_key_raises_the_models_does_not_exist():
    with pytest.raises(RaterSession.DoesNotExist), transaction.atomic():
        _SESSION_LOCKED.get(987_654_321)


def test_a_locking_statement_refuses_to_run_outside_a_transaction_even_once_compiled():
    study = live_study_make()
    session, _ = rater_in(study)
    with transaction.atomic():
        _SESSION_LOCKED.get(session.id)
    with pytest.raises(TransactionManagementError):
        _SESSION_LOCKED.get(session.id)


def test_each_thread_compiles_its_own_plan_on_its_own_connection():
    study = live_study_make()
    session, _ = rater_in(study)
    found = []

    def elsewhere():
        with transaction.atomic():
            found.append(_SESSION_LOCKED.get(session.id).id)
        connections.close_all()

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert found == [session.id]


def _connect() -> str:
    connection.ensure_connection()
    return threading.current_thread().name


def _still_open() -> bool:
    # Runs after the thread's check of its connection, as a message's service does.
    return connection.connection is not None


def test_a_rater_threads_connection_stays_open_between_messages():
    assert async_to_sync(in_rater_thread)(7, _connect).startswith("hype-rater-db-")
    assert async_to_sync(in_rater_thread)(7, _still_open) is True


def test_with_a_max_age_of_zero_each_message_opens_its_own_connection(settings):
    settings.HYPE_RATER_CONNECTION_MAX_AGE_S = 0
    async_to_sync(in_rater_thread)(7, _connect)
    assert async_to_sync(in_rater_thread)(7, _still_open) is False


def test_closing_the_rater_threads_closes_their_connections():
    async_to_sync(in_rater_thread)(7, _connect)
    rater_threads_close()
    assert async_to_sync(in_rater_thread)(7, _still_open) is False


def test_the_same_rater_always_runs_on_the_same_thread_in_order():
    names = async_to_sync(_names_in_order)(session_id=11, count=20)
    assert len({name for name, _ in names}) == 1
    assert [index for _, index in names] == list(range(20))


async def _names_in_order(*, session_id: int, count: int) -> list[tuple[str, int]]:
    def named(index):
        return threading.current_thread().name, index

    return list(
        await asyncio.gather(*(in_rater_thread(session_id, named, i) for i in range(count)))
    )
