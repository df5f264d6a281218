"""The researcher's pages: the studies list and a study's page (scores, intervals, verdict,
how many raters, protocol, links), who sees them, and opening and closing a study. The
numbers on the pages are the scores service's, and match hand-worked fixtures."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.dashboard.formatting import p_value, verdict
from experiments.models import RaterSession, Study
from experiments.services.scores import (
    StudyResults,
    interval_history,
    study_report,
    study_results,
)
from hype.science.bootstrap import raters_for_width
from hype.science.comparisons import Comparison, PairwiseResult
from tests.factories import answered_session_make, study_make, user_make

pytestmark = pytest.mark.django_db


def timed(*exposures):
    return [(ms, True, True) for ms in exposures]


@pytest.fixture
def owner():
    return user_make("ada")


@pytest.fixture
def study(owner):
    study = study_make(owner=owner, models=("stylegan", "progan"), name="FFHQ faces")
    good, poor = study.models.get(name="stylegan"), study.models.get(name="progan")
    for exposures in ([500, 500, 470], [520, 520, 510], [480, 490, 490]):
        answered_session_make(study, good, [timed(*exposures)])
    for exposures in ([300, 300, 310], [280, 270, 270], [250, 250, 260]):
        answered_session_make(study, poor, [timed(*exposures)])
    return study


@pytest.fixture
def hand_worked(owner):
    """tests/experiments/test_scores_service.py's study: rater scores worked out by hand."""
    study = study_make(owner=owner, models=("A", "B"), name="Hand-worked")
    a, b = study.models.get(name="A"), study.models.get(name="B")
    answered_session_make(study, a, [timed(500, 500, 470, 470), timed(500, 510, 520, 520)])
    answered_session_make(study, a, [timed(500, 500, 500, 470), timed(500, 470, 470, 440)])
    answered_session_make(study, b, [timed(500, 490, 480, 480), timed(500, 500, 490, 490)])
    answered_session_make(study, b, [timed(400, 400, 400, 410), timed(420, 420, 430, 430)])
    return study  # A: 502.5 and 485.0 -> 493.75 ms; B: 487.5 and 412.5 -> 450.0 ms


def url(study):
    return f"/studies/{study.public_id}/"


def page_of(client, user, path):
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def flat(page):
    return re.sub(r"\s+", " ", page)


def json_script(page, element_id):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', page)
    assert match, f"no {element_id} on the page"
    return json.loads(match.group(1))


# --- The study page: numbers ------------------------------------------------------------


def test_the_owner_sees_scores_intervals_and_a_verdict_in_words(client, owner, study):
    page = page_of(client, owner, url(study))
    results = study_results(study)
    for model in results.models:
        assert f"{model.score.estimate:.1f} ms" in page
        assert f"{model.score.low:.1f} ms – {model.score.high:.1f} ms" in page
    assert "stylegan is more realistic than progan, p " in page
    assert f"/s/{study.public_id}/" in page
    assert "Converges to</th><td>63% correct" in page.replace("\n", "").replace("  ", "")


def test_the_page_shows_the_hand_worked_studys_scores(client, owner, hand_worked):
    page = page_of(client, owner, url(hand_worked))
    table = page[page.index('id="results"') : page.index('id="verdict"')]
    assert "493.8 ms" in table and "450.0 ms" in table
    assert "2 / 30" in table


def test_the_chart_draws_the_services_numbers(client, owner, hand_worked):
    chart = json_script(page_of(client, owner, url(hand_worked)), "scores-chart-data")
    results = study_results(hand_worked)
    assert chart["unit"] == "ms" and chart["chance"] is None
    assert [m["name"] for m in chart["models"]] == ["A", "B"]
    for drawn, model in zip(chart["models"], results.models, strict=True):
        assert drawn["estimate"] == model.score.estimate
        assert (drawn["low"], drawn["high"]) == (model.score.low, model.score.high)
        assert drawn["raters"] == 2
    assert chart["models"][0]["estimate"] == pytest.approx(493.75)


