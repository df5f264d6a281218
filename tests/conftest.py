"""Fixtures for the whole suite: the ASGI app served on a live port."""

import socket
import threading
import time

import pytest

START_TIMEOUT_S = 10


def free_socket() -> socket.socket:
    """A listening socket on a free port, bound now so that nobody takes the port meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@pytest.fixture
def live_server_url(transactional_db):
    """http://127.0.0.1:<port> serving the whole ASGI app - pages, static files, websockets -
    from uvicorn in a thread, on the test's database.

    transactional_db, because the server's threads open their own connections: they see what
    the test commits (the SQLite test database is a file, see hype/settings.py; PostgreSQL
    with DATABASE_URL)."""
    import uvicorn
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from hype.asgi import application

    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        ASGIStaticFilesHandler(application),
        lifespan="off",  # Channels' router has no lifespan handler.
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    # Off the main thread uvicorn leaves the signal handlers (pytest's) alone.
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            pytest.fail(f"the live server did not start on port {port}", pytrace=False)
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(START_TIMEOUT_S)
        sock.close()
        assert not thread.is_alive(), "the live server did not stop"
