"""The production deployment in Chromium: a DEBUG=0 server in processes of its own, behind a
TLS-terminating proxy, serves the rater page with its hashed scripts, takes the researcher's
login and the rater's start through CSRF, gives https links, and a rater completes a study.

The server runs as `make serve WORKERS=2` runs it (uvicorn, two worker processes, trusting the
forwarded headers from 127.0.0.1 only) with exactly the production settings it is given, on a
SQLite file this test migrates and fills. The proxy is a small asyncio one that does what
Caddy or nginx do: it ends TLS, says X-Forwarded-Proto: https and X-Forwarded-For, and pipes
the bytes both ways, websocket upgrades included.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import re
import secrets
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.browser.conftest import VIEWPORT
from tests.browser.test_rater_flow import STATE  # where the rater's page is

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60
RESEARCHER, PASSWORD = "deployer", "a-long-deployment-password"

# What `manage.py shell` runs to make the researcher and a small HYPE_inf study, with
# the settings the server runs with; it prints the study's public id.
STUDY_SETUP = f"""
from django.contrib.auth import get_user_model
from experiments.models import Study
from tests.raters import live_study_make
owner = get_user_model().objects.create_user({RESEARCHER!r}, password={PASSWORD!r})
study = live_study_make(
    owner=owner, models=("model-a",), method=Study.Method.INF,
    qualification_trials=0, inf_trials=8, real=10, fakes_per_model=10,
)
print(study.public_id)
"""


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, valid for a day, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsProxy:
    """https://127.0.0.1:<port> in front of http://127.0.0.1:<upstream>, in a thread.

    One request per connection (it asks the server to close after answering), so that every
    request head passes through here and gets the forwarded headers; a websocket upgrade keeps
    its connection and is piped as it is. What a client sent as X-Forwarded-* is dropped, as
    a real proxy must. `seen` records each request line with the server's status line."""

    def __init__(self, upstream_port: int, certificate: tuple[Path, Path]):
        self.upstream_port = upstream_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*map(str, certificate))
        self.seen: list[list[str]] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tls-proxy", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        )
        self.port = server.sockets[0].getsockname()[1]
        self.started.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()
            self.loop.run_until_complete(server.wait_closed())
            self.loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        request_line, *fields = head.decode("latin-1").split("\r\n")[:-2]
        upgrade = any(f.lower().startswith("upgrade:") for f in fields)
        dropped = ("x-forwarded-",) if upgrade else ("x-forwarded-", "connection:", "keep-alive:")
        fields = [f for f in fields if not f.lower().startswith(dropped)]
        fields += [
            "X-Forwarded-Proto: https",
            f"X-Forwarded-For: {writer.get_extra_info('peername')[0]}",
        ]
        if not upgrade:
            fields.append("Connection: close")
        forwarded = "\r\n".join([request_line, *fields, "", ""]).encode("latin-1")
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_writer.write(forwarded)
        record = [request_line, ""]
        self.seen.append(record)

        async def pipe(source, sink, first_line: list[str] | None = None) -> None:
            try:
                while data := await source.read(65536):
                    if first_line is not None and not first_line[1]:
                        first_line[1] = data.split(b"\r\n", 1)[0].decode("latin-1")
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, ssl.SSLError):
                pass

        to_server = asyncio.ensure_future(pipe(reader, up_writer))
        to_browser = asyncio.ensure_future(pipe(up_reader, writer, record))
        # Whichever side closes first ends the exchange: the server once it has answered
        # (Connection: close), either side for a websocket.
        await asyncio.wait({to_server, to_browser}, return_when=asyncio.FIRST_COMPLETED)
        for task in (to_server, to_browser):
            task.cancel()
        for w in (up_writer, writer):
            w.close()

    def __enter__(self) -> TlsProxy:
        self.thread.start()
        assert self.started.wait(START_TIMEOUT_S), "the TLS proxy did not start"
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(START_TIMEOUT_S)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@contextmanager
def production_server(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """`make serve WORKERS=2`'s uvicorn on `port`, stopped (both workers) on exit."""
    command = [
        *(sys.executable, "-m", "uvicorn", "hype.asgi:application"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "2"),
        *("--lifespan", "off", "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"),
    ]
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert server.poll() is None, f"the server stopped:\n{log.read_text()}"
            try:
                # Plain http, straight to the worker, as a proxy's health check asks.
                with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
                    assert response.status == 200
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, f"no health check answer:\n{log.read_text()}"
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()  # uvicorn's supervisor stops its workers, then itself
        try:
            server.wait(START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(START_TIMEOUT_S)


def session_rows(database: Path, query: str) -> list[tuple]:
    with sqlite3.connect(database, timeout=20) as connection:
        return connection.execute(query).fetchall()


def wait_for_answers(database: Path, count: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while session_rows(database, "SELECT COUNT(*) FROM experiments_answer")[0][0] < count:
        assert time.monotonic() < deadline, f"answer {count} never reached the database"
        time.sleep(0.05)


@pytest.fixture
def deployment(tmp_path):
    """The DEBUG=0 server behind the TLS proxy: (https URL through the proxy, the worker's own
    plain http URL, the database file, the study's public id, the proxy)."""
    database = tmp_path / "hype.sqlite3"
    upstream = free_port()
    with TlsProxy(upstream, self_signed_certificate(tmp_path)) as proxy:
        origin = f"https://127.0.0.1:{proxy.port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # What a deployment sets (docs/deployment.md), and nothing from the suite's run.
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "CSRF_TRUSTED_ORIGINS": origin,
            "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
            "DATABASE_URL": f"sqlite:///{database}",
            "MEDIA_ROOT": str(tmp_path / "media"),
            "STATIC_ROOT": str(tmp_path / "static"),
            "LOG_LEVEL": "WARNING",
        }
        manage(env, "manage.py", "migrate", "--noinput")
        manage(env, "manage.py", "collectstatic", "--noinput", "--verbosity", "0")
        study = manage(env, "manage.py", "shell", "-c", STUDY_SETUP).strip().splitlines()[-1]
        with production_server(env, upstream, tmp_path / "server.log") as plain_url:
            yield origin, plain_url, database, study, proxy


@pytest.fixture
def new_page(chromium):
    """new_page(): a page in a fresh 1280x800 context of its own (its own cookies) that takes
    the proxy's self-signed certificate; an uncaught error in any of them fails the test."""
    contexts, errors = [], []

    def make():
        context = chromium.new_context(viewport=VIEWPORT, ignore_https_errors=True)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(error))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_a_rater_completes_a_study_on_a_debug_off_server_behind_a_tls_proxy(deployment, new_page):
    origin, plain_url, database, study, proxy = deployment

    # Straight to the worker over plain http a page is sent to https (the health check, which
    # production_server waited on, is not).
    with pytest.raises(urllib.error.HTTPError) as redirect:
        urllib.request.build_opener(NoRedirect).open(f"{plain_url}/accounts/login/", timeout=10)
    assert redirect.value.code == 301
    assert redirect.value.headers["Location"] == (
        f"{plain_url.replace('http://', 'https://')}/accounts/login/"
    )

    # The researcher logs in through the proxy (a POST through CSRF) and reads the rater link.
    researcher = new_page()
    researcher.goto(f"{origin}/accounts/login/")
    researcher.fill("input[name=username]", RESEARCHER)
    researcher.fill("input[name=password]", PASSWORD)
    with researcher.expect_response(lambda r: r.request.method == "POST") as login:
        researcher.click("button[type=submit]")
    assert login.value.status == 302
    study_page = researcher.goto(f"{origin}/studies/{study}/")
    assert study_page.headers["strict-transport-security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )
    rater_link = researcher.inner_text("#rater-link").strip()
    assert rater_link == f"{origin}/s/{study}/"

    # The rater follows it, in a browser of their own, and answers with the keyboard.
    rater = new_page()
    responses, sockets = [], []
    rater.on("response", lambda response: responses.append(response))
    rater.on("websocket", lambda ws: sockets.append(ws.url))
    rater.goto(rater_link)
    rater.check("input[name=consent]")
    with rater.expect_response(lambda r: r.request.method == "POST") as start:
        rater.click("button[type=submit]")
    assert start.value.status == 302
    rater.wait_for_url("**/task")
    answers = 0
    while (state := rater.wait_for_function(STATE, timeout=20_000).json_value()) != "done":
        if state == "panel":
            rater.keyboard.press("Space")
            rater.wait_for_function("() => document.getElementById('panel').hidden", timeout=5_000)
            continue
        rater.keyboard.press("j")
        answers += 1
        wait_for_answers(database, answers)

    # The page's scripts came from their hashed names, every request and link was https, the
    # socket wss, and the proxy passed the websocket's upgrade.
    scripts = {r.url: r.status for r in responses if "/static/js/" in r.url}
    hashed = rf"{re.escape(origin)}/static/js/[a-z_]+\.[0-9a-f]{{12}}\.js"
    assert f"{origin}/static/js/rater.js" not in scripts
    assert any(re.fullmatch(hashed.replace("[a-z_]+", "rater"), url) for url in scripts), scripts
    assert all(re.fullmatch(hashed, url) for url in scripts), sorted(scripts)
    assert set(scripts.values()) == {200}, scripts
    # (the images are fetched once and shown from blob: URLs of the same origin)
    fetched = [r.url.removeprefix("blob:") for r in responses]
    assert all(url.startswith(f"{origin}/") for url in fetched), fetched
    assert sockets and all(url.startswith("wss://127.0.0.1:") for url in sockets), sockets
    links = rater.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    assert all(link.startswith("https://") for link in links), links
    assert any(
        line.startswith("GET /ws/rate/") and status.endswith(" 101 Switching Protocols")
        for line, status in proxy.seen
    ), proxy.seen

    # The session is completed in the server's database, every trial answered.
    rows = session_rows(
        database,
        "SELECT s.status, COUNT(a.id) FROM experiments_ratersession s "
        "JOIN experiments_trial t ON t.session_id = s.id "
        "LEFT JOIN experiments_answer a ON a.trial_id = t.id GROUP BY s.id",
    )
    assert rows == [("completed", 8)]