def test_a_hype_inf_study_shows_error_rates_as_percentages(client, owner):
    study = study_make(owner=owner, models=("m",), method=Study.Method.INF)
    m = study.models.get()
    answered_session_make(study, m, [[(None, True, True), (None, False, False)]])
    page = page_of(client, owner, url(study))
    assert "50.0%" in page and "100.0%" in page  # pooled error and the fake error
    chart = json_script(page, "scores-chart-data")
    assert chart["unit"] == "%" and chart["chance"] == 50.0
    assert chart["models"][0]["estimate"] == pytest.approx(50.0)


def test_a_study_without_raters_has_no_chart_yet(client, owner):
    page = page_of(client, owner, url(study_make(owner=owner)))
    assert "no completed raters yet" in page
    assert "scores-chart-data" not in page and "width-chart-data" not in page
    assert "Not enough completed raters yet" in page


def test_a_staircase_that_converges_below_chance_is_flagged(client, owner):
    page = page_of(client, owner, url(study_make(owner=owner, staircase_run_length=1)))
    assert "25% correct" in page and "at or below chance" in page


def test_the_default_staircase_carries_no_warning(client, owner, study):
    assert "at or below chance" not in page_of(client, owner, url(study))


def test_the_page_links_to_raters_images_and_every_export(client, owner, study):
    page = page_of(client, owner, url(study))
    base = url(study)
    assert f'href="{base}raters/"' in page and f'href="{base}images/"' in page
    for kind in ("trials.csv", "raters.csv", "scores.csv", "results.tex", "bundle.json"):
        assert f'href="{base}export/{kind}"' in page


def test_automated_baselines_are_not_invented(client, owner, study):
    # No Baseline rows: the page shows no FID number, only how to get one (more in
    # tests/experiments/test_baselines_page.py).
    page = flat(page_of(client, owner, url(study)))
    assert "FID, KID and precision/recall are not" in page
    assert f"compute_baselines {study.public_id}" in page
    assert 'id="baselines-table"' not in page


# --- The verdict in words ----------------------------------------------------------------


def _results(comparison):
    return StudyResults(study_id=1, method="time", unit="ms", models=(), comparison=comparison)


def _pair(a, b, difference, p):
    return PairwiseResult(a=a, b=b, difference=difference, p_value=p, low=0.0, high=0.0)


def test_two_models_that_differ_read_as_in_the_issue():
    comparison = Comparison(
        test="t-test",
        statistic=4.0,
        p_value=0.0031,
        pairs=(_pair("ProGAN", "StyleGAN-trunc", -120.0, 0.0031),),
    )
    lead, pairs = verdict(_results(comparison))
    assert lead == "StyleGAN-trunc is more realistic than ProGAN, p = 0.003 (Welch's t-test)."
    assert pairs == []


def test_two_models_that_do_not_differ_say_so():
    comparison = Comparison(
        test="t-test", statistic=0.5, p_value=0.41, pairs=(_pair("A", "B", 5, 0.41),)
    )
    assert verdict(_results(comparison))[0] == (
        "No evidence that the models differ, p = 0.41 (Welch's t-test)."
    )


def test_three_models_get_the_anova_and_one_sentence_per_pair():
    comparison = Comparison(
        test="anova",
        statistic=30.0,
        p_value=0.00001,
        pairs=(
            _pair("A", "B", 80.0, 0.0004),
            _pair("A", "C", 10.0, 0.62),
            _pair("B", "C", -70.0, 0.012),
        ),
    )
    lead, pairs = verdict(_results(comparison))
    assert lead == "The models differ (one-way ANOVA, p < 0.001). Pair by pair (Tukey HSD):"
    assert pairs == [
        "A is more realistic than B, p < 0.001.",
        "C is more realistic than B, p = 0.012.",
        "No evidence that A and C differ, p = 0.62.",
    ]


def test_p_values_never_round_onto_the_threshold():
    assert [p_value(p) for p in (0.0004, 0.0031, 0.012, 0.41, 0.0496)] == [
        "p < 0.001",
        "p = 0.003",
        "p = 0.012",
        "p = 0.41",
        "p = 0.0496",
    ]


# --- How many raters ---------------------------------------------------------------------


def _finish_in_order(study, minutes_apart=10):
    """Completed raters finish in session order, minutes apart (the factories leave it empty)."""
    start = timezone.now() - timedelta(hours=5)
    sessions = RaterSession.objects.filter(study=study, status=RaterSession.Status.COMPLETED)
    for n, session in enumerate(sessions.order_by("-id")):  # the last session finished first
        session.finished_at = start + timedelta(minutes=minutes_apart * n)
        session.save(update_fields=["finished_at"])


