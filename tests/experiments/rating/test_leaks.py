"""Before answering, nothing the browser receives tells a real image from a fake one or
names the model: not the messages, not the URLs, not the image responses' headers."""

import json

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from experiments.models import GenerativeModel, Image, Trial
from hype.science.observers import SimulatedObserver
from tests.raters import RaterSocket, is_real_of, join, live_study_make

pytestmark = [pytest.mark.django_db(transaction=True)]

TRIAL_KEYS = {
    "type",
    "trial",
    "index",
    "phase",
    "timed",
    "exposure_ms",
    "frames",
    "countdown",
    "answer_only",
    "image_url",
    "masks",
    "block",
}


def shape(value):
    """The structure of a message with its values replaced by their types."""
    if isinstance(value, dict):
        return tuple(sorted((k, shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(sorted({shape(v) for v in value})))
    return type(value).__name__


@sync_to_async
def secrets_of(study) -> list[str]:
    """Strings whose appearance in anything sent to a rater would be a leak."""
    secrets = ["is_real", "model", "original_name", "sha256"]
    for model in GenerativeModel.objects.filter(study=study):
        secrets += [model.name, f'"model_id": {model.id}']
    for image in Image.objects.filter(study=study).exclude(role=Image.Role.MASK):
        secrets += [image.public_id, image.sha256, image.file.name, image.original_name]
    return secrets


@sync_to_async
def image_response(client, url):
    response = client.get(url)
    return response.status_code, dict(response.headers), len(response.content)


@pytest.mark.parametrize("method", ["time", "inf"])
async def test_nothing_sent_before_an_answer_reveals_the_label_or_the_model(method):
    study = await sync_to_async(live_study_make)(
        method=method, qualification_trials=20, time_trials_per_block=30, inf_trials=40
    )
    client = await sync_to_async(join)(study)
    socket = RaterSocket(study, client)
    await socket.open()
    await socket.hello()
    observer = SimulatedObserver(threshold_ms=300, untimed_accuracy=0.8)
    rng = np.random.default_rng(5)

    shapes = {True: set(), False: set()}
    headers = {True: set(), False: set()}
    message = await socket.until("trial", "finished")
    while message["type"] == "trial":
        assert set(message) == TRIAL_KEYS
        assert message["image_url"] == f"/rate/image/{message['trial']}"
        is_real = await is_real_of(message["trial"])
        comparable = {k: v for k, v in message.items() if k not in {"trial", "image_url"}}
        shapes[is_real].add(shape(comparable))
        status, response_headers, _ = await image_response(client, message["image_url"])
        assert status == 200
        assert "Content-Disposition" not in response_headers
        assert "ETag" not in response_headers and "Last-Modified" not in response_headers
        headers[is_real].add(
            tuple(sorted((k, v) for k, v in response_headers.items() if k != "Content-Length"))
        )
        await socket.send({"type": "presented", "trial": message["trial"]})
        says_real = observer.answer(is_real=is_real, exposure_ms=message["exposure_ms"], rng=rng)
        await socket.send(
            {
                "type": "answer",
                "trial": message["trial"],
                "choice": "real" if says_real else "fake",
                "rt_ms": 500,
                "shown_ms": None,
                "mask_ms": None,
                "page_hidden": False,
            }
        )
        message = await socket.until("trial", "finished")
    assert message["outcome"] == "completed"

    # Real and fake trials look the same to the browser, message and image response alike.
    assert shapes[True] == shapes[False]
    assert headers[True] == headers[False]
    everything = "\n".join(socket.received)
    for secret in await secrets_of(study):
        assert secret not in everything, secret
    # Feedback, after the answer, is the only place correctness appears.
    for text in socket.received:
        data = json.loads(text)
        if "correct" in data:
            assert data["type"] in {"feedback", "qualification"}


async def test_an_image_is_served_only_to_its_rater_and_only_until_it_is_shown():
    study = await sync_to_async(live_study_make)(qualification_trials=0)
    client = await sync_to_async(join)(study)
    socket = RaterSocket(study, client)
    await socket.open()
    await socket.hello()
    trial = await socket.until("trial")
    url = trial["image_url"]

    stranger = await sync_to_async(join)(study)
    assert (await image_response(stranger, url))[0] == 404
    anonymous = Client()
    assert (await image_response(anonymous, url))[0] == 404
    later = await sync_to_async(
        lambda: (
            Trial.objects.get(
                session__trials__public_id=trial["trial"], index=trial["index"] + 1
            ).public_id
        )
    )()
    assert (await image_response(client, f"/rate/image/{later}"))[0] == 410

    status, _, size = await image_response(client, url)
    assert status == 200 and size > 0
    await socket.send({"type": "presented", "trial": trial["trial"]})
    await socket.send({"type": "hello", "refresh_ms": 16.7})  # any round trip
    await socket.until("session")
    assert (await image_response(client, url))[0] == 410
    assert len(trial["masks"]) == study.mask_count
    for entry in trial["masks"]:
        assert (await image_response(client, entry["url"]))[0] == 200
        assert (await image_response(anonymous, entry["url"]))[0] == 404
