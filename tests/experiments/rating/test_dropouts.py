"""Dropouts and quotas over the real protocol: raters who walk away are abandoned after the
study's idle limit and their places go to others, no model gets more raters than its target,
and a rater who comes back after the limit is told what happened. Time passing is simulated by
moving every timestamp of the study's sessions back (tests/raters.py time_passes), which is what
the clock moving forward looks like to the server."""

from collections import Counter, deque

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import transaction
from django.test import Client

from experiments.models import Answer, RaterSession, Study, Trial
from experiments.rating.lifecycle import task_begin
from experiments.services.progress import study_progress
from tests.factories import session_make
from tests.raters import RaterSocket, answer_for, is_real_of, live_study_make, time_passes

pytestmark = pytest.mark.django_db(transaction=True)

Status = RaterSession.Status
IDLE = 30


def small_study(**fields) -> Study:
    fields = {
        "method": Study.Method.INF,
        "qualification_trials": 4,
        "qualification_pass": 0.5,
        "inf_trials": 6,
        "raters_per_model": 10,
        "idle_minutes": IDLE,
        **fields,
    }
    return live_study_make(real=60, fakes_per_model=60, **fields)


class Rater:
    """One simulated person: a browser of their own, the real start page and the real socket."""

    def __init__(self, study: Study, number: int, *, walks_after: int | None):
        self.study = study
        self.number = number
        self.walks_after = walks_after  # answers before walking away; None: stays to the end
        self.client = Client()
        self.socket: RaterSocket | None = None
        self.message: dict | None = None
        self.answered = 0

    async def arrive(self) -> bool:
        """Open the link and consent; False when the study is full for now."""
        response = await sync_to_async(self.client.post)(
            f"/s/{self.study.public_id}/start",
            {"consent": "on", "external_id": f"person-{self.number}"},
        )
        if response.status_code != 302:
            assert b"This study is full" in response.content, response.content[:400]
            return False
        self.socket = RaterSocket(self.study, self.client)
        connected, _ = await self.socket.open()
        assert connected
        await self.socket.hello()
        self.message = await self.socket.until("trial", "finished", "error")
        assert self.message["type"] == "trial", self.message
        return True

    async def answer_one(self, rng, acked: set[str]) -> None:
        trial = self.message
        await self.socket.send({"type": "presented", "trial": trial["trial"]})
        is_real = await is_real_of(trial["trial"])
        # Right in the qualification (everyone who stays passes it), 80% right in the task.
        right = trial["phase"] == "qualification" or rng.random() < 0.8
        await self.socket.send(answer_for(trial, says_real=is_real == right))
        ack = await self.socket.until("ack", "error")
        assert ack["type"] == "ack" and not ack["duplicate"], ack
        acked.add(ack["trial"])
        self.answered += 1
        self.message = await self.socket.until("trial", "finished", "error")
        assert self.message["type"] != "error", self.message

    @property
    def walks_now(self) -> bool:
        return self.walks_after is not None and self.answered >= self.walks_after

    async def leave(self) -> None:
        await self.socket.close()


async def test_thirty_raters_ten_walk_away_and_every_model_reaches_its_target_exactly():
    study = await sync_to_async(small_study)(models=("model-a", "model-b"))
    rng = np.random.default_rng(12)
    per_rater = study.qualification_trials + study.inf_trials
    walkers = set(rng.choice(30, size=10, replace=False).tolist())
    people = [
        Rater(study, n, walks_after=int(rng.integers(0, per_rater)) if n in walkers else None)
        for n in range(30)
    ]
    arrivals = deque(people)
    waiting: list[Rater] = []  # turned away while the study was full; they come back later
    active: list[Rater] = []
    acked: set[str] = set()
    turned_away = idle_periods = 0

    for _ in range(5000):
        if not (arrivals or active or waiting):
            break
        if arrivals and (not active or rng.random() < 0.35):
            person = arrivals.popleft()
            if await person.arrive():
                active.append(person)
            else:
                turned_away += 1
                waiting.append(person)
        elif active:
            person = active[int(rng.integers(len(active)))]
            if person.walks_now:
                await person.leave()  # walks away: the tab is closed, nothing more is sent
                active.remove(person)
                continue
            await person.answer_one(rng, acked)
            if person.message["type"] == "finished":
                assert person.message["outcome"] == "completed"
                await person.leave()
                active.remove(person)
        else:
            # Everyone left is waiting for a place that a walker still holds: the idle limit
            # passes, and they try again.
            await sync_to_async(time_passes)(study, minutes=IDLE + 1)
            idle_periods += 1
            arrivals.extend(waiting)
            waiting.clear()
    assert not (arrivals or active or waiting), "the simulation did not finish"
    # The walkers' places were really needed: some raters were turned away, then got in.
    assert turned_away > 0 and idle_periods > 0

    @sync_to_async
    def outcome():
        sessions = {s.external_id: s for s in RaterSession.objects.filter(study=study)}
        completed = Counter(s.model.name for s in sessions.values() if s.status == Status.COMPLETED)
        statuses = {
            n: sessions[f"person-{n}"].status for n in range(30) if f"person-{n}" in sessions
        }
        stored = set(Trial.objects.filter(answer__isnull=False).values_list("public_id", flat=True))
        return completed, statuses, stored, Answer.objects.count(), study_progress(study)

    completed, statuses, stored, answers, progress = await outcome()
    assert completed == {"model-a": 10, "model-b": 10}
    # Walkers who never got a session (always turned away) do not exist; everyone else is
    # abandoned, wherever they walked away: consent, qualification or task.
    walker_statuses = {statuses[n] for n in walkers if n in statuses}
    assert walker_statuses == {Status.ABANDONED}
    assert all(statuses[n] == Status.COMPLETED for n in range(30) if n not in walkers)
    # No stored answer is lost, and none was stored without being acknowledged.
    assert stored == acked and answers == len(acked)
    # The dashboard counts the dropouts per model (walkers who had a model) and in total.
    abandoned_with_model = await sync_to_async(
        lambda: RaterSession.objects.filter(
            study=study, status=Status.ABANDONED, model__isnull=False
        ).count()
    )()
    assert sum(row["abandoned"] for row in progress["models"]) == abandoned_with_model
    assert progress["total"]["abandoned"] == sum(1 for n in walkers if n in statuses)
    assert all(row["in_task"] == 0 for row in progress["models"])


