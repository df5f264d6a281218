"""Whole rater sessions over the websocket, played by simulated observers, checked against
the stored data: balance, no repeats, the staircase, the qualification, and resuming."""

from collections import Counter

import numpy as np
import pytest
from asgiref.sync import sync_to_async

from experiments.models import Answer, Block, RaterSession, Study, Trial
from hype.science.observers import SimulatedObserver
from hype.science.staircase import staircase_replay
from tests.raters import MTURK_WORKER, RaterSocket, answer_for, join, live_study_make, play

pytestmark = [pytest.mark.django_db(transaction=True)]

GOOD_EYE = SimulatedObserver(threshold_ms=300, untimed_accuracy=0.9)


@sync_to_async
def stored(session_filter: dict) -> dict:
    session = RaterSession.objects.get(**session_filter)
    blocks = []
    for block in session.blocks.order_by("index"):
        trials = list(block.trials.select_related("answer").order_by("position"))
        blocks.append({"block": block, "trials": trials})
    return {"session": session, "blocks": blocks}


async def start(study: Study, **params):
    client = await sync_to_async(join)(study, **params)
    socket = RaterSocket(study, client)
    connected, _ = await socket.open()
    assert connected
    return client, socket


def check_balanced_and_unrepeated(data: dict, study: Study) -> None:
    seen = set()
    for entry in data["blocks"]:
        trials = entry["trials"]
        assert len(trials) == entry["block"].trial_count
        assert sum(t.is_real for t in trials) == round(len(trials) * study.real_fraction)
        for trial in trials:
            assert trial.image_id not in seen
            seen.add(trial.image_id)
            assert trial.is_real == trial.image.is_real
            assert trial.answer.correct == ((trial.answer.response == "real") == trial.is_real)


async def test_a_whole_hype_time_session_follows_the_protocol():
    study = await sync_to_async(live_study_make)()
    _, socket = await start(study, PROLIFIC_PID="worker-1")
    hello = await socket.hello()
    assert (hello["phase"], hello["done"], hello["total"]) == ("qualification", 0, 550)

    finished = await play(socket, GOOD_EYE, np.random.default_rng(1))
    assert finished["outcome"] == "completed"
    await socket.close()

    data = await stored({"external_id": "worker-1"})
    session = data["session"]
    assert session.status == RaterSession.Status.COMPLETED
    assert finished["completion_code"] == session.completion_code
    assert session.source == RaterSession.Source.PROLIFIC
    assert [e["block"].kind for e in data["blocks"]] == ["qualification", "task", "task", "task"]
    await sync_to_async(check_balanced_and_unrepeated)(data, study)

    qualification_block = data["blocks"][0]["block"]
    qualification = data["blocks"][0]["trials"]
    assert qualification_block.timed is False
    assert len(qualification) == study.qualification_trials
    assert all(t.requested_ms is None and t.frames is None for t in qualification)
    # The fakes are split over the study's models before the rater is given one, so the
    # rater's own model is among them.
    study_models = await sync_to_async(lambda: set(study.models.values_list("id", flat=True)))()
    fakes_per_model = Counter(t.image.model_id for t in qualification if not t.is_real)
    assert set(fakes_per_model) == study_models, "qualification fakes come from every model"
    assert session.model_id in fakes_per_model
    assert max(fakes_per_model.values()) - min(fakes_per_model.values()) <= 1
    rule = study.staircase_rule()
    for entry in data["blocks"][1:]:
        trials = entry["trials"]
        assert all(
            not t.is_real and t.image.model_id == session.model_id for t in trials if not t.is_real
        )
        exposures = [t.requested_ms for t in trials]
        assert exposures[0] == 500, "every block restarts at 500 ms"
        assert exposures == staircase_replay(rule, [t.answer.correct for t in trials])
        assert all(t.frames == round(t.requested_ms / (1000 / 60)) for t in trials)
    assert (
        len({e for entry in data["blocks"][1:] for e in (t.requested_ms for t in entry["trials"])})
        > 5
    ), "the staircase moved"


async def test_a_whole_hype_inf_session_is_untimed_and_scored():
    study = await sync_to_async(live_study_make)(method=Study.Method.INF)
    _, socket = await start(study, **{**MTURK_WORKER, "workerId": "mturk-7"})
    hello = await socket.hello()
    assert hello["total"] == 200
    first = await socket.until("trial")
    assert first["timed"] is False and first["exposure_ms"] is None and first["masks"] == []
    finished = await play(socket, GOOD_EYE, np.random.default_rng(2), first=first)
    assert finished["outcome"] == "completed"
    data = await stored({"external_id": "mturk-7"})
    assert data["session"].source == RaterSession.Source.MTURK
    assert [e["block"].kind for e in data["blocks"]] == ["qualification", "task"]
    await sync_to_async(check_balanced_and_unrepeated)(data, study)
    task = data["blocks"][1]["trials"]
    assert len(task) == 100
    assert all(t.requested_ms is None and t.frames is None for t in task)
    errors = sum(not t.answer.correct for t in task)
    # The observer is right 90% of the time untimed: 100 answers make between 3 and 21
    # mistakes with probability 99.8% (binomial, n=100, p=0.1).
    assert 3 <= errors <= 21


