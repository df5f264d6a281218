"""Browser fixtures: Debian's Chromium through Playwright and a plain static server for pages
that need no Django (the live ASGI server is in tests/conftest.py).
"""

import contextlib
import functools
import http.server
import os
import threading
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
STATIC_ROOT = Path(__file__).resolve().parents[2] / "static"
START_TIMEOUT_S = 10


def launch_chromium(playwright):
    """Debian's Chromium: Playwright cannot download a browser here."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"The browser tests need Debian's Chromium at {CHROMIUM}: "
            "sudo apt-get install -y chromium (or run `make test` as root).",
            pytrace=False,
        )
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )


@pytest.fixture(scope="package")
def chromium():
    """One browser for all the tests of this package.

    Package scope, not session: between its sync calls Playwright leaves its event loop marked
    as running in the main thread, and Django then refuses ORM calls there
    (SynchronousOnlyOperation) - the test's own and the test database's flush alike. The
    check is switched off while the browser lives and back on when the browser tests are
    over, so that the rest of the suite keeps it.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(chromium):
    """A fresh 1280x800 context and page; an uncaught error in the page fails the test."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",  # module scripts are refused under another type
    }

    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serving_static(root: Path = STATIC_ROOT):
    """http://127.0.0.1:<port>/ serving `root` from a thread, as plain files."""
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="static-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(START_TIMEOUT_S)


@pytest.fixture(scope="package")
def static_server_url():
    """/work/main/static as plain files (the timing harness runs without Django)."""
    with serving_static() as url:
        yield url


def pytest_collection_modifyitems(config, items):
    """Every test in this folder drives Chromium, whether or not its module says so: CI's
    second pass selects by the `browser` mark."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.browser)