def test_a_session_left_in_consent_or_qualification_is_abandoned_after_the_idle_limit():
    study = small_study()
    stale = [
        session_make(study, model=None, status=s) for s in (Status.CONSENTED, Status.QUALIFYING)
    ]
    time_passes(study, minutes=IDLE + 1)
    fresh = session_make(study, model=None, status=Status.QUALIFYING)
    assert Client().get(f"/s/{study.public_id}/").status_code == 200  # a page of the study
    for session in stale:
        session.refresh_from_db()
        assert session.status == Status.ABANDONED and session.finished_at is not None
        assert session.end_reason == f"no answer for {IDLE} minutes (the study's idle limit)"
    fresh.refresh_from_db()
    assert fresh.status == Status.QUALIFYING


async def test_the_idle_limit_counts_from_the_latest_answer_not_the_start():
    study = await sync_to_async(small_study)()
    person = Rater(study, 1, walks_after=None)
    assert await person.arrive()
    await sync_to_async(time_passes)(study, minutes=IDLE - 1)
    await person.answer_one(np.random.default_rng(0), set())
    await sync_to_async(time_passes)(study, minutes=2)  # IDLE + 1 since the start
    await sync_to_async(call_command)("expire_sessions")
    session = await sync_to_async(RaterSession.objects.get)(study=study)
    assert session.status == Status.QUALIFYING
    await sync_to_async(time_passes)(study, minutes=IDLE)
    await sync_to_async(call_command)("expire_sessions")
    await sync_to_async(session.refresh_from_db)()
    assert session.status == Status.ABANDONED
    await person.leave()


def test_expire_sessions_abandons_stale_sessions_of_every_study_and_says_so(capsys):
    first, second = small_study(name="First"), small_study(name="Second", idle_minutes=90)
    a = session_make(first, model=None, status=Status.CONSENTED)
    b = session_make(second, model=None, status=Status.CONSENTED)
    done = session_make(first, status=Status.COMPLETED)
    time_passes(first, minutes=IDLE + 1)
    time_passes(second, minutes=IDLE + 1)  # not yet past its own 90 minutes
    call_command("expire_sessions")
    out = capsys.readouterr().out
    assert "First" in out and "1 session" in out and "Second" not in out
    statuses = {s.pk: s.status for s in RaterSession.objects.all()}
    assert statuses == {a.pk: Status.ABANDONED, b.pk: Status.CONSENTED, done.pk: Status.COMPLETED}
    call_command("expire_sessions")
    assert "No session" in capsys.readouterr().out


async def test_a_rater_back_after_the_idle_limit_is_told_and_their_answer_is_not_taken():
    study = await sync_to_async(small_study)()
    person = Rater(study, 1, walks_after=None)
    assert await person.arrive()
    rng = np.random.default_rng(0)
    acked: set[str] = set()
    await person.answer_one(rng, acked)
    trial = person.message
    await person.leave()
    await sync_to_async(time_passes)(study, minutes=IDLE + 1)

    # The old tab, reconnecting, is told the session is over; its answer is not stored.
    socket = RaterSocket(study, person.client)
    await socket.open()
    await socket.hello()
    finished = await socket.until("finished", "trial")
    assert finished["type"] == "finished" and finished["outcome"] == "abandoned"
    await socket.send(answer_for(trial, says_real=True))
    refused = await socket.until("error")
    assert refused["code"] == "session_over"
    await socket.close()
    assert await sync_to_async(Answer.objects.count)() == 1

    page = (await sync_to_async(person.client.get)(f"/s/{study.public_id}/done")).content.decode()
    assert "Your session has ended" in page and f"no answer for {IDLE} minutes" in page
    landing = await sync_to_async(person.client.get)(f"/s/{study.public_id}/")
    assert b"Your session has ended" in landing.content and b'name="consent"' not in landing.content


