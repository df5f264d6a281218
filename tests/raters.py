"""Test support for the rater protocol: a study with real image files, a rater who joins
through the real start page, and a websocket client on the real ASGI application."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from http.cookies import SimpleCookie

import numpy as np
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.base import ContentFile
from django.db.models import F
from django.test import Client

from experiments.models import Image, RaterSession, Study, Trial
from experiments.rating.messages import Measurements
from experiments.rating.sessions import response_record, session_hello, trial_presented
from hype.asgi import application
from hype.science.observers import SimulatedObserver
from tests.factories import png_bytes, study_make

ORIGIN = (b"origin", b"http://127.0.0.1")
# The Host a browser on http://127.0.0.1 sends: the socket's origin check compares the two.
HOST = (b"host", b"127.0.0.1")


def images_add(study: Study, *, real: int, fakes_per_model: int, masks: int = 8) -> None:
    """Tiny PNG files for the study's images, stored as the import stores them, and their rows
    in one statement per batch (a full study holds 800 images: one INSERT each made every
    test that needs one pay a second)."""
    rows = []

    def add(count, **fields):
        for _ in range(count):
            data = png_bytes()
            image = Image(
                study=study, sha256=hashlib.sha256(data).hexdigest(), width=8, height=8, **fields
            )
            image.file.save("x.png", ContentFile(data), save=False)
            rows.append(image)

    add(real, is_real=True, original_name="real_0001.png")
    for model in study.models.all():
        add(fakes_per_model, is_real=False, model=model, original_name=f"{model.name}_seed.png")
    add(masks, is_real=False, role=Image.Role.MASK)
    Image.objects.bulk_create(rows, batch_size=500)


# What MTurk adds to the study link of a worker who accepted the HIT.
MTURK_WORKER = {
    "workerId": "A1WORKER",
    "assignmentId": "3ASSIGNMENT",
    "hitId": "3HIT",
    "turkSubmitTo": "https://workersandbox.mturk.com",
}


def live_study_make(*, real=280, fakes_per_model=260, masks=8, **fields) -> Study:
    fields.setdefault("models", ("stylegan-trunc", "progan"))
    study = study_make(status=Study.Status.LIVE, **fields)
    images_add(study, real=real, fakes_per_model=fakes_per_model, masks=masks)
    return study


def time_passes(study: Study, *, minutes: float) -> None:
    """What `minutes` passing looks like to the server: every time recorded for the study's
    sessions (start, last answer, end, qualification passed) moves that far into the past."""
    shift = timedelta(minutes=minutes)
    RaterSession.objects.filter(study=study).update(
        started_at=F("started_at") - shift,
        last_activity_at=F("last_activity_at") - shift,
        last_answered_at=F("last_answered_at") - shift,
        finished_at=F("finished_at") - shift,
        qualified_at=F("qualified_at") - shift,
    )


def join(study: Study, **params) -> Client:
    """A rater who opens the study link and consents; returns their logged-in HTTP client."""
    client = Client()
    response = client.post(f"/s/{study.public_id}/start", {"consent": "on", **params})
    assert response.status_code == 302, response.content
    return client


def cookie_header(client: Client) -> tuple[bytes, bytes]:
    cookie = SimpleCookie()
    for key, morsel in client.cookies.items():
        cookie[key] = morsel.value
    return (b"cookie", cookie.output(header="", sep=";").strip().encode())


async def refused_socket(communicator: WebsocketCommunicator) -> tuple[list[dict], int | None]:
    """What a socket the server accepts only to close gets: its messages before the close, and
    the close code (a refused handshake would give the browser no code to read)."""
    connected, _ = await communicator.connect(timeout=10)
    assert connected, "the server accepts, then closes with the reason"
    messages = []
    while True:
        output = await communicator.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            return messages, output.get("code")
        messages.append(json.loads(output["text"]))


class RaterSocket:
    """A rater's websocket on the real ASGI app; keeps every frame it received."""

    def __init__(self, study: Study, client: Client | None):
        headers = [ORIGIN, HOST] + ([cookie_header(client)] if client else [])
        self.communicator = WebsocketCommunicator(
            application, f"/ws/rate/{study.public_id}/", headers=headers
        )
        self.received: list[str] = []

    async def open(self) -> tuple[bool, int | None]:
        return await self.communicator.connect(timeout=10)

    async def send(self, message: dict) -> None:
        await self.communicator.send_to(text_data=json.dumps(message))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def next(self, timeout: float = 10) -> dict:
        text = await self.communicator.receive_from(timeout=timeout)
        self.received.append(text)
        return json.loads(text)

    async def until(self, *types: str, timeout: float = 10) -> dict:
        while True:
            message = await self.next(timeout=timeout)
            if message["type"] in types:
                return message

    async def nothing_more(self) -> bool:
        return await self.communicator.receive_nothing(timeout=0.2)

    async def hello(self, refresh_ms: float = 1000 / 60) -> dict:
        await self.send(
            {
                "type": "hello",
                "refresh_ms": refresh_ms,
                "screen": {"width": 1280, "height": 800, "dpr": 1},
            }
        )
        return await self.until("session")

    async def close(self) -> None:
        await self.communicator.disconnect()


