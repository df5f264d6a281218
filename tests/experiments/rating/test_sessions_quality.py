"""The quality flags the server sets on each answer (hidden page, timing, unmeasured refresh
rate, fast answers, runs of the same answer, idle gaps), the refusal of a timed answer to an
image never reported shown, and feedback as the study's setting: all through the protocol's
own requests (and the socket where the browser's side matters)."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async

from experiments.models import Answer, Block, RaterSession, Study, Trial
from experiments.rating.messages import Hello, ProtocolError, message_parse
from experiments.rating.sessions import (
    FAST_ANSWER_MS,
    FLAG_NOTES,
    IDLE_GAP_S,
    SAME_KEY_RUN,
    rater_settings,
    session_hello,
    trial_presented,
)
from tests.raters import (
    REFRESH,
    RaterSocket,
    answer,
    answer_for,
    join,
    live_study_make,
    rater_in,
)


def flags_of(trial: dict) -> list[str]:
    return Answer.objects.get(trial__public_id=trial["trial"]).flags


def inf_study(**fields) -> Study:
    fields = {"qualification_trials": 0, "inf_trials": 40, "real": 60, "fakes_per_model": 60}
    return live_study_make(method=Study.Method.INF, **fields)


# --- The flags -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_flag_the_server_sets_is_explained():
    assert set(FLAG_NOTES) == {
        "page_hidden",
        "presentation_not_reported",
        "no_timing",
        "timing_off",
        "refresh_unmeasured",
        "fast",
        "same_key",
        "idle_gap",
    }
    assert all(FLAG_NOTES.values())
    assert str(FAST_ANSWER_MS) in FLAG_NOTES["fast"] and str(IDLE_GAP_S) in FLAG_NOTES["idle_gap"]


@pytest.mark.django_db
def test_an_answer_faster_than_150_ms_is_flagged_fast_and_150_ms_is_not():
    session, trial = rater_in(inf_study())
    _, second = answer(session, trial, rt_ms=FAST_ANSWER_MS - 0.5)
    answer(session, second, rt_ms=FAST_ANSWER_MS)
    assert "fast" in flags_of(trial)
    assert "fast" not in flags_of(second)


@pytest.mark.django_db
def test_the_tenth_same_answer_in_a_row_is_flagged_and_a_different_one_is_not():
    session, trial = rater_in(inf_study())
    trials = []
    for _ in range(SAME_KEY_RUN + 1):
        trials.append(trial)
        _, trial = answer(session, trial, choice="real")
    trials.append(trial)
    answer(session, trial, choice="fake")
    flagged = ["same_key" in flags_of(t) for t in trials]
    # Answers 1-9 start the run; the 10th and 11th extend it to 10 and 11; the 12th breaks it.
    assert flagged == [False] * (SAME_KEY_RUN - 1) + [True, True, False]


@pytest.mark.django_db
def test_an_answer_long_after_the_previous_one_or_the_blocks_start_is_an_idle_gap():
    session, first = rater_in(inf_study())
    # The block began long before the first answer (the rater sat on its introduction).
    Block.objects.filter(session=session).update(
        started_at=Block.objects.get(session=session).started_at - timedelta(seconds=IDLE_GAP_S + 5)
    )
    _, second = answer(session, first)
    answered = Answer.objects.get(trial__public_id=first["trial"])
    long_ago = answered.answered_at - timedelta(seconds=IDLE_GAP_S + 1)
    # The answer was given long ago: on its row and on the session, which keeps its time.
    Answer.objects.filter(pk=answered.pk).update(answered_at=long_ago)
    RaterSession.objects.filter(pk=session.pk).update(last_answered_at=long_ago)
    _, third = answer(session, second)
    answer(session, third)
    assert ["idle_gap" in flags_of(t) for t in (first, second, third)] == [True, True, False]


@pytest.mark.django_db
def test_a_browser_that_cannot_measure_its_refresh_rate_says_null_and_its_answers_are_flagged():
    study = live_study_make(
        qualification_trials=0, time_trials_per_block=6, real=20, fakes_per_model=20
    )
    session, trial = rater_in(study, refresh_ms=None)
    session.refresh_from_db()
    assert session.refresh_ms is None
    # Frames are counted at 60 Hz: 500 ms is 30 frames, each 30 ms mask 2.
    assert trial["frames"] == 30 and {m["frames"] for m in trial["masks"]} == {2}
    _, second = answer(session, trial)
    assert "refresh_unmeasured" in flags_of(trial)
    # Measured on a later hello: the answers from then on are not flagged.
    session_hello(session_id=session.id, refresh_ms=REFRESH)
    answer(session, second)
    assert "refresh_unmeasured" not in flags_of(second)


def test_hello_takes_a_null_refresh_rate_but_not_a_missing_one():
    assert message_parse('{"type": "hello", "refresh_ms": null}') == Hello(
        refresh_ms=None, screen_width=None, screen_height=None, device_pixel_ratio=None
    )
    with pytest.raises(ProtocolError) as refused:
        message_parse('{"type": "hello"}')
    assert refused.value.code == "bad_message" and "refresh_ms" in refused.value.message


# --- Presented, in timed and untimed blocks ----------------------------------------------------


@pytest.mark.django_db
def test_a_timed_answer_to_an_image_never_reported_shown_is_refused_and_nothing_is_stored():
    study = live_study_make(
        qualification_trials=0, time_trials_per_block=6, real=20, fakes_per_model=20
    )
    session, trial = rater_in(study)
    with pytest.raises(ProtocolError) as refused:
        answer(session, trial, present=False)
    assert refused.value.code == "not_presented"
    assert Answer.objects.count() == 0
    # Sent with its presented, the same answer is stored.
    replies, _ = answer(session, trial)
    assert replies[0] == {"type": "ack", "trial": trial["trial"], "duplicate": False}
    assert Answer.objects.count() == 1


@pytest.mark.django_db
def test_an_untimed_answer_without_presented_is_kept_and_flagged():
    session, trial = rater_in(inf_study())
    replies, _ = answer(session, trial, present=False)
    assert replies[0]["type"] == "ack"
    assert "presentation_not_reported" in flags_of(trial)


@pytest.mark.django_db
def test_presented_again_for_a_trial_already_answered_changes_nothing():
    # The browser sends presented before a held answer it resends after a reload; the answer
    # may have been stored already (its ack was lost).
    session, trial = rater_in(inf_study())
    answer(session, trial)
    presented_at = Trial.objects.get(public_id=trial["trial"]).presented_at
    assert trial_presented(session_id=session.id, trial_public_id=trial["trial"]) == []
    assert Trial.objects.get(public_id=trial["trial"]).presented_at == presented_at


@pytest.mark.django_db(transaction=True)
async def test_over_the_socket_a_timed_answer_without_presented_gets_not_presented():
    study = await sync_to_async(live_study_make)(
        qualification_trials=0, time_trials_per_block=6, real=20, fakes_per_model=20
    )
    client = await sync_to_async(join)(study)
    socket = RaterSocket(study, client)
    assert (await socket.open())[0]
    await socket.hello()
    trial = await socket.until("trial")
    await socket.send(answer_for(trial, says_real=True))
    error = await socket.until("error")
    assert (error["code"], error["trial"]) == ("not_presented", trial["trial"])
    assert await sync_to_async(Answer.objects.count)() == 0
    await socket.send({"type": "presented", "trial": trial["trial"]})
    await socket.send(answer_for(trial, says_real=True))
    assert (await socket.until("ack"))["duplicate"] is False
    await socket.close()


# --- Feedback -----------------------------------------------------------------------------------


def _feedback_by_phase(feedback: str) -> dict[str, int]:
    study = live_study_make(
        method=Study.Method.INF,
        qualification_trials=4,
        inf_trials=4,
        real=20,
        fakes_per_model=20,
        feedback=feedback,
    )
    session, trial = rater_in(study)
    told = {"qualification": 0, "task": 0}
    while trial is not None:
        phase = trial["phase"]
        replies, trial = answer(session, trial)
        told[phase] += sum(m["type"] == "feedback" for m in replies)
    session.refresh_from_db()
    assert session.status == RaterSession.Status.COMPLETED
    return told


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("feedback", "told"),
    [
        (Study.Feedback.EVERY_TRIAL, {"qualification": 4, "task": 4}),
        (Study.Feedback.QUALIFICATION, {"qualification": 4, "task": 0}),
        (Study.Feedback.NONE, {"qualification": 0, "task": 0}),
    ],
)
def test_the_server_sends_feedback_where_the_study_says(feedback, told):
    assert _feedback_by_phase(feedback) == told


@pytest.mark.django_db
def test_the_browser_is_not_told_the_feedback_setting_it_only_shows_what_arrives():
    study = live_study_make(feedback=Study.Feedback.QUALIFICATION)
    assert "feedback" not in rater_settings(study)


# --- The exclusion rules, when a rater completes -----------------------------------------------


@pytest.mark.django_db
def test_a_rater_who_completes_breaking_a_rule_is_excluded_and_still_gets_their_code():
    study = live_study_make(
        method=Study.Method.INF,
        qualification_trials=0,
        inf_trials=6,
        real=20,
        fakes_per_model=20,
        exclude_same_key_streak=6,
    )
    session, trial = rater_in(study)
    while trial is not None:
        replies, trial = answer(session, trial, choice="real")
    session.refresh_from_db()
    assert (session.status, session.status_before_exclusion) == ("excluded", "completed")
    assert session.excluded_by == "rule" and "6 times in a row" in session.excluded_reason
    finished = [m for m in replies if m["type"] == "finished"][-1]
    # They completed: the exclusion changes what is scored, not what they are told or paid.
    assert finished["outcome"] == "completed"
    assert finished["completion_code"] == session.completion_code
    assert Answer.objects.filter(trial__session=session).count() == 6


@pytest.mark.django_db
def test_with_no_rule_set_a_rater_who_completes_stays_completed():
    study = live_study_make(
        method=Study.Method.INF, qualification_trials=0, inf_trials=6, real=20, fakes_per_model=20
    )
    session, trial = rater_in(study)
    while trial is not None:
        _, trial = answer(session, trial, choice="real")
    session.refresh_from_db()
    assert session.status == RaterSession.Status.COMPLETED
