"""Acceptance: excluding a hand-worked rater changes the study's scores to what the hand
calculation gives without them, on the study page, in the API results and in scores.csv (which
keep the scores without exclusions next to them), and undoing it restores them. The expected
numbers are worked out here by hand, never read from study_results."""

import csv
import io

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from experiments.models import Study
from tests.factories import answered_session_make, study_make, user_make

pytestmark = pytest.mark.django_db


def untimed(fakes_wrong: int, reals_wrong: int) -> list[tuple[None, bool, bool]]:
    """Two fakes and two reals, that many of each answered wrong."""
    return [
        (None, False, fakes_wrong < 1),
        (None, False, fakes_wrong < 2),
        (None, True, reals_wrong < 1),
        (None, True, reals_wrong < 2),
    ]


def timed(*exposures: int) -> list[tuple[int, bool, bool]]:
    return [(ms, True, True) for ms in exposures]


class Views:
    """The study as its owner sees it: the page, the API's results and scores.csv."""

    def __init__(self, client, study):
        self.client, self.study = client, study
        self.api = APIClient()
        token = Token.objects.create(user=study.owner).key
        self.api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    def page(self) -> str:
        return self.client.get(f"/studies/{self.study.public_id}/").content.decode()

    def results_table(self, table_id: str = "results") -> str:
        html = self.page()
        start = html.index(f'<table class="data" id="{table_id}">')
        return html[start : html.index("</table>", start)]

    def api_results(self) -> dict:
        return self.api.get(f"/api/studies/{self.study.public_id}/results/").json()

    def csv_rows(self) -> dict[str, dict[str, str]]:
        response = self.client.get(f"/studies/{self.study.public_id}/export/scores.csv")
        text = b"".join(response.streaming_content).decode()
        return {row["exclusions"]: row for row in csv.DictReader(io.StringIO(text))}

    def exclude(self, rater, reason: str) -> None:
        url = f"/studies/{self.study.public_id}/raters/{rater.public_id}/exclusion"
        assert self.client.post(url, {"action": "exclude", "reason": reason}).status_code == 302

    def undo(self, rater) -> None:
        url = f"/studies/{self.study.public_id}/raters/{rater.public_id}/exclusion"
        assert self.client.post(url, {"action": "undo"}).status_code == 302


