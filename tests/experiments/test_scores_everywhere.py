"""One hand-worked study, and the same numbers on the study page, in the API, in the scores CSV
and in the LaTeX table, each rater's score on the raters pages, in raters.csv, in the API and
from `hype_scores`, and one verdict sentence on the page and in the terminal: all computed
once (experiments.services.scores, experiments.dashboard.formatting)."""

import csv
import html
import io
import json
import re

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from experiments.dashboard.formatting import verdict
from experiments.models import Study
from experiments.services.exports.latex import latex_table
from experiments.services.exports.raters import raters_csv
from experiments.services.exports.scores import scores_csv
from experiments.services.scores import study_results
from tests.factories import answered_session_make, study_make, user_make

pytestmark = pytest.mark.django_db


def timed(*exposures):
    return [(ms, True, True) for ms in exposures]


@pytest.fixture
def study():
    """Block modes by hand (a tie takes the mean of the tied values):
    A: (500/470 tie -> 485, 520) -> 502.5 and (500, 470) -> 485.0: model 493.75 ms.
    B: (480, 500/490 tie -> 495) -> 487.5 and (400, 420/430 tie -> 425) -> 412.5: 450.0 ms."""
    owner = user_make("ada")
    study = study_make(owner=owner, models=("A", "B"), method=Study.Method.TIME, name="Hand")
    a, b = study.models.get(name="A"), study.models.get(name="B")
    answered_session_make(study, a, [timed(500, 500, 470, 470), timed(500, 510, 520, 520)])
    answered_session_make(study, a, [timed(500, 500, 500, 470), timed(500, 470, 470, 440)])
    answered_session_make(study, b, [timed(500, 490, 480, 480), timed(500, 500, 490, 490)])
    answered_session_make(study, b, [timed(400, 400, 400, 410), timed(420, 420, 430, 430)])
    return study


def test_page_api_csv_and_latex_show_the_hand_computed_scores(client, study):
    results = study_results(study)
    a, b = results.models
    assert (a.rater_scores, b.rater_scores) == ((502.5, 485.0), (487.5, 412.5))
    assert (a.score.estimate, b.score.estimate) == (493.75, 450.0)

    # The API: full precision, exactly study_results.
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=study.owner).key}")
    data = api.get(f"/api/studies/{study.public_id}/results/").json()
    for model, result in zip(data["models"], results.models, strict=True):
        score = result.score
        assert model["score"]["estimate"] == score.estimate
        assert (model["score"]["low"], model["score"]["high"]) == (score.low, score.high)
        assert model["score"]["sd"] == score.sd

    # The scores CSV: the same floats, read back from text.
    rows = list(csv.DictReader(io.StringIO("".join(scores_csv(study)))))
    applied = [row for row in rows if row["exclusions"] == "applied"]
    for row, result in zip(applied, results.models, strict=True):
        score = result.score
        assert float(row["score"]) == score.estimate
        assert (float(row["ci_low"]), float(row["ci_high"])) == (score.low, score.high)
        assert float(row["sd"]) == score.sd

    # The page and the LaTeX table: the same numbers rounded to one decimal.
    client.force_login(study.owner)
    page = client.get(f"/studies/{study.public_id}/").content.decode()
    table = latex_table(study)
    for result in results.models:
        score = result.score
        shown = f"{score.estimate:.1f}"
        assert f"{shown} ms" in page
        assert f"{shown} & {score.sd:.1f} & {score.low:.1f}--{score.high:.1f}" in table
        assert f"{score.low:.1f} ms – {score.high:.1f} ms" in page
    assert "493.8 ms" in page and "450.0 ms" in page


def _api(study):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=study.owner).key}")
    return api


def test_each_raters_score_is_the_same_on_the_raters_pages_in_raters_csv_the_api_and_the_cli(
    client, study
):
    # The hand-worked rater scores, in the order the raters started.
    expected = {"A": [502.5, 485.0], "B": [487.5, 412.5]}
    results = study_results(study)
    assert {m.name: list(m.rater_scores) for m in results.models} == expected
    sessions = list(study.rater_sessions.order_by("id").select_related("model"))
    by_session = {
        s.public_id: score for s, score in zip(sessions, [502.5, 485.0, 487.5, 412.5], strict=True)
    }

    # raters.csv: one row per rater, its score at full precision.
    rows = list(csv.DictReader(io.StringIO("".join(raters_csv(study)))))
    assert {r["rater"]: float(r["time_score_ms"]) for r in rows} == by_session
    assert all(r["in_score"] == "true" for r in rows)

    # The API's results and `hype_scores --format json`: the same lists.
    api = _api(study).get(f"/api/studies/{study.public_id}/results/").json()
    assert {m["name"]: m["rater_scores"] for m in api["models"]} == expected
    out = io.StringIO()
    call_command("hype_scores", study.public_id, "--format", "json", stdout=out)
    assert {m["name"]: m["rater_scores"] for m in json.loads(out.getvalue())["models"]} == expected

    # The raters list and each rater's page, rounded to one decimal.
    client.force_login(study.owner)
    listing = client.get(f"/studies/{study.public_id}/raters/").content.decode()
    for public_id, score in by_session.items():
        row = re.search(rf"{public_id}.*?</tr>", listing, re.S).group(0)
        assert f">{score:.1f} ms<" in row
        page = client.get(f"/studies/{study.public_id}/raters/{public_id}/").content.decode()
        shown = re.search(r'id="rater-score">([^<]*)<', page).group(1).strip()
        assert shown == f"{score:.1f} ms"


def test_the_study_page_and_hype_scores_say_the_same_verdict(client, study):
    lead, pairs = verdict(study_results(study))
    assert lead.startswith("No evidence that the models differ, p = ") and pairs == []
    client.force_login(study.owner)
    page = html.unescape(client.get(f"/studies/{study.public_id}/").content.decode())
    out = io.StringIO()
    call_command("hype_scores", study.public_id, stdout=out)
    assert lead in page
    assert out.getvalue().splitlines()[-1] == lead


def test_a_three_model_verdict_reads_the_same_pair_by_pair_on_the_page_and_in_the_terminal(
    client,
):
    owner = user_make("grace")
    study = study_make(owner=owner, models=("good", "fair", "poor"), name="Three")
    for name, exposures in {
        "good": ([500, 500, 490], [510, 510, 500], [490, 490, 480]),
        "fair": ([400, 400, 390], [410, 410, 400], [390, 390, 380]),
        "poor": ([200, 200, 190], [210, 210, 200], [190, 190, 180]),
    }.items():
        model = study.models.get(name=name)
        for block in exposures:
            answered_session_make(study, model, [timed(*block)])
    lead, pairs = verdict(study_results(study))
    assert lead.startswith("The models differ (one-way ANOVA") and len(pairs) == 3
    client.force_login(owner)
    page = html.unescape(client.get(f"/studies/{study.public_id}/").content.decode())
    out = io.StringIO()
    call_command("hype_scores", study.public_id, stdout=out)
    terminal = out.getvalue().splitlines()
    assert terminal[-4:] == [lead, *(f"  {pair}" for pair in pairs)]
    for sentence in (lead, *pairs):
        assert sentence in page
