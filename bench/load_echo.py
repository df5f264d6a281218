"""The baseline server of bench/load.py: a trivial ASGI app, served by the same uvicorn as HYPE,
that speaks the rater protocol's message pattern without Django or a database. It sets the same
cookies, redirects the start to the task, serves an image of the study's byte length, answers
hello with session + trial and an answer with ack, feedback, progress and the next trial.

Run: .venv/bin/python -m uvicorn load_echo:application --app-dir bench --lifespan off
(LOAD_ECHO_IMAGE_BYTES: the image's length).
"""

import json
import os
import secrets

IMAGE = b"\x89PNG" + bytes(max(0, int(os.environ.get("LOAD_ECHO_IMAGE_BYTES", "49207")) - 4))
PAGE = b"<!doctype html><title>echo</title>" + b" " * 4000  # about a rater page's length
SESSION = {
    "type": "session",
    "phase": "task",
    "done": 0,
    "total": 450,
    "settings": {
        "countdown_ms": 500,
        "real_fraction": 0.5,
        "keys": {"fake": "f", "real": "j"},
        "display": {
            "css_px": 256,
            "image_width": 128,
            "image_height": 128,
            "margin_width_rem": 2.0,
            "margin_height_rem": 13.0,
        },
    },
}


def _trial(index: int) -> dict:
    trial = secrets.token_urlsafe(16)
    return {
        "type": "trial",
        "trial": trial,
        "index": index,
        "phase": "task",
        "timed": True,
        "exposure_ms": 500,
        "frames": 30,
        "countdown": True,
        "answer_only": False,
        "image_url": f"/rate/image/{trial}",
        "masks": [
            {"url": f"/rate/mask/{secrets.token_urlsafe(16)}", "frames": 2} for _ in range(4)
        ],
        "block": {"number": 1, "of": 3, "position": index, "length": 150, "first": index == 0},
    }


async def _http(scope, receive, send):
    while (await receive()).get("more_body"):
        pass
    path = scope["path"]
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    status, body = 200, PAGE
    if path == "/healthz":
        body = b'{"status": "ok"}'
    elif path.startswith("/rate/image/"):
        headers = [(b"content-type", b"image/png"), (b"cache-control", b"no-store")]
        body = IMAGE
    elif path.endswith("/start") and scope["method"] == "POST":
        status, body = 302, b""
        task = path.removesuffix("start") + "task"
        headers = [
            (b"location", task.encode()),
            (b"set-cookie", f"sessionid={secrets.token_urlsafe(24)}; Path=/".encode()),
        ]
    elif path.startswith("/s/") and path.count("/") == 3:
        headers.append((b"set-cookie", f"csrftoken={secrets.token_urlsafe(24)}; Path=/".encode()))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _websocket(scope, receive, send):
    index = 0
    while True:
        event = await receive()
        if event["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            continue
        if event["type"] == "websocket.disconnect":
            return
        message = json.loads(event.get("text") or "{}")
        kind = message.get("type")
        if kind == "hello":
            replies = [SESSION, _trial(index)]
        elif kind == "answer":
            index += 1
            trial = message["trial"]
            replies = [
                {"type": "ack", "trial": trial, "duplicate": False},
                {"type": "feedback", "trial": trial, "correct": True},
                {"type": "progress", "phase": "task", "done": index, "total": 450},
                _trial(index),
            ]
        else:
            replies = []  # presented: the server says nothing
        for reply in replies:
            await send({"type": "websocket.send", "text": json.dumps(reply)})


async def application(scope, receive, send):
    if scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(scope, receive, send)
