"""The whole ASGI app (pages, static files, websockets) served by uvicorn in a thread of this
process: what simulated raters, the demo and the tests' live server run against."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from experiments.simulation.plan import SimulationError


@contextmanager
def server_in_thread(*, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """The whole ASGI app served by uvicorn in a thread of this process (port 0: a free
    one); yields its base URL and stops it on exit."""
    import socket

    try:
        import uvicorn
    except ImportError:
        raise SimulationError("the in-process server needs uvicorn: make install") from None
    from hype.asgi import application

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(
        application,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    # Off the main thread uvicorn installs no signal handlers, so Ctrl-C still reaches us.
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{bound}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise SimulationError(f"the simulation's server did not start on port {bound}")
            time.sleep(0.02)
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(10)
        sock.close()
