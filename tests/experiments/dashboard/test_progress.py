"""Live progress: the counts of the progress service, the panel that renders them, and the
progress websocket on the real ASGI application - who may listen (owner, colleague, staff)
and who is refused (outsider, anonymous), and the updates as raters answer."""

import asyncio
import itertools
import json
from datetime import datetime, timedelta

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.template.loader import render_to_string
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from experiments.models import Answer, Block, RaterSession, Study
from experiments.services.progress import progress_group, study_progress
from hype.asgi import application
from hype.science.observers import SimulatedObserver
from tests.factories import answered_session_make, session_make, study_make, user_make
from tests.raters import (
    HOST,
    ORIGIN,
    RaterSocket,
    cookie_header,
    join,
    live_study_make,
    play,
    refused_socket,
)

Status = RaterSession.Status
GOOD_EYE = SimulatedObserver(threshold_ms=300, untimed_accuracy=0.9)
SMALL = {"qualification_trials": 10, "real": 20, "fakes_per_model": 20}


def timed(n, correct=True):
    return [(500, True, correct)] * n


# --- The service -----------------------------------------------------------------------------


@pytest.fixture
def counted_study(db):
    """Two models with raters in every state, and answers old and new."""
    study = study_make(models=("alpha", "beta"), raters_per_model=10)
    alpha, beta = study.models.get(name="alpha"), study.models.get(name="beta")
    answered_session_make(study, alpha, [timed(4)], status=Status.COMPLETED)
    answered_session_make(study, alpha, [timed(3)], status=Status.IN_TASK)
    answered_session_make(study, alpha, [timed(2)], status=Status.ABANDONED)
    answered_session_make(study, beta, [timed(5)], status=Status.COMPLETED)
    answered_session_make(study, beta, [timed(1)], status=Status.EXCLUDED)
    # Raters get a model only after the qualification.
    session_make(study, model=None, status=Status.CONSENTED)
    answered_session_make(
        study, None, [[(None, True, True)] * 6], status=Status.QUALIFYING, kind="qualification"
    )
    answered_session_make(
        study,
        None,
        [[(None, True, False)] * 2],
        status=Status.FAILED_QUALIFICATION,
        kind="qualification",
    )
    # Beta's answers are older than a minute: they count as stored, not in the rate.
    old = timezone.now() - timedelta(minutes=5)
    Answer.objects.filter(trial__session__model=beta).update(answered_at=old)
    return study


def test_it_counts_raters_by_status_and_answers_per_model_and_in_total(counted_study):
    progress = study_progress(counted_study)

    alpha, beta = progress["models"]
    assert (alpha["name"], alpha["target"]) == ("alpha", 10)
    assert (alpha["completed"], alpha["in_task"], alpha["in_progress"]) == (1, 1, 1)
    assert (alpha["abandoned"], alpha["excluded"], alpha["raters"]) == (1, 0, 3)
    assert (alpha["answers"], alpha["answers_last_minute"]) == (9, 9)
    assert (beta["completed"], beta["excluded"], beta["answers"]) == (1, 1, 6)
    assert beta["answers_last_minute"] == 0
    assert beta["last_answer_at"] < alpha["last_answer_at"]

    unassigned = progress["unassigned"]
    assert (unassigned["consented"], unassigned["qualifying"]) == (1, 1)
    assert (unassigned["in_progress"], unassigned["failed_qualification"]) == (2, 1)
    assert unassigned["answers"] == 8

    total = progress["total"]
    assert total["target"] == 20
    assert (total["raters"], total["in_progress"], total["completed"]) == (8, 3, 2)
    assert (total["failed_qualification"], total["abandoned"], total["excluded"]) == (1, 1, 1)
    assert (total["answers"], total["answers_last_minute"]) == (23, 17)
    assert total["last_answer_at"] == max(alpha["last_answer_at"], unassigned["last_answer_at"])
    json.dumps(progress)  # ready for the websocket as it is


def test_it_takes_four_queries_however_many_raters_there_are(counted_study):
    # One abandons the sessions past the idle limit; three count.
    with CaptureQueriesContext(connection) as few:
        study_progress(counted_study)
    beta = counted_study.models.get(name="beta")
    for _ in range(5):
        answered_session_make(counted_study, beta, [timed(3)], status=Status.IN_TASK)
    with CaptureQueriesContext(connection) as many:
        study_progress(counted_study)
    assert len(few) == len(many) == 4
    assert few.captured_queries[0]["sql"].startswith("UPDATE")


