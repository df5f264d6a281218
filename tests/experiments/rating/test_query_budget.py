"""What the rater path costs the database, in statements (query counts are deterministic): an
answer, the next trial's message included, at most 6; `presented` at most 2; a trial's image 1;
and the same however many answers the session and the study already hold. Drawing a block
sorts nothing at random in the database and counts no trial rows but the rater's own. The
upgrade that brought the counters fills them in from the trials and answers."""

import re

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from experiments.models import Image, RaterSession, Study, Trial
from experiments.rating.images import trial_image_serve
from experiments.rating.lifecycle import rater_session_key
from experiments.rating.sessions import session_hello, trial_presented
from tests.raters import REFRESH, answer, join, live_study_make, rater_in

# Transactional, as the server runs: inside a test's own transaction every atomic block would
# add two savepoint statements that a worker never runs (its BEGIN and COMMIT are not counted).
pytestmark = pytest.mark.django_db(transaction=True)

ANSWER_BUDGET = 6
PRESENTED_BUDGET = 2


def statements(queries: CaptureQueriesContext) -> list[str]:
    """The statements run, without the transaction's own BEGIN and COMMIT (SQLite's BEGIN
    IMMEDIATE is logged, PostgreSQL's is not)."""
    return [
        query["sql"]
        for query in queries.captured_queries
        if not re.fullmatch(r"(BEGIN( IMMEDIATE)?|COMMIT)", query["sql"].strip(), re.IGNORECASE)
    ]


def answered_with_budget(session: RaterSession, trial: dict) -> tuple[dict, int, int]:
    """Present and answer `trial` as a browser would, counting each request's statements."""
    with CaptureQueriesContext(connection) as presented:
        assert trial_presented(session_id=session.id, trial_public_id=trial["trial"]) == []
    assert len(statements(presented)) == PRESENTED_BUDGET, statements(presented)
    right = "real" if Trial.objects.get(public_id=trial["trial"]).is_real else "fake"
    with CaptureQueriesContext(connection) as answered:
        replies, following = answer(session, trial, choice=right, present=False)
    return following, len(statements(answered)), statements(answered)


def test_a_timed_answer_and_the_next_trials_message_take_at_most_six_statements():
    study = live_study_make(
        qualification_trials=0, time_blocks=2, time_trials_per_block=30, real=40, fakes_per_model=40
    )
    session, trial = rater_in(study)
    for _ in range(29):  # every answer of the first block but its last
        following, count, sql = answered_with_budget(session, trial)
        assert count <= ANSWER_BUDGET, sql
        # Exactly: the session, the answer, the staircase, the next trial, the session's
        # counters. One more would be a field the session's statement left out, read late.
        assert count == 5, sql
        assert following["timed"] and following["masks"], "the next trial came with the answer"
        trial = following


def test_an_untimed_answer_takes_at_most_six_statements_too():
    study = live_study_make(
        method=Study.Method.INF,
        qualification_trials=0,
        inf_trials=20,
        real=20,
        fakes_per_model=20,
    )
    session, trial = rater_in(study)
    for _ in range(19):
        following, count, sql = answered_with_budget(session, trial)
        assert count <= ANSWER_BUDGET, sql
        assert count == 4, sql  # no staircase to step
        trial = following


def test_an_answer_costs_the_same_however_many_answers_the_study_holds():
    study = live_study_make(
        qualification_trials=0, time_blocks=1, time_trials_per_block=40, real=60, fakes_per_model=60
    )
    # Other raters' answers first: hundreds of rows the rater path must never read or count.
    for _ in range(6):
        other, trial = rater_in(study)
        while trial is not None:
            _, trial = answer(other, trial)
    session, trial = rater_in(study)
    costs = []
    for _ in range(35):
        trial, count, sql = answered_with_budget(session, trial)
        costs.append(count)
        # No count at all: the progress message reads the session's own answer counter.
        assert not [s for s in sql if "COUNT(" in s.upper()], sql
    assert len(set(costs)) == 1, costs


def test_a_trials_image_takes_one_statement():
    study = live_study_make(
        qualification_trials=0, time_trials_per_block=6, real=20, fakes_per_model=20
    )
    session, trial = rater_in(study)
    browser_session = {rater_session_key(study.public_id): session.id}
    with CaptureQueriesContext(connection) as served:
        image = trial_image_serve(trial_public_id=trial["trial"], browser_session=browser_session)
    assert image.content.startswith(b"\x89PNG")
    assert len(statements(served)) == 1, statements(served)


