"""The threads that run the rater sockets' database work: a few per worker process, each
keeping its database connection between messages instead of opening one per message, and
each rater's messages always on the same thread, in the order they came."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

Result = TypeVar("Result")

_lock = threading.Lock()
_executors: list[ThreadPoolExecutor] = []
_callers: list[SyncToAsync] = []


def _caller_for(session_id: int) -> SyncToAsync:
    with _lock:
        if not _executors:
            for i in range(settings.HYPE_RATER_DATABASE_THREADS):
                executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"hype-rater-db-{i}"
                )
                _executors.append(executor)
                _callers.append(
                    SyncToAsync(_in_rater_thread, thread_sensitive=False, executor=executor)
                )
        return _callers[session_id % len(_callers)]


def _connection_kept() -> None:
    """This thread's connection lives for HYPE_RATER_CONNECTION_MAX_AGE_S, health-checked
    before each message's first statement (a connection PostgreSQL or the pool dropped is
    replaced, not failed on). Only these threads' connections: the settings dict is this
    thread's own copy, and HTTP requests keep closing theirs after each request."""
    connection = connections[DEFAULT_DB_ALIAS]
    max_age = settings.HYPE_RATER_CONNECTION_MAX_AGE_S
    if connection.settings_dict.get("CONN_MAX_AGE") != max_age:
        connection.settings_dict = {
            **connection.settings_dict,
            "CONN_MAX_AGE": max_age,
            "CONN_HEALTH_CHECKS": max_age > 0,
        }
        if connection.connection is not None:
            connection.close_at = time.monotonic() + max_age


def _in_rater_thread(function: Callable[..., Result], args, kwargs) -> Result:
    connection = connections[DEFAULT_DB_ALIAS]
    _connection_kept()
    # Closes a connection that failed, is in a transaction it should not be, or is too old.
    connection.close_if_unusable_or_obsolete()
    try:
        return function(*args, **kwargs)
    finally:
        connection.close_if_unusable_or_obsolete()


async def in_rater_thread(
    session_id: int, function: Callable[..., Result], /, *args: Any, **kwargs: Any
) -> Result:
    """Run function(*args, **kwargs) on the database thread of rater session session_id."""
    return await _caller_for(session_id)(function, args, kwargs)


def rater_threads_close() -> None:
    """Close the connections the rater threads hold (at the end of a test session: PostgreSQL
    cannot drop a database that has connections)."""
    with _lock:
        executors = list(_executors)
    for executor in executors:
        executor.submit(connections.close_all).result()