def test_a_study_without_raters_has_zero_everywhere_and_no_unassigned_row(db):
    progress = study_progress(study_make(models=("alpha",)))
    assert progress["unassigned"] is None
    assert progress["total"]["answers"] == 0 and progress["total"]["last_answer_at"] is None
    assert [m["raters"] for m in progress["models"]] == [0]


def test_the_panel_renders_the_numbers_without_javascript_and_hands_them_to_it(counted_study):
    progress = study_progress(counted_study)
    html = render_to_string(
        "researcher/_progress.html", {"study": counted_study, "progress": progress}
    )
    assert 'id="progress-completed" data-progress="completed">2<' in html
    assert 'id="progress-answers" data-progress="answers">23<' in html
    assert 'data-progress="answers_last_minute">17<' in html
    assert f'data-ws-path="/ws/studies/{counted_study.public_id}/progress/"' in html
    assert '<script id="progress-data" type="application/json">' in html
    assert 'src="/static/js/progress.js"' in html and 'type="module"' in html
    assert "No model yet" in html  # the qualifying raters' row


# --- The websocket ---------------------------------------------------------------------------


def progress_socket(study: Study, client: Client | None) -> WebsocketCommunicator:
    headers = [ORIGIN, HOST] + ([cookie_header(client)] if client else [])
    return WebsocketCommunicator(
        application, f"/ws/studies/{study.public_id}/progress/", headers=headers
    )


@sync_to_async
def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@sync_to_async
def personas(study: Study) -> dict:
    colleague, outsider = user_make("colleague"), user_make("outsider")
    study.viewers.add(colleague)
    return {
        "owner": study.owner,
        "colleague": colleague,
        "outsider": outsider,
        "staff": user_make("staff", is_staff=True),
    }


async def receive_progress(socket: WebsocketCommunicator, timeout: float = 5) -> dict:
    message = json.loads(await socket.receive_from(timeout=timeout))
    assert message["type"] == "progress"
    return message


async def until_answers(socket: WebsocketCommunicator, answers: int) -> dict:
    while True:
        message = await receive_progress(socket)
        if message["total"]["answers"] >= answers:
            return message


async def rater_answers(study: Study, count: int) -> None:
    """A simulated rater joins through the study link and answers `count` trials."""
    client = await sync_to_async(join)(study)
    rater = RaterSocket(study, client)
    assert (await rater.open())[0]
    await rater.hello()
    await play(rater, GOOD_EYE, np.random.default_rng(0), max_answers=count)
    await rater.close()


@pytest.mark.django_db(transaction=True)
async def test_the_owner_gets_the_progress_on_connect_and_again_after_a_rater_answers():
    study = await sync_to_async(live_study_make)(**SMALL)
    owner = await logged_in(study.owner)
    socket = progress_socket(study, owner)
    assert (await socket.connect(timeout=10))[0]
    first = await receive_progress(socket)
    assert first["study"] == study.public_id
    assert first["total"]["answers"] == 0 and first["total"]["in_progress"] == 0
    assert [m["name"] for m in first["models"]] == ["progan", "stylegan-trunc"]

    await rater_answers(study, 3)
    update = await until_answers(socket, 3)
    assert update["total"]["answers"] == 3
    assert update["total"]["answers_last_minute"] == 3
    assert update["total"]["in_progress"] == 1
    assert update["unassigned"]["qualifying"] == 1  # still in the qualification
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_rater_who_consents_shows_up_before_their_first_answer():
    study = await sync_to_async(live_study_make)(**SMALL)
    socket = progress_socket(study, await logged_in(study.owner))
    assert (await socket.connect(timeout=10))[0]
    assert (await receive_progress(socket))["total"]["in_progress"] == 0
    await sync_to_async(join)(study)  # consents through the study link, answers nothing
    # Sooner than the consumer's idle refresh (10 s): the consent itself notifies.
    update = await receive_progress(socket, timeout=3)
    assert update["total"]["in_progress"] == 1 and update["total"]["answers"] == 0
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_colleague_with_read_access_and_staff_get_the_progress_too():
    study = await sync_to_async(live_study_make)(**SMALL)
    people = await personas(study)
    sockets = []
    for who in ("colleague", "staff"):
        socket = progress_socket(study, await logged_in(people[who]))
        assert (await socket.connect(timeout=10))[0], who
        assert (await receive_progress(socket))["total"]["answers"] == 0
        sockets.append(socket)
    await rater_answers(study, 2)
    for socket in sockets:
        assert (await until_answers(socket, 2))["total"]["answers"] == 2
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_an_outsider_and_an_anonymous_visitor_are_refused_with_4404_and_get_nothing():
    study = await sync_to_async(live_study_make)(**SMALL)
    people = await personas(study)
    for client in (await logged_in(people["outsider"]), None):
        socket = progress_socket(study, client)
        assert await refused_socket(socket) == ([], 4404)  # closed at once, told nothing
    # The same answer as for a study that does not exist: nothing tells them it does.
    socket = WebsocketCommunicator(
        application,
        "/ws/studies/no-such-study/progress/",
        headers=[ORIGIN, HOST, cookie_header(await logged_in(people["owner"]))],
    )
    assert await refused_socket(socket) == ([], 4404)


