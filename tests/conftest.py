"""Fixtures for the whole suite: the ASGI app served on a live port."""

import pytest

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