def test_the_last_width_of_the_history_is_todays_interval(study):
    _finish_in_order(study)
    results = {m.name: m for m in study_results(study).models}
    for history in interval_history(study, target_width=50.0):
        k, width = history.points[-1]
        score = results[history.name].score
        assert k == 3 and width == score.high - score.low
        assert [k for k, _ in history.points] == [2, 3]


def test_each_width_is_the_interval_the_page_showed_when_those_raters_had_finished(study):
    _finish_in_order(study)
    first_two = {h.name: h.points[0] for h in interval_history(study, target_width=50.0)}
    # Take back the rater who finished last in each model: the page then shows two raters.
    for model in study.models.all():
        last = (
            RaterSession.objects.filter(model=model, status=RaterSession.Status.COMPLETED)
            .order_by("-finished_at")
            .first()
        )
        RaterSession.objects.filter(pk=last.pk).update(status=RaterSession.Status.IN_TASK)
    for model in study_results(study).models:
        assert first_two[model.name] == (2, model.score.high - model.score.low)


def test_the_report_is_the_results_and_the_history_from_one_reading(study):
    _finish_in_order(study)
    results, histories = study_report(study, target_width=30.0)
    assert results == study_results(study)
    assert histories == interval_history(study, target_width=30.0)


def test_the_raters_needed_come_from_the_spread_of_rater_scores(hand_worked):
    histories = {h.name: h for h in interval_history(hand_worked, target_width=50.0)}
    # A: 502.5 and 485.0, B: 487.5 and 412.5 (in either order).
    assert sorted(histories["A"].rater_scores) == [485.0, 502.5]
    assert histories["A"].raters_needed == raters_for_width([502.5, 485.0], width=50.0)
    assert histories["B"].raters_needed == raters_for_width([487.5, 412.5], width=50.0)
    assert histories["B"].raters_needed == 18  # s = 75 / sqrt(2): (2 z s / 50)^2 = 17.3


def test_a_hype_inf_history_is_in_fractions_and_plans_with_error_rates():
    study = study_make(models=("m",), method=Study.Method.INF)
    m = study.models.get()
    answered_session_make(study, m, [[(None, True, True), (None, False, False)]])  # 0.5
    answered_session_make(study, m, [[(None, True, True), (None, False, True)]])  # 0.0
    (history,) = interval_history(study, target_width=0.1)
    assert sorted(history.rater_scores) == [0.0, 0.5]
    assert history.raters_needed == raters_for_width([0.0, 0.5], width=0.1)
    assert history.points[-1][1] == pytest.approx(0.5)  # resamples of two: 0, 0.25 or 0.5


def test_the_page_states_how_many_raters_a_target_width_needs(client, owner, hand_worked):
    page = flat(page_of(client, owner, url(hand_worked)))
    needed = raters_for_width([487.5, 412.5], width=50.0)  # B spreads more than A
    assert (
        f"At the current spread, about <strong>{needed} raters per model</strong> would give a "
        "95% interval 50 ms wide."
    ) in page
    assert "width-chart-data" not in page  # two raters: one point per model, no line yet
    assert "appears once a model has three completed raters" in page


def test_the_width_chart_draws_the_history(client, owner, study):
    _finish_in_order(study)
    chart = json_script(page_of(client, owner, url(study)), "width-chart-data")
    assert chart["target"] == 50.0 and chart["unit"] == "ms"
    histories = interval_history(study, target_width=50.0)
    assert [m["name"] for m in chart["models"]] == [h.name for h in histories]
    for drawn, history in zip(chart["models"], histories, strict=True):
        assert [(p["x"], p["y"]) for p in drawn["points"]] == list(history.points)


def test_a_target_width_in_the_address_changes_the_plan(client, owner, hand_worked):
    page = flat(page_of(client, owner, url(hand_worked) + "?width=25"))
    needed = raters_for_width([487.5, 412.5], width=25.0)
    assert f"about <strong>{needed} raters per model</strong>" in page
    assert "95% interval 25 ms wide" in page
    assert 'name="width" value="25"' in page


