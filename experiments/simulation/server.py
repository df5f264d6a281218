"""The whole ASGI app (pages, static files, websockets) served by uvicorn in a thread of this
process: what simulated raters, the demo and the tests' live server run against."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from experiments.simulation.plan import SimulationError

START_TIMEOUT_S = 10


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket (port 0: a free one), bound now so that nobody takes the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


@contextmanager
def server_in_thread(
    *, host: str = "127.0.0.1", port: int = 0, app: Any = None, static: bool = False
) -> Iterator[str]:
    """The whole ASGI app (or `app`) served by uvicorn in a thread of this process, on `port`
    (0: a free one); yields its base URL and stops it on exit. static: serve the static files
    too, as runserver does (the browser tests need the pages' scripts)."""
    try:
        import uvicorn
    except ImportError:
        raise SimulationError("the in-process server needs uvicorn: make install") from None
    if app is None:
        from hype.asgi import application as app
    if static:
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        app = ASGIStaticFilesHandler(app)
    sock = listening_socket(host, port)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",  # Channels' router has no lifespan handler.
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    # Off the main thread uvicorn installs no signal handlers, so Ctrl-C (and pytest's own
    # handlers) still reach the main thread.
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{bound}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise SimulationError(f"the in-process server did not start on port {bound}")
            time.sleep(0.02)
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(START_TIMEOUT_S)
        sock.close()
        if thread.is_alive():
            raise SimulationError(f"the in-process server on port {bound} did not stop")
