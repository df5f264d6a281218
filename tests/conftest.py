"""Fixtures for the whole suite: a fresh cache for every test, and the ASGI app served on a
live port."""

import pytest
from django.core.cache import cache

from experiments.simulation.server import server_in_thread


@pytest.fixture
def live_server_url(transactional_db):
    """http://127.0.0.1:<port> serving the whole ASGI app - pages, static files, websockets -
    from uvicorn in a thread (experiments.simulation.server), on the test's database.

    transactional_db, because the server's threads open their own connections: they see what
    the test commits (the SQLite test database is a file, see hype/settings.py; PostgreSQL
    with DATABASE_URL)."""
    with server_in_thread(static=True) as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Failed logins, throttles and flood counts live in the cache (Redis when REDIS_URL is
    set, which outlives a test): every test starts with none."""
    cache.clear()
    yield