@pytest.mark.parametrize("bad", ["abc", "0", "-5", "nan", "inf", "5000"])
def test_a_bad_target_width_gets_a_clear_error_and_the_default(client, owner, hand_worked, bad):
    page = flat(page_of(client, owner, url(hand_worked) + f"?width={bad}"))
    assert "The target width must be a number above 0 and at most 1000 ms" in page
    assert "95% interval 50 ms wide" in page


def test_a_hype_inf_study_plans_in_percentage_points(client, owner):
    study = study_make(owner=owner, models=("m",), method=Study.Method.INF)
    m = study.models.get()
    answered_session_make(study, m, [[(None, True, True), (None, False, False)]])
    answered_session_make(study, m, [[(None, True, True), (None, False, True)]])
    page = flat(page_of(client, owner, url(study)))
    needed = raters_for_width([0.5, 0.0], width=0.10)
    assert f"about <strong>{needed} raters per model</strong>" in page
    assert "95% interval 10 percentage points wide" in page


def test_with_one_rater_per_model_the_page_says_two_are_needed(client, owner):
    study = study_make(owner=owner, models=("m",))
    answered_session_make(study, study.models.get(), [timed(500, 500)])
    page = flat(page_of(client, owner, url(study)))
    assert "Once a model has two completed raters" in page


# --- Who sees the study page -------------------------------------------------------------


def test_staff_see_any_study_with_its_controls(client, study):
    page = page_of(client, user_make(is_staff=True), url(study))
    assert 'id="status-form"' in page and 'id="sharing"' in page
    assert "owned by ada" in page


def test_the_owner_sees_the_controls(client, owner, study):
    page = page_of(client, owner, url(study))
    assert 'id="status-form"' in page and 'id="share-form"' in page
    assert "read-only" not in page.split('id="sharing"')[0]


def test_a_colleague_sees_everything_but_no_controls(client, study):
    colleague = user_make("grace")
    study.viewers.add(colleague)
    page = page_of(client, colleague, url(study))
    assert "stylegan is more realistic than progan" in page
    assert "Shared with you read-only by ada" in flat(page)
    assert "status-form" not in page and 'id="sharing"' not in page
    assert f"/studies/{study.public_id}/status" not in page
    assert f"/studies/{study.public_id}/sharing" not in page


def test_an_outsider_gets_not_found(client, study):
    client.force_login(user_make("mallory"))
    assert client.get(url(study)).status_code == 404


def test_an_unknown_study_is_not_found(client, owner):
    client.force_login(owner)
    assert client.get("/studies/no-such-study/").status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(client, study):
    response = client.get(url(study))
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url(study)}"


# --- Opening and closing -----------------------------------------------------------------


def status_post(client, study, action):
    return client.post(f"/studies/{study.public_id}/status", {"action": action})


def status_of(study):
    return Study.objects.get(pk=study.pk).status


def test_the_owner_opens_a_draft_and_is_told_raters_can_start(client, owner, study):
    client.force_login(owner)
    response = status_post(client, study, "open")
    assert response.status_code == 302 and response["Location"] == url(study)
    assert status_of(study) == Study.Status.LIVE
    page = client.get(url(study)).content.decode()
    assert "is live: the rater link takes new raters" in page
    assert "Close the study" in page


def test_the_owner_closes_a_live_study_and_its_link_stops_taking_raters(client, owner, study):
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    client.force_login(owner)
    status_post(client, study, "close")
    assert status_of(study) == Study.Status.CLOSED
    assert b"not open" in client.get(f"/s/{study.public_id}/").content
    assert "Reopen the study" in client.get(url(study)).content.decode()


def test_a_closed_study_can_be_reopened(client, owner, study):
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    client.force_login(owner)
    status_post(client, study, "open")
    assert status_of(study) == Study.Status.LIVE


def test_closing_a_draft_is_refused_and_changes_nothing(client, owner, study):
    client.force_login(owner)
    response = status_post(client, study, "close")
    assert response.status_code == 302
    assert status_of(study) == Study.Status.DRAFT
    page = client.get(url(study)).content.decode()
    assert "A draft study cannot be closed; nothing was changed." in page


def test_opening_a_live_study_again_changes_nothing(client, owner, study):
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    client.force_login(owner)
    status_post(client, study, "open")
    assert status_of(study) == Study.Status.LIVE
    assert "A live study cannot be opened" in client.get(url(study)).content.decode()


