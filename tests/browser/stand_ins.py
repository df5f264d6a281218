"""Local stand-ins for the crowd platforms' pages, on their own ports (so on another origin
than HYPE's): Prolific's completion URL, and an MTurk worker site that frames the rater page
and takes the finished assignment at /mturk/externalSubmit. Each records what it was sent,
with what `on_request()` returned at that moment (for instance, the answers stored so far)."""

from __future__ import annotations

import contextlib
import html
import http.server
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    """One request a stand-in received."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    seen: Any  # what on_request() returned when it arrived


@dataclass
class StandIn:
    url: str
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def frame_url(self, src: str) -> str:
        """A page of this stand-in that frames `src`, as MTurk frames an ExternalQuestion."""
        return f"{self.url}/frame?{urllib.parse.urlencode({'src': src})}"


def _handler(stand_in: StandIn, on_request: Callable[[], Any]):
    class Handler(http.server.BaseHTTPRequestHandler):
        def _record(self, method: str, form: dict[str, list[str]]) -> Received:
            parts = urllib.parse.urlsplit(self.path)
            received = Received(
                method=method,
                path=parts.path,
                query=urllib.parse.parse_qs(parts.query),
                form=form,
                seen=on_request(),
            )
            stand_in.received.append(received)
            stand_in.arrived.set()
            return received

        def _page(self, body: str) -> None:
            data = f"<!doctype html><html><body>{body}</body></html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - the http.server interface
            parts = urllib.parse.urlsplit(self.path)
            if parts.path == "/frame":
                src = urllib.parse.parse_qs(parts.query).get("src", [""])[0]
                self._page(
                    f'<h1>Worker site</h1><iframe id="hit" src="{html.escape(src)}" '
                    'width="1200" height="760"></iframe>'
                )
                return
            if parts.path == "/favicon.ico":  # the browser's own request, not the page's
                self.send_error(404)
                return
            received = self._record("GET", {})
            self._page(f"<h1>Stand-in</h1><p id='received'>{html.escape(str(received.query))}</p>")

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            self._record("POST", form)
            self._page("<h1>Submitted</h1><p id='submitted'>The HIT was submitted.</p>")

        def log_message(self, format, *args):
            pass

    return Handler


@contextlib.contextmanager
def stand_in_serving(on_request: Callable[[], Any] = lambda: None) -> Iterator[StandIn]:
    """A stand-in on http://127.0.0.1:<free port>, served from a thread while the block runs."""
    stand_in = StandIn(url="")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(stand_in, on_request))
    server.daemon_threads = True
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="stand-in", daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