@sync_to_async
def is_real_of(trial_public_id: str) -> bool:
    # The test's oracle, read from the database; the browser never has it.
    return Trial.objects.get(public_id=trial_public_id).is_real


def answer_for(trial: dict, *, says_real: bool, refresh_ms: float = 1000 / 60) -> dict:
    timed = trial["timed"]
    return {
        "type": "answer",
        "trial": trial["trial"],
        "choice": "real" if says_real else "fake",
        "rt_ms": 640.0,
        "shown_ms": trial["frames"] * refresh_ms if timed else None,
        "mask_ms": sum(m["frames"] for m in trial["masks"]) * refresh_ms if timed else None,
        "refresh_ms": refresh_ms,
        "page_hidden": False,
    }


async def play(
    socket: RaterSocket,
    observer: SimulatedObserver,
    rng: np.random.Generator,
    *,
    first: dict | None = None,
    max_answers: int | None = None,
) -> dict:
    """Answer trials as the observer would until the session finishes (returns `finished`)
    or max_answers answers are acknowledged (returns the next, unanswered trial)."""
    message = first or await socket.until("trial", "finished")
    answered = 0
    while message["type"] == "trial":
        if max_answers is not None and answered == max_answers:
            return message
        await socket.send({"type": "presented", "trial": message["trial"]})
        is_real = await is_real_of(message["trial"])
        says_real = observer.answer(is_real=is_real, exposure_ms=message["exposure_ms"], rng=rng)
        await socket.send(answer_for(message, says_real=says_real))
        ack = await socket.until("ack", "error")
        assert ack["type"] == "ack" and not ack["duplicate"], ack
        answered += 1
        message = await socket.until("trial", "finished", "error")
        assert message["type"] != "error", message
    return message


# --- The protocol's services called directly, as the consumer calls them --------------------

REFRESH = 1000 / 60


def rater_in(study: Study, *, refresh_ms: float | None = REFRESH) -> tuple[RaterSession, dict]:
    """A rater who consented through the start page and whose browser said hello: their
    session and the first trial message."""
    join(study)
    session = RaterSession.objects.filter(study=study).latest("id")
    replies = session_hello(session_id=session.id, refresh_ms=refresh_ms)
    return session, [m for m in replies if m["type"] == "trial"][-1]


def answer(
    session: RaterSession,
    trial: dict,
    *,
    choice: str | None = None,
    rt_ms: float = 640.0,
    present: bool = True,
) -> tuple[list[dict], dict | None]:
    """Answer a trial as a browser would (presented first unless told not to); returns the
    replies and the next trial message. choice: the right answer unless given."""
    if present:
        assert trial_presented(session_id=session.id, trial_public_id=trial["trial"]) == []
    if choice is None:
        choice = "real" if Trial.objects.get(public_id=trial["trial"]).is_real else "fake"
    timed = trial["timed"]
    replies = response_record(
        session_id=session.id,
        trial_public_id=trial["trial"],
        choice=choice,
        measured=Measurements(
            rt_ms=rt_ms,
            shown_ms=trial["frames"] * REFRESH if timed else None,
            mask_ms=sum(m["frames"] for m in trial["masks"]) * REFRESH if timed else None,
            refresh_ms=REFRESH,
        ),
    )
    following = [m for m in replies if m["type"] == "trial"]
    return replies, following[-1] if following else None