def test_an_image_request_runs_two_statements_the_browsers_session_and_the_trial():
    study = live_study_make(
        qualification_trials=0, time_trials_per_block=6, real=20, fakes_per_model=20
    )
    browser = join(study)
    session = RaterSession.objects.filter(study=study).latest("id")
    hello = session_hello(session_id=session.id, refresh_ms=REFRESH)
    trial = [m for m in hello if m["type"] == "trial"][-1]
    with CaptureQueriesContext(connection) as served:
        response = browser.get(reverse("experiments:rater_image", args=[trial["trial"]]))
    assert response.status_code == 200
    assert len(statements(served)) == 2, statements(served)


def test_drawing_a_block_sorts_nothing_at_random_and_counts_no_one_elses_trials():
    study = live_study_make(
        qualification_trials=0, time_blocks=2, time_trials_per_block=10, real=40, fakes_per_model=40
    )
    session, trial = rater_in(study)
    for _ in range(9):
        _, trial = answer(session, trial)
    with CaptureQueriesContext(connection) as block_end:
        _, trial = answer(session, trial)
    assert trial["block"]["number"] == 2, "that answer ended the first block"
    sql = statements(block_end)
    assert not [s for s in sql if "RANDOM()" in s.upper()], sql
    trial_counts = [s for s in sql if "COUNT(" in s.upper() and "experiments_trial" in s]
    for statement in trial_counts:
        assert re.search(r'"experiments_trial"\."session_id" = ', statement), statement


def test_each_image_counts_the_trials_drawn_with_it_and_blocks_draw_the_least_shown():
    study = live_study_make(
        method=Study.Method.INF,
        qualification_trials=0,
        inf_trials=10,
        real=10,
        fakes_per_model=10,
        models=("only",),
    )
    rater_in(study)
    shown = dict(Image.objects.filter(study=study).values_list("id", "shown_count"))
    drawn = set(Trial.objects.values_list("image_id", flat=True))
    assert {i for i, n in shown.items() if n == 1} == drawn and len(drawn) == 10
    # The second rater gets the ten images nobody has seen yet, as counting the trials would.
    second, _ = rater_in(study)
    theirs = set(Trial.objects.filter(session=second).values_list("image_id", flat=True))
    assert theirs.isdisjoint(drawn) and len(theirs) == 10
    assert set(
        Image.objects.filter(study=study, role=Image.Role.TASK).values_list(
            "shown_count", flat=True
        )
    ) == {1}


def test_the_upgrade_fills_in_what_the_server_keeps_from_the_trials_and_answers():
    study = live_study_make(
        qualification_trials=0, time_blocks=2, time_trials_per_block=10, real=40, fakes_per_model=40
    )
    mid_block, trial = rater_in(study)
    for choice in ["real", "fake", "fake", "fake"]:
        _, trial = answer(mid_block, trial, choice=choice)
    finished, other = rater_in(study)
    while other is not None:
        _, other = answer(finished, other, choice="real")
    fields = ["current_trial_id", "answered_count", "last_choice", "same_choice_run"]
    kept = {s.pk: [getattr(s, f) for f in fields] for s in RaterSession.objects.filter(study=study)}
    shown = dict(Image.objects.filter(study=study).values_list("id", "shown_count"))
    assert kept[mid_block.pk][1:] == [4, "fake", 3] and kept[finished.pk][:2] == [None, 20]

    # Back to before the columns existed, and forward again: the migration computes them.
    executor = MigrationExecutor(connection)
    leaf = executor.loader.graph.leaf_nodes("experiments")
    executor.migrate([("experiments", "0007_served_images")])
    executor = MigrationExecutor(connection)
    executor.migrate(leaf)

    again = {
        s.pk: [getattr(s, f) for f in fields] for s in RaterSession.objects.filter(study=study)
    }
    assert again == kept
    assert dict(Image.objects.filter(study=study).values_list("id", "shown_count")) == shown
    # Trials drawn before their block drew masks get them when served.
    replies = session_hello(session_id=mid_block.pk, refresh_ms=REFRESH)
    served = [m for m in replies if m["type"] == "trial"][-1]
    assert served["trial"] == trial["trial"] and len(served["masks"]) == study.mask_count


def test_a_worker_still_on_the_previous_code_can_insert_rows_while_an_upgrade_migrates():
    study = live_study_make(qualification_trials=0, real=2, fakes_per_model=2, masks=0)
    # The INSERT of the code before the new columns, which names none of them.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO experiments_image (study_id, model_id, is_real, role, public_id, file, "
            "sha256, width, height, original_name, changes, created_at) "
            "VALUES (%s, NULL, %s, 'task', 'old-worker-image', 'x.png', 'abc', 8, 8, '', '{}', "
            "%s)",
            [study.pk, True, timezone.now()],
        )
    assert Image.objects.get(public_id="old-worker-image").shown_count == 0
