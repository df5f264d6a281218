"""Every bad message a rater's browser can send gets a typed error and changes nothing in
the database; only a flood closes the socket."""

import json

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from experiments.models import Answer, Block, RaterSession, Study, Trial
from hype.science.observers import SimulatedObserver
from tests.raters import RaterSocket, answer_for, join, live_study_make, play, refused_socket

pytestmark = [pytest.mark.django_db(transaction=True)]


@sync_to_async
def snapshot() -> list:
    """Everything a message could change, in a comparable form."""
    return [
        sorted(Answer.objects.values_list("trial_id", "response", "correct", "rt_ms")),
        sorted(Trial.objects.values_list("id", "requested_ms", "frames", "presented_at")),
        sorted(Block.objects.values_list("id", "staircase_state", "completed_at")),
        sorted(RaterSession.objects.values_list("id", "status", "model_id", "finished_at")),
    ]


async def rater_on_a_trial(study, **params):
    client = await sync_to_async(join)(study, **params)
    socket = RaterSocket(study, client)
    assert (await socket.open())[0]
    await socket.hello()
    trial = await socket.until("trial")
    return client, socket, trial


@pytest.fixture
async def study():
    return await sync_to_async(live_study_make)(qualification_trials=10, time_trials_per_block=10)


async def refused(socket: RaterSocket, payload, code: str) -> None:
    before = await snapshot()
    if isinstance(payload, str):
        await socket.send_text(payload)
    else:
        await socket.send(payload)
    reply = await socket.next()
    assert reply["type"] == "error" and reply["code"] == code, reply
    assert reply["message"]
    if isinstance(payload, dict) and reply["code"] not in {"bad_message", "too_large"}:
        assert reply.get("trial") == payload.get("trial")
    assert await socket.nothing_more()
    assert await snapshot() == before


async def test_malformed_json_is_refused_and_the_socket_stays_open(study):
    _, socket, trial = await rater_on_a_trial(study)
    await refused(socket, "{not json", "bad_json")
    await refused(socket, "[1, 2, 3]", "bad_json")
    # Still usable afterwards.
    await socket.send(answer_for(trial, says_real=True))
    assert (await socket.until("ack"))["duplicate"] is False


async def test_an_unknown_message_type_is_refused(study):
    _, socket, _ = await rater_on_a_trial(study)
    await refused(socket, {"type": "give_me_the_labels"}, "unknown_type")
    await refused(socket, {"no_type": True}, "unknown_type")


async def test_an_answer_with_missing_or_wrong_fields_is_refused(study):
    _, socket, trial = await rater_on_a_trial(study)
    good = answer_for(trial, says_real=True)
    await refused(socket, {**good, "choice": "maybe"}, "bad_message")
    await refused(socket, {**good, "rt_ms": -5}, "bad_message")
    await refused(socket, {**good, "rt_ms": "fast"}, "bad_message")
    await refused(socket, {**good, "page_hidden": "no"}, "bad_message")
    await refused(socket, {k: v for k, v in good.items() if k != "trial"}, "bad_message")
    await refused(socket, {"type": "hello", "refresh_ms": 0}, "bad_message")


async def test_an_oversize_message_is_refused(study):
    _, socket, trial = await rater_on_a_trial(study)
    await refused(socket, {**answer_for(trial, says_real=True), "pad": "x" * 5000}, "too_large")


async def test_a_message_before_hello_is_refused(study):
    client, socket, trial = await rater_on_a_trial(study)
    await socket.close()
    fresh = RaterSocket(study, client)
    await fresh.open()
    await refused(fresh, answer_for(trial, says_real=True), "hello_first")


async def test_an_answer_for_another_raters_trial_is_refused(study):
    _, mallory, _ = await rater_on_a_trial(study, external_id="mallory")
    _, _, alices_trial = await rater_on_a_trial(study, external_id="alice")
    await refused(mallory, answer_for(alices_trial, says_real=True), "not_your_trial")
    await refused(mallory, {"type": "presented", "trial": alices_trial["trial"]}, "not_your_trial")
    await refused(
        mallory, {**answer_for(alices_trial, says_real=True), "trial": "nope"}, "not_your_trial"
    )


async def test_an_answer_for_a_trial_that_is_not_the_current_one_is_refused(study):
    _, socket, trial = await rater_on_a_trial(study)
    later = await sync_to_async(
        lambda: (
            Trial.objects.get(
                session__external_id__startswith="link-", index=trial["index"] + 3
            ).public_id
        )
    )()
    await refused(
        socket, {**answer_for(trial, says_real=True), "trial": later}, "not_current_trial"
    )
    await refused(socket, {"type": "presented", "trial": later}, "not_current_trial")


async def test_a_second_answer_to_the_same_trial_changes_nothing(study):
    _, socket, trial = await rater_on_a_trial(study)
    await socket.send(answer_for(trial, says_real=True))
    await socket.until("trial")
    before = await snapshot()
    await socket.send(answer_for(trial, says_real=False))
    assert await socket.next() == {"type": "ack", "trial": trial["trial"], "duplicate": True}
    assert await snapshot() == before


async def test_an_answer_after_the_study_closed_is_refused(study):
    _, socket, trial = await rater_on_a_trial(study)
    await sync_to_async(Study.objects.filter(pk=study.pk).update)(status=Study.Status.CLOSED)
    await refused(socket, answer_for(trial, says_real=True), "study_closed")


async def test_a_closed_study_refuses_new_raters(study):
    await sync_to_async(Study.objects.filter(pk=study.pk).update)(status=Study.Status.CLOSED)
    response = await sync_to_async(Client().post)(f"/s/{study.public_id}/start", {"consent": "on"})
    assert response.status_code == 409
    assert b"not open" in response.content
    assert await sync_to_async(RaterSession.objects.count)() == 0


async def test_a_socket_without_a_rater_session_is_closed_with_4401_after_saying_why(study):
    socket = RaterSocket(study, None)
    messages, code = await refused_socket(socket.communicator)
    assert code == 4401
    assert [m["code"] for m in messages] == ["no_session"]


@pytest.mark.keeps_flood_limit
async def test_a_flood_of_messages_closes_the_socket_and_stores_nothing(study):
    _, socket, trial = await rater_on_a_trial(study)
    before = await snapshot()
    for _ in range(80):
        await socket.send_text(json.dumps({"type": "presented", "trial": "x" * 10}))
    codes = []
    while True:
        output = await socket.communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            break
        codes.append(json.loads(output["text"])["code"])
    assert output["code"] == 4429
    assert codes[-1] == "rate_limited" and set(codes[:-1]) == {"not_your_trial"}
    assert await snapshot() == before


async def test_too_few_images_for_the_next_block_is_reported_and_the_answer_is_kept():
    # Enough images for the qualification and one task block, not for the second block.
    study = await sync_to_async(live_study_make)(
        qualification_trials=0, time_trials_per_block=10, real=6, fakes_per_model=6
    )
    client, socket, trial = await rater_on_a_trial(study)
    reply = await play(
        socket,
        SimulatedObserver(threshold_ms=300),
        np.random.default_rng(0),
        first=trial,
        max_answers=9,
    )
    await socket.send({"type": "presented", "trial": reply["trial"]})
    await socket.send(answer_for(reply, says_real=True))
    ack = await socket.until("ack")
    assert ack["duplicate"] is False
    error = await socket.until("error")
    assert error["code"] == "not_ready"
    assert await sync_to_async(Answer.objects.count)() == 10
    session = await sync_to_async(RaterSession.objects.get)()
    assert session.status == RaterSession.Status.IN_TASK
    assert await sync_to_async(session.blocks.count)() == 1