@pytest.mark.django_db(transaction=True)
async def test_an_outsider_refused_once_hears_nothing_of_later_answers():
    study = await sync_to_async(live_study_make)(**SMALL)
    people = await personas(study)
    socket = progress_socket(study, await logged_in(people["outsider"]))
    assert await refused_socket(socket) == ([], 4404)
    await rater_answers(study, 1)
    assert await socket.receive_nothing(timeout=0.7)


@sync_to_async
def more_answers(study: Study, n: int) -> None:
    answered_session_make(study, study.models.first(), [timed(n)], status=Status.IN_TASK)


@pytest.mark.django_db(transaction=True)
async def test_a_burst_of_answers_costs_at_most_two_states_a_second_and_ends_on_the_last():
    study = await sync_to_async(study_make)(models=("alpha",))
    socket = progress_socket(study, await logged_in(study.owner))
    assert (await socket.connect(timeout=10))[0]
    await receive_progress(socket)
    layer = get_channel_layer()
    loop = asyncio.get_running_loop()

    # 60 answers' notices over about 1.2 s, as from raters answering at machine speed.
    await more_answers(study, 7)
    started = loop.time()
    for n in range(60):
        if n == 59:
            # Stored just before the burst's last notice, inside the quiet interval: only a
            # throttle that keeps the trailing notice ever shows it.
            await more_answers(study, 1)
        await layer.group_send(progress_group(study.public_id), {"type": "study.progress"})
        await asyncio.sleep(0.02)
    burst_s = loop.time() - started
    received = []
    while not await socket.receive_nothing(timeout=1.0):
        received.append(await receive_progress(socket))

    # More than one state, or the spacing below would hold for want of any pair.
    assert 2 <= len(received) <= burst_s / 0.5 + 2
    # When each state was computed, by the server's clock.
    times = [datetime.fromisoformat(m["at"]).timestamp() for m in received]
    assert all(later - earlier >= 0.45 for earlier, later in itertools.pairwise(times))
    assert received[-1]["total"]["answers"] == 8
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_answers_during_the_quiet_interval_are_sent_once_it_is_over():
    study = await sync_to_async(study_make)(models=("alpha",))
    socket = progress_socket(study, await logged_in(study.owner))
    assert (await socket.connect(timeout=10))[0]
    await receive_progress(socket)
    layer = get_channel_layer()

    await more_answers(study, 2)
    await layer.group_send(progress_group(study.public_id), {"type": "study.progress"})
    assert (await receive_progress(socket))["total"]["answers"] == 2
    # Straight after a state went out: this one waits for the interval, and is not lost.
    loop = asyncio.get_running_loop()
    sent = loop.time()
    await more_answers(study, 3)
    await layer.group_send(progress_group(study.public_id), {"type": "study.progress"})
    last = await receive_progress(socket)
    assert last["total"]["answers"] == 5
    assert loop.time() - sent < 2
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_messages_from_the_dashboard_are_ignored():
    study = await sync_to_async(study_make)(models=("alpha",))
    socket = progress_socket(study, await logged_in(study.owner))
    assert (await socket.connect(timeout=10))[0]
    await receive_progress(socket)
    await socket.send_to(text_data='{"type": "close_study"}')
    assert await socket.receive_nothing(timeout=0.3)
    assert await sync_to_async(lambda: Study.objects.get(pk=study.pk).status)() == "draft"
    assert await sync_to_async(Block.objects.count)() == 0
    await socket.disconnect()
