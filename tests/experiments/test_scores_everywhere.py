"""One hand-worked study, and the same numbers on the study page, in the API, in the scores CSV
and in the LaTeX table: all computed once by hype.science through study_results."""

import csv
import io

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from experiments.models import Study
from experiments.services.exports.latex import latex_table
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
    for row, result in zip(rows, results.models, strict=True):
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
