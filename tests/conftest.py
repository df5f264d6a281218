"""Fixtures for the whole suite: a fresh cache and channel layer for every test, and the ASGI
app served on a live port."""

import pytest
from channels.layers import channel_layers
from django.core.cache import cache

from experiments.rating.threads import rater_threads_close
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


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """Every study in the tests has an owner with a password, and the production hasher takes
    a fifth of a second per password by design: the tests hash with MD5 (what Django's own
    test advice suggests). Logins, lockouts and the API token work the same with any hasher."""
    from django.conf import settings
    from django.contrib.auth.hashers import get_hashers

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_hashers.cache_clear()
    yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Failed logins, throttles and flood counts live in the cache (Redis when REDIS_URL is
    set, which outlives a test): every test starts with none."""
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _rater_threads_disconnected():
    """The rater sockets' database threads keep their connections between messages: closed
    after each test, so that no test finds another's, and PostgreSQL can drop the test
    database at the end."""
    yield
    rater_threads_close()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Every test gets its own channel layer instance. Channels keeps one per process, and a
    layer's receive lock and queues belong to the event loop that first used them: each test
    (and each live server) runs its own loop, and a receive left pending when an earlier loop
    stopped made a later test's consumers fail with "bound to a different event loop". A
    production worker has one loop for its whole life, so this is the tests' problem only."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