async def test_new_raters_go_to_the_model_with_the_fewest_raters():
    study = await sync_to_async(live_study_make)(
        qualification_trials=0,
        time_trials_per_block=4,
        time_blocks=1,
        real=40,
        fakes_per_model=40,
    )
    assigned = []
    for n in range(6):
        _, socket = await start(study, external_id=f"r{n}")
        await socket.hello()
        assigned.append(
            await sync_to_async(
                lambda n=n: RaterSession.objects.get(external_id=f"r{n}").model.name
            )()
        )
        await socket.close()
    assert assigned.count("stylegan-trunc") == 3 and assigned.count("progan") == 3
    assert assigned[0] != assigned[1]


async def test_a_rater_who_fails_the_qualification_never_reaches_the_task():
    study = await sync_to_async(live_study_make)(qualification_trials=20)
    client, socket = await start(study)
    await socket.hello()
    coin = SimulatedObserver(threshold_ms=300, untimed_accuracy=0.3)
    finished = await play(socket, coin, np.random.default_rng(3))
    assert finished["outcome"] == "failed_qualification"
    finished_trial = await sync_to_async(
        lambda: {
            "trial": Trial.objects.filter(session__study=study).last().public_id,
            "timed": False,
            "frames": None,
            "masks": [],
        }
    )()
    assert "completion_code" not in finished
    session = await sync_to_async(RaterSession.objects.get)(study=study)
    assert session.status == RaterSession.Status.FAILED_QUALIFICATION
    assert session.qualification_total == 20 and session.qualification_correct < 13
    assert await sync_to_async(session.blocks.filter(kind=Block.Kind.TASK).count)() == 0
    # Reconnecting does not get them in either.
    await socket.close()
    socket = RaterSocket(study, client)
    await socket.open()
    await socket.hello()
    assert (await socket.until("finished"))["outcome"] == "failed_qualification"
    await socket.send(answer_for(finished_trial, says_real=True))
    assert (await socket.until("ack", "error"))["duplicate"] is True
    await socket.send({"type": "presented", "trial": finished_trial["trial"]})
    assert (await socket.until("error"))["code"] == "session_over"


async def test_a_dropped_connection_resumes_with_every_answer_stored_once():
    study = await sync_to_async(live_study_make)(qualification_trials=10, time_trials_per_block=20)
    client, socket = await start(study, external_id="flaky")
    await socket.hello()
    rng = np.random.default_rng(4)
    pending = await play(socket, GOOD_EYE, rng, max_answers=17)
    await socket.close()  # the network drops before trial 17 is answered

    socket = RaterSocket(study, client)
    await socket.open()
    hello = await socket.hello()
    assert hello["done"] == 17
    again = await socket.until("trial")
    assert again["trial"] == pending["trial"] and again["answer_only"] is False
    finished = await play(socket, GOOD_EYE, rng, first=again)
    assert finished["outcome"] == "completed"

    session = await sync_to_async(RaterSession.objects.get)(external_id="flaky")
    trials = await sync_to_async(Trial.objects.filter(session=session).count)()
    answers = await sync_to_async(Answer.objects.filter(trial__session=session).count)()
    assert trials == answers == 10 + 3 * 20


async def test_a_resent_answer_is_acknowledged_once_and_changes_nothing():
    study = await sync_to_async(live_study_make)(qualification_trials=10)
    client, socket = await start(study)
    await socket.hello()
    trial = await socket.until("trial")
    answer = answer_for(trial, says_real=True)
    await socket.send(answer)
    assert (await socket.until("ack"))["duplicate"] is False
    next_trial = await socket.until("trial")
    await socket.close()

    # The browser never saw the ack: after reconnecting it resends the same answer, this
    # time saying "fake".
    socket = RaterSocket(study, client)
    await socket.open()
    await socket.hello()
    current = await socket.until("trial")
    assert current["trial"] == next_trial["trial"]
    await socket.send({**answer, "choice": "fake"})
    ack = await socket.until("ack")
    assert ack == {"type": "ack", "trial": trial["trial"], "duplicate": True}
    assert await socket.nothing_more()
    stored_answer = await sync_to_async(Answer.objects.get)(trial__public_id=trial["trial"])
    assert stored_answer.response == "real"
    assert await sync_to_async(Answer.objects.count)() == 1


async def test_a_reload_after_the_image_was_shown_asks_for_the_answer_only():
    study = await sync_to_async(live_study_make)(qualification_trials=0)
    client, socket = await start(study)
    await socket.hello()
    trial = await socket.until("trial")
    assert trial["timed"] and trial["answer_only"] is False
    await socket.send({"type": "presented", "trial": trial["trial"]})
    await socket.close()

    socket = RaterSocket(study, client)
    await socket.open()
    await socket.hello()
    again = await socket.until("trial")
    assert again["trial"] == trial["trial"] and again["answer_only"] is True
    assert again["block"]["first"] is False
    image = await sync_to_async(client.get)(trial["image_url"])
    assert image.status_code == 410, "a presented image is never served again"


async def test_a_second_window_takes_over_and_the_first_stands_down():
    study = await sync_to_async(live_study_make)(qualification_trials=10)
    client, first = await start(study)
    await first.hello()
    await first.until("trial")
    second = RaterSocket(study, client)
    await second.open()
    error = await first.until("error")
    assert error["code"] == "superseded"
    assert (await first.communicator.receive_output(timeout=5))["type"] == "websocket.close"
    hello = await second.hello()
    assert hello["done"] == 0
    await second.close()
