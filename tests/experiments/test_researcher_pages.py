"""The researcher's study page: only its owner (and staff) see it, and it shows the study's
scores, intervals and protocol as computed by the scores service."""

import pytest

from experiments.models import Study
from experiments.services.scores import study_results
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


def url(study):
    return f"/studies/{study.public_id}/"


def test_the_owner_sees_scores_intervals_and_a_verdict_in_words(client, owner, study):
    client.force_login(owner)
    page = client.get(url(study)).content.decode()
    results = study_results(study)
    for model in results.models:
        assert f"{model.score.estimate:.1f} ms" in page
        assert f"{model.score.low:.1f} ms – {model.score.high:.1f} ms" in page
    assert "stylegan is more realistic than progan" in page
    assert f"/s/{study.public_id}/" in page
    assert "Converges to</th><td>63% correct" in page.replace("\n", "").replace("  ", "")


def test_a_staircase_that_converges_below_chance_is_flagged(client, owner):
    study = study_make(owner=owner, staircase_run_length=1)
    client.force_login(owner)
    page = client.get(url(study)).content.decode()
    assert "25% correct" in page and "at or below chance" in page


def test_staff_see_any_study(client, study):
    client.force_login(user_make(is_staff=True))
    assert client.get(url(study)).status_code == 200


def test_an_outsider_gets_not_found(client, study):
    client.force_login(user_make("mallory"))
    assert client.get(url(study)).status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(client, study):
    response = client.get(url(study))
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_home_page_lists_only_the_researchers_own_studies(client, owner, study):
    study_make(owner=user_make("other"), name="Someone else's study")
    client.force_login(owner)
    page = client.get("/").content.decode()
    assert "FFHQ faces" in page and "Someone else" not in page
    assert url(study) in page


def test_a_hype_inf_study_shows_error_rates_as_percentages(client, owner):
    study = study_make(owner=owner, models=("m",), method=Study.Method.INF)
    m = study.models.get()
    answered_session_make(study, m, [[(None, True, True), (None, False, False)]])
    client.force_login(owner)
    page = client.get(url(study)).content.decode()
    assert "50.0%" in page and "100.0%" in page  # pooled error and the fake error
