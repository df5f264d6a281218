"""A study's results are computed once per state and then read from the cache: a second look
reads no answers, and every change that can move a number (a rater completing, an exclusion
and its undoing, the study's parameters, a new model) gives new results at once. The raters in
progress are always counted as they are now."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments.models import GenerativeModel, RaterSession, Study
from experiments.services.exclusions import rater_exclude, rater_exclusion_undo
from experiments.services.scores import study_report, study_results, study_results_both
from tests.factories import answered_session_make, session_make, study_make

pytestmark = pytest.mark.django_db


def inf_rater(study: Study, model, correct: int, *, of: int = 10) -> RaterSession:
    trials = [(None, i % 2 == 0, i < correct) for i in range(of)]
    return answered_session_make(study, model, [trials])


@pytest.fixture
def study():
    study = study_make(method=Study.Method.INF, models=("a", "b"))
    a, b = study.models.order_by("name")
    for correct in (2, 4, 6):
        inf_rater(study, a, correct)
        inf_rater(study, b, correct + 2)
    return study


def errors(results) -> dict[str, float]:
    return {m.name: m.score.estimate for m in results.models}


def answers_read(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "experiments_answer" in q["sql"]]


def test_the_second_look_reads_no_answers_and_gives_the_same_numbers(study):
    with CaptureQueriesContext(connection) as first:
        computed = study_results(study)
    with CaptureQueriesContext(connection) as second:
        again = study_results(study)
    assert answers_read(first) and not answers_read(second)
    assert again == computed
    assert len(second) == 3, [q["sql"] for q in second.captured_queries]


def test_a_rater_who_completes_is_in_the_next_results(study):
    before = errors(study_results(study))
    inf_rater(study, study.models.get(name="a"), correct=10)
    after = study_results(study)
    assert after.models[0].n_raters == 4
    assert after.models[0].score.estimate < before["a"]
    assert errors(after)["b"] == before["b"]


def test_an_exclusion_and_its_undoing_each_give_new_results(study):
    applied, without = study_results_both(study)
    worst = RaterSession.objects.filter(study=study, model__name="a").order_by("id").first()
    rater_exclude(worst, reason="answered at random", by="ada")
    excluded, still_without = study_results_both(study)
    assert excluded.models[0].n_raters == 2 and excluded.models[0].n_excluded == 1
    assert errors(excluded)["a"] != errors(applied)["a"]
    assert errors(still_without) == errors(without)
    rater_exclusion_undo(RaterSession.objects.get(pk=worst.pk), by="ada")
    back, _ = study_results_both(study)
    assert errors(back) == errors(applied) and back.models[0].n_excluded == 0


def test_a_change_of_the_studys_parameters_gives_new_results():
    study = study_make(method=Study.Method.TIME, models=("a",))
    model = study.models.get()
    for exposures in ([300, 300, 400], [500, 300, 500]):
        answered_session_make(study, model, [[(ms, True, True) for ms in exposures]])
    means = study_results(study).models[0].score.estimate
    study.threshold_burn_in = 1  # the first trial of each block no longer counts
    study.save()
    assert study_results(study).models[0].score.estimate != means


def test_a_new_model_shows_up_at_once(study):
    assert [m.name for m in study_results(study).models] == ["a", "b"]
    GenerativeModel.objects.create(study=study, name="c")
    assert [m.name for m in study_results(study).models] == ["a", "b", "c"]


def test_raters_in_progress_are_counted_as_they_are_now(study):
    width = 0.2
    assert study_results(study).models[0].n_in_progress == 0
    study_report(study, target_width=width)
    session_make(study, model=study.models.get(name="a"), status=RaterSession.Status.IN_TASK)
    assert study_results(study).models[0].n_in_progress == 1
    results, _ = study_report(study, target_width=width)
    assert results.models[0].n_in_progress == 1
    assert study_results_both(study)[1].models[0].n_in_progress == 1