def test_an_unknown_action_is_a_bad_request(client, owner, study):
    client.force_login(owner)
    assert status_post(client, study, "delete").status_code == 400
    assert status_of(study) == Study.Status.DRAFT


def test_the_status_cannot_be_changed_with_a_get(client, owner, study):
    client.force_login(owner)
    assert client.get(f"/studies/{study.public_id}/status?action=open").status_code == 405
    assert status_of(study) == Study.Status.DRAFT


def test_the_page_warns_before_closing_on_raters_in_progress(client, owner, study):
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    answered_session_make(study, study.models.first(), [], status=RaterSession.Status.IN_TASK)
    page = flat(page_of(client, owner, url(study)))
    assert "1 rater is in progress. Closing stops them where they are" in page


def test_a_colleague_cannot_open_or_close(client, study):
    colleague = user_make("grace")
    study.viewers.add(colleague)
    client.force_login(colleague)
    assert status_post(client, study, "open").status_code == 403
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    assert status_post(client, study, "close").status_code == 403
    assert status_of(study) == Study.Status.LIVE


def test_an_outsider_cannot_learn_of_or_change_the_study(client, study):
    client.force_login(user_make("mallory"))
    assert status_post(client, study, "open").status_code == 404
    assert status_of(study) == Study.Status.DRAFT


def test_an_anonymous_visitor_cannot_open_a_study(client, study):
    response = status_post(client, study, "open")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert status_of(study) == Study.Status.DRAFT


def test_staff_can_close_anyones_study(client, study):
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    client.force_login(user_make(is_staff=True))
    status_post(client, study, "close")
    assert status_of(study) == Study.Status.CLOSED


# --- The studies list --------------------------------------------------------------------


def test_the_home_page_lists_only_the_researchers_own_studies(client, owner, study):
    study_make(owner=user_make("other"), name="Someone else's study")
    page = page_of(client, owner, "/")
    assert "FFHQ faces" in page and "Someone else" not in page
    assert url(study) in page


def test_the_list_shows_status_method_raters_and_current_scores(client, owner, hand_worked):
    Study.objects.filter(pk=hand_worked.pk).update(status=Study.Status.LIVE)
    page = flat(page_of(client, owner, "/"))
    row = page[page.index("Hand-worked") :]
    assert "status-live" in row and "Live" in row
    assert "HYPE<sub>time</sub>" in row
    assert "4 / 60" in row  # 2 completed raters for each of 2 models, 30 each wanted
    assert "493.8 ms" in row and "450.0 ms" in row


def test_a_colleagues_study_is_marked_as_shared_with_you(client, owner):
    theirs = study_make(owner=user_make("grace"), name="Grace study")
    theirs.viewers.add(owner)
    study_make(owner=owner, name="Ada own study")
    page = flat(page_of(client, owner, "/"))
    assert "Grace study" in page and "Ada own study" in page
    shared_row = page[page.index("Grace study") : page.index("</tr>", page.index("Grace study"))]
    own_row = page[page.index("Ada own study") : page.index("</tr>", page.index("Ada own"))]
    assert "shared with you" in shared_row and "owned by grace" in shared_row
    assert "shared with you" not in own_row


def test_staff_see_every_study_with_its_owner(client, study):
    page = page_of(client, user_make(is_staff=True), "/")
    assert "FFHQ faces" in page and "owned by ada" in page


def test_the_list_takes_a_fixed_number_of_queries_per_study(
    client, owner, django_assert_max_num_queries
):
    for n in range(4):
        study_make(owner=owner, models=("a", "b"), name=f"Study {n}")
    client.force_login(owner)
    client.get("/")  # warm up the session and the content types
    # Session, user, shared studies, the list; then per study the state its cached results
    # are kept under (two) and its raters in progress (one).
    with django_assert_max_num_queries(4 + 3 * 4):
        assert client.get("/").status_code == 200


def test_an_anonymous_visitor_sees_an_introduction_and_a_log_in_link(client, study):
    page = client.get("/").content.decode()
    assert "How real do your model's images look to people?" in page
    assert 'href="/accounts/login/"' in page
    assert "FFHQ faces" not in page