def test_an_abandoned_prolific_participant_is_asked_to_return_and_gets_no_code():
    study = small_study()
    client = Client()
    params = {"PROLIFIC_PID": "5f1e2d3c4b5a69788796a5b4", "STUDY_ID": "s", "SESSION_ID": "x"}
    client.post(f"/s/{study.public_id}/start", {"consent": "on", **params})
    time_passes(study, minutes=IDLE + 1)
    page = client.get(f"/s/{study.public_id}/done").content.decode()
    assert "Please return your submission on Prolific" in page
    for code in (study.code_completed, study.code_full, study.code_screened_out):
        assert code not in page
    assert "app.prolific.com" not in page


def test_no_rater_is_given_a_model_that_has_reached_its_target():
    study = small_study(raters_per_model=2, models=("model-a", "model-b"))
    model_a, model_b = study.models.order_by("name")
    for _ in range(2):
        session_make(study, model=model_a, status=Status.COMPLETED)
    session_make(study, model=model_b, status=Status.IN_TASK)
    session_make(study, model=model_b, status=Status.ABANDONED)  # holds no place
    session_make(study, model=model_b, status=Status.EXCLUDED)  # holds none either
    client = Client()
    client.post(f"/s/{study.public_id}/start", {"consent": "on"})
    session = RaterSession.objects.get(browser_id__gt="")
    with transaction.atomic():  # as when the qualification's last answer is stored
        task_begin(session)
    assert session.model == model_b and session.status == Status.IN_TASK
    # Now both models are full: the next arrival is told so, and nothing is created.
    before = RaterSession.objects.count()
    response = Client().post(f"/s/{study.public_id}/start", {"consent": "on"})
    assert b"This study is full" in response.content
    assert RaterSession.objects.count() == before


def test_arrivals_wait_while_the_raters_in_the_qualification_could_take_every_place():
    study = small_study(raters_per_model=1, models=("model-a", "model-b"))
    session_make(study, model=study.models.first(), status=Status.COMPLETED)
    # One place left, and one rater already qualifying for it.
    session_make(study, model=None, status=Status.QUALIFYING)
    response = Client().post(f"/s/{study.public_id}/start", {"consent": "on"})
    assert b"This study is full" in response.content
    # Once that rater is abandoned, the place is open again.
    time_passes(study, minutes=IDLE + 1)
    assert Client().post(f"/s/{study.public_id}/start", {"consent": "on"}).status_code == 302


async def test_a_qualified_rater_who_finds_every_model_full_leaves_with_the_full_outcome():
    study = await sync_to_async(small_study)(raters_per_model=1)
    person = Rater(study, 1, walks_after=None)
    client = person.client
    params = {"PROLIFIC_PID": "5f1e2d3c4b5a69788796a5b4", "STUDY_ID": "s", "SESSION_ID": "x"}
    await sync_to_async(client.post)(f"/s/{study.public_id}/start", {"consent": "on", **params})
    person.socket = RaterSocket(study, client)
    await person.socket.open()
    await person.socket.hello()
    person.message = await person.socket.until("trial")
    # Meanwhile every target is filled some other way (the researcher lowered them, say).
    for model in await sync_to_async(list)(study.models.all()):
        await sync_to_async(session_make)(study, model=model, status=Status.COMPLETED)
    rng = np.random.default_rng(1)
    for _ in range(study.qualification_trials):
        await person.answer_one(rng, set())
    assert person.message == {**person.message, "type": "finished", "outcome": "full"}
    await person.leave()
    session = await sync_to_async(RaterSession.objects.get)(external_id=params["PROLIFIC_PID"])
    assert session.status == Status.NO_PLACE and session.model_id is None
    page = (await sync_to_async(client.get)(f"/s/{study.public_id}/done")).content.decode()
    assert "This study is full" in page and study.code_full in page


async def test_the_study_closes_itself_once_every_model_has_its_target_if_asked():
    study = await sync_to_async(small_study)(
        raters_per_model=1, close_when_full=True, models=("model-a",)
    )
    person = Rater(study, 1, walks_after=None)
    assert await person.arrive()
    rng = np.random.default_rng(2)
    while person.message["type"] == "trial":
        await person.answer_one(rng, set())
    await person.leave()
    await sync_to_async(study.refresh_from_db)()
    assert study.status == Study.Status.CLOSED
    # Without the setting it stays live.
    other = await sync_to_async(small_study)(raters_per_model=1, models=("model-a",))
    person = Rater(other, 2, walks_after=None)
    assert await person.arrive()
    while person.message["type"] == "trial":
        await person.answer_one(rng, set())
    await person.leave()
    await sync_to_async(other.refresh_from_db)()
    assert other.status == Study.Status.LIVE
