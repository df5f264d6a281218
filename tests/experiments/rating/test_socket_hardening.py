"""The rater socket against a hostile browser: only this site's pages may open it (scheme,
host and port exact), the flood limit counts a rater session over all of its connections, a
socket without a session is told why before it closes, and the messages a fuzzer found to
raise (huge numbers, deep nesting, a lone surrogate or a NUL in a trial id) get a protocol
error, never a server error or a traceback."""

import json
import logging

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from hype.asgi import application
from hype.origins import origin_allowed, origin_normalised
from tests.experiments.rating.test_bad_input import rater_on_a_trial, refused, snapshot
from tests.raters import RaterSocket, cookie_header, join, live_study_make

pytestmark = pytest.mark.django_db(transaction=True)


def scope(origin: str | None, host: str = "127.0.0.1:8000", **extra) -> dict:
    headers = [(b"host", host.encode())] + [
        (name.encode(), value.encode()) for name, value in extra.items()
    ]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return {"type": "websocket", "headers": headers}


# --- The origin check ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://127.0.0.1:8000", True),
        ("HTTP://127.0.0.1:8000/", True),
        ("http://127.0.0.1:8001", False),  # the same host on another port
        ("https://127.0.0.1:8000", False),  # another scheme
        ("http://127.0.0.1", False),  # port 80
        ("http://evil.example", False),
        ("null", False),  # a sandboxed frame or a file
        ("http://127.0.0.1:8000/path", False),
        ("http://127.0.0.1:notaport", False),
        (None, False),
    ],
)
def test_a_socket_opens_only_from_this_sites_own_origin_exactly(origin, allowed):
    assert origin_allowed(scope(origin)) is allowed


def test_a_host_that_is_not_allowed_has_no_origin_of_ours():
    assert not origin_allowed(scope("http://evil.example:8000", host="evil.example:8000"))


def test_default_ports_are_the_same_origin_as_none():
    assert origin_normalised("https://hype.example.org:443") == "https://hype.example.org"
    assert origin_normalised("http://hype.example.org:80") == "http://hype.example.org"
    assert origin_normalised("ftp://hype.example.org") is None


@override_settings(
    ALLOWED_HOSTS=["hype.example.org"],
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_behind_a_tls_proxy_the_https_page_is_ours_and_the_http_one_is_not():
    proxied = {"host": "hype.example.org", "x-forwarded-proto": "https"}
    assert origin_allowed(scope("https://hype.example.org", **proxied))
    assert not origin_allowed(scope("http://hype.example.org", **proxied))
    # Without the proxy's header the server sees plain http, as Django does for requests.
    assert not origin_allowed(scope("https://hype.example.org", host="hype.example.org"))


@override_settings(
    ALLOWED_HOSTS=["hype.example.org"], CSRF_TRUSTED_ORIGINS=["https://rate.example.org"]
)
def test_a_trusted_origin_may_open_a_socket_exactly_as_written():
    assert origin_allowed(scope("https://rate.example.org", host="hype.example.org"))
    assert not origin_allowed(scope("https://rate.example.org:8443", host="hype.example.org"))


async def test_a_rater_socket_from_another_port_is_refused_at_the_handshake():
    study = await sync_to_async(live_study_make)(qualification_trials=4, time_trials_per_block=10)
    client = await sync_to_async(join)(study)
    socket = WebsocketCommunicator(
        application,
        f"/ws/rate/{study.public_id}/",
        headers=[
            (b"origin", b"http://127.0.0.1:9999"),
            (b"host", b"127.0.0.1"),
            cookie_header(client),
        ],
    )
    connected, _ = await socket.connect(timeout=10)
    assert not connected


# --- The flood limit, per rater session ------------------------------------------------


@pytest.mark.keeps_flood_limit
@override_settings(HYPE_RATER_FLOOD_LIMIT=(30, 60))
async def test_reconnecting_does_not_reset_the_flood_count():
    study = await sync_to_async(live_study_make)(qualification_trials=4, time_trials_per_block=10)
    client, socket, _ = await rater_on_a_trial(study)  # hello: one message
    before = await snapshot()
    replies, closed = [], None
    for _ in range(6):  # connections of 10 messages each, while the socket is not closed
        for _ in range(10):
            await socket.send({"type": "presented", "trial": "x" * 10})
        on_this_one = []
        while True:
            output = await socket.communicator.receive_output(timeout=5)
            if output["type"] == "websocket.close":
                closed = output["code"]
                break
            on_this_one.append(json.loads(output["text"])["code"])
            if len(on_this_one) == 10 and on_this_one[-1] != "rate_limited":
                break
        replies += on_this_one
        if closed is not None:
            break
        await socket.close()
        socket = RaterSocket(study, client)
        assert (await socket.open())[0]
    # 30 messages in the window, the hello among them; the 31st, on the third connection, is
    # refused and closes the socket.
    assert closed == 4429
    assert len(replies) == 30 and replies[-1] == "rate_limited"
    assert "rate_limited" not in replies[:-1]
    assert await snapshot() == before


# --- Messages that used to raise -------------------------------------------------------


HOSTILE = [
    (
        '{"type": "answer", "trial": "abc", "choice": "real", "rt_ms": 1' + "0" * 400 + "}",
        "bad_message",
    ),
    ('{"type": "hello", "refresh_ms": ' + "9" * 310 + "}", "bad_message"),
    ("[" * 1500 + "]" * 1500, "bad_json"),
    ('{"type": "presented", "trial": ' + "[" * 1200 + "]" * 1200 + "}", "bad_json"),
    ('{"type": "presented", "trial": "\\ud800abc"}', "bad_message"),
    ('{"type": "answer", "trial": "ab\\u0000c", "choice": "fake", "rt_ms": 500}', "bad_message"),
    ('{"type": "presented", "trial": "abc\\n"}', "bad_message"),
]


@pytest.mark.parametrize(("text", "code"), HOSTILE)
async def test_a_hostile_message_gets_a_protocol_error_and_no_traceback(text, code, caplog):
    study = await sync_to_async(live_study_make)(qualification_trials=4, time_trials_per_block=10)
    _, socket, _ = await rater_on_a_trial(study)
    with caplog.at_level(logging.WARNING):
        await refused(socket, text, code)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    await socket.close()