def test_excluding_a_hype_inf_rater_gives_the_hand_worked_scores_without_them(client):
    owner = user_make("ada")
    study = study_make(owner=owner, models=("stylegan",), method=Study.Method.INF)
    model = study.models.get()
    answered_session_make(study, model, [untimed(1, 0)])  # 1 of 4 wrong
    answered_session_make(study, model, [untimed(2, 1)])  # 3 of 4 wrong
    careless = answered_session_make(study, model, [untimed(2, 2)])  # 4 of 4 wrong
    client.force_login(owner)
    views = Views(client, study)

    # All three: (1 + 3 + 4) / 12 = 2/3 wrong; fakes (1 + 2 + 2) / 6, reals (0 + 1 + 2) / 6.
    everyone = {"score": 8 / 12, "fake": 5 / 6, "real": 3 / 6, "raters": 3}
    # Without the careless rater: (1 + 3) / 8 = 1/2; fakes 3/4, reals 1/4. Bootstrapping two
    # raters of four answers each gives 1/4, 1/2 or 3/4: the 95% interval is 1/4 to 3/4.
    without = {"score": 4 / 8, "fake": 3 / 4, "real": 1 / 4, "raters": 2, "low": 0.25, "high": 0.75}

    def check_everyone_counts():
        table = views.results_table()
        assert "66.7%" in table and "83.3%" in table and "50.0%" in table
        assert 'id="results-without-exclusions"' not in views.page()
        data = views.api_results()
        (shown,) = data["models"]
        assert shown["score"]["estimate"] == pytest.approx(everyone["score"])
        assert (shown["fake_error"], shown["real_error"]) == pytest.approx(
            (everyone["fake"], everyone["real"])
        )
        assert (shown["n_raters"], shown["n_excluded"], data["n_excluded"]) == (3, 0, 0)
        assert data["without_exclusions"]["models"][0]["score"] == shown["score"]
        rows = views.csv_rows()
        for view in ("applied", "none"):
            assert float(rows[view]["score"]) == pytest.approx(everyone["score"])
            assert rows[view]["n_raters"] == "3" and rows[view]["n_excluded"] == "0"

    check_everyone_counts()

    views.exclude(careless, "Answered every image wrong in 40 seconds.")
    table = views.results_table()
    assert "50.0%" in table and "25.0% – 75.0%" in table and "75.0%" in table
    assert "(1 excluded)" in table
    # The page keeps the result without exclusions next to it, clearly labelled.
    page = views.page()
    assert "With exclusions applied: the study's result" in page
    assert "Without exclusions: every rater who completed, the 1 excluded among them" in page
    assert "66.7%" in views.results_table("results-without-exclusions")

    data = views.api_results()
    (shown,) = data["models"]
    assert (data["exclusions"], data["n_excluded"]) == ("applied", 1)
    assert shown["score"]["estimate"] == pytest.approx(without["score"])
    assert (shown["score"]["low"], shown["score"]["high"]) == (without["low"], without["high"])
    assert (shown["fake_error"], shown["real_error"]) == pytest.approx(
        (without["fake"], without["real"])
    )
    assert (shown["n_raters"], shown["n_excluded"]) == (2, 1)
    (all_of_them,) = data["without_exclusions"]["models"]
    assert data["without_exclusions"]["exclusions"] == "none"
    assert all_of_them["score"]["estimate"] == pytest.approx(everyone["score"])
    assert all_of_them["n_raters"] == 3

    rows = views.csv_rows()
    assert float(rows["applied"]["score"]) == pytest.approx(without["score"])
    assert (float(rows["applied"]["ci_low"]), float(rows["applied"]["ci_high"])) == (0.25, 0.75)
    assert float(rows["applied"]["fake_error"]) == pytest.approx(without["fake"])
    assert (rows["applied"]["n_raters"], rows["applied"]["n_excluded"]) == ("2", "1")
    assert float(rows["none"]["score"]) == pytest.approx(everyone["score"])
    assert (rows["none"]["n_raters"], rows["none"]["n_excluded"]) == ("3", "1")

    views.undo(careless)
    check_everyone_counts()


def test_excluding_a_hype_time_rater_gives_the_hand_worked_mean_without_them(client):
    owner = user_make("ada")
    study = study_make(owner=owner, models=("stylegan",), method=Study.Method.TIME)
    model = study.models.get()
    # Block modes 500 and 470: 485 ms. Modes 530 and 500: 515 ms. Modes 300 and 330: 315 ms.
    answered_session_make(study, model, [timed(500, 500, 470), timed(470, 470, 500)])
    answered_session_make(study, model, [timed(500, 530, 530), timed(500, 500, 530)])
    quick = answered_session_make(study, model, [timed(300, 300, 330), timed(300, 330, 330)])
    client.force_login(owner)
    views = Views(client, study)
    everyone = (485 + 515 + 315) / 3  # 438.33 ms
    assert "438.3 ms" in views.results_table()

    views.exclude(quick, "Saw the images on a phone.")
    # (485 + 515) / 2 = 500 ms; two raters: the interval runs from one score to the other.
    table = views.results_table()
    assert "500.0 ms" in table and "485.0 ms – 515.0 ms" in table
    assert views.api_results()["models"][0]["score"]["estimate"] == 500.0
    assert views.api_results()["without_exclusions"]["models"][0]["score"][
        "estimate"
    ] == pytest.approx(everyone)
    rows = views.csv_rows()
    assert (float(rows["applied"]["score"]), float(rows["none"]["score"])) == pytest.approx(
        (500.0, everyone)
    )

    views.undo(quick)
    assert "438.3 ms" in views.results_table()
    assert views.api_results()["models"][0]["score"]["estimate"] == pytest.approx(everyone)
    assert float(views.csv_rows()["applied"]["score"]) == pytest.approx(everyone)
