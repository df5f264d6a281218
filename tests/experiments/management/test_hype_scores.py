"""`manage.py hype_scores STUDY` prints the study's scores as the API and the exports give them:
the hand-worked fixture's numbers, intervals, raters and the verdict; clear errors otherwise."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from experiments.models import RaterSession
from experiments.services.scores import study_results
from tests.factories import answered_session_make as rater
from tests.factories import study_make

pytestmark = pytest.mark.django_db


def timed(*exposures):
    return [(ms, True, True) for ms in exposures]


@pytest.fixture
def study():
    """Model A's raters score 502.5 and 485.0 ms (mean 493.75), B's 487.5 and 412.5 (450.0)."""
    study = study_make(models=("A", "B"), name="FFHQ faces", method="time")
    a, b = study.models.get(name="A"), study.models.get(name="B")
    rater(study, a, [timed(500, 500, 470, 470), timed(500, 510, 520, 520)])
    rater(study, a, [timed(500, 500, 500, 470), timed(500, 470, 470, 440)])
    rater(study, b, [timed(500, 490, 480, 480), timed(500, 500, 490, 490)])
    rater(study, b, [timed(400, 400, 400, 410), timed(420, 420, 430, 430)])
    rater(study, b, [timed(900, 900)], status=RaterSession.Status.IN_TASK)
    return study


def scores(*args: str) -> str:
    out = io.StringIO()
    call_command("hype_scores", *args, stdout=out)
    return out.getvalue()


def test_it_prints_the_hand_worked_scores_with_intervals_and_raters(study):
    text = scores(study.public_id)
    a, b = study_results(study).models
    lines = text.splitlines()
    assert lines[0] == f'Study "FFHQ faces" (HYPE_time, draft), {study.public_id}'
    header = next(line for line in lines if line.startswith("Model"))
    for column in ("HYPE_time (ms)", "95% CI", "SD", "Raters", "In progress"):
        assert column in header
    row_a = next(line for line in lines if line.startswith("A "))
    row_b = next(line for line in lines if line.startswith("B "))
    assert "493.8 ms" in row_a and "450.0 ms" in row_b
    assert f"{a.score.low:.1f} ms - {a.score.high:.1f} ms" in row_a
    assert f"{a.score.sd:.1f} ms" in row_a
    assert row_a.split()[-2:] == ["2/30", "0"]
    assert row_b.split()[-2:] == ["2/30", "1"]
    assert f"{b.score.low:.1f} ms - {b.score.high:.1f} ms" in row_b
    assert f"{b.score.sd:.1f} ms" in row_b
    p = study_results(study).comparison.p_value
    assert lines[-1] == f"No evidence that the models differ, p = {p:.2g} (Welch's t-test)."


def test_a_study_is_found_by_its_exact_name(study):
    assert scores("FFHQ faces") == scores(study.public_id)


def test_an_unknown_study_is_a_clear_error(study):
    with pytest.raises(CommandError, match="No study has the public id, id or name 'ffhq'"):
        scores("ffhq")


def test_two_studies_with_the_same_name_ask_for_the_public_id(study):
    other = study_make(name="FFHQ faces")
    with pytest.raises(CommandError) as error:
        scores("FFHQ faces")
    assert "2 studies are named 'FFHQ faces'; give the public id of one" in str(error.value)
    assert study.public_id in str(error.value) and other.public_id in str(error.value)


def test_a_significant_difference_is_stated_in_words():
    study = study_make(models=("good", "poor"))
    good, poor = study.models.get(name="good"), study.models.get(name="poor")
    for exposures in ([500, 500, 470], [520, 520, 510], [480, 490, 490]):
        rater(study, good, [timed(*exposures)])
    for exposures in ([300, 300, 310], [280, 270, 270], [250, 250, 260]):
        rater(study, poor, [timed(*exposures)])
    assert scores(study.public_id).splitlines()[-1] == (
        "good is more realistic than poor, p < 0.001 (Welch's t-test)."
    )


def test_a_hype_inf_study_shows_percent_error_and_fake_and_real_errors():
    study = study_make(models=("A",), method="inf")
    a = study.models.get()
    rater(
        study,
        a,
        [[(None, True, True), (None, True, False), (None, False, True), (None, False, False)]],
    )
    text = scores(study.public_id)
    assert "HYPE_inf (% error)" in text and "Fake error" in text and "Real error" in text
    row = next(line for line in text.splitlines() if line.startswith("A "))
    assert "50.0%" in row.split()[1] and row.split()[-2:] == ["50.0%", "50.0%"]
    assert "Not enough completed raters yet" in text


def test_a_study_without_raters_prints_dashes():
    study = study_make(models=("A",))
    row = next(line for line in scores(study.public_id).splitlines() if line.startswith("A "))
    assert row.split()[1:4] == ["-", "-", "-"]


def test_json_is_the_apis_results(study, client):
    from experiments.services.results_data import study_results_data

    data = json.loads(scores(study.public_id, "--format", "json"))
    assert data == json.loads(json.dumps(study_results_data(study=study)))
    assert data["models"][0]["score"]["estimate"] == 493.75


def test_csv_is_the_scores_export_at_full_precision(study):
    rows = list(csv.DictReader(io.StringIO(scores(study.public_id, "--format", "csv"))))
    a = study_results(study).models[0]
    assert rows[0]["model"] == "A" and float(rows[0]["score"]) == a.score.estimate == 493.75
    assert float(rows[0]["ci_low"]) == a.score.low and float(rows[0]["ci_high"]) == a.score.high


def test_with_a_rater_excluded_it_prints_the_scores_with_and_without_exclusions(study):
    from experiments.services.exclusions import rater_exclude

    a = study.models.get(name="A")
    first = RaterSession.objects.filter(model=a).order_by("id").first()  # scores 502.5 ms
    rater_exclude(first, reason="testing", by="ada")
    text = scores(study.public_id)
    applied, without = text.split("Without exclusions", 1)
    assert "With exclusions applied (1 rater excluded after completing left out)" in applied
    row_a = next(line for line in applied.splitlines() if line.startswith("A "))
    assert "485.0 ms" in row_a and "1/30" in row_a  # the other rater of A alone
    row_a = next(line for line in without.splitlines() if line.startswith("A "))
    assert "493.8 ms" in row_a and "2/30" in row_a  # (502.5 + 485.0) / 2
    data = json.loads(scores(study.public_id, "--format", "json"))
    assert data["models"][0]["score"]["estimate"] == 485.0
    assert data["without_exclusions"]["models"][0]["score"]["estimate"] == 493.75
    rows = list(csv.DictReader(io.StringIO(scores(study.public_id, "--format", "csv"))))
    assert [(r["model"], r["exclusions"], r["score"]) for r in rows if r["model"] == "A"] == [
        ("A", "applied", "485.0"),
        ("A", "none", "493.75"),
    ]


def test_without_exclusions_it_says_both_are_the_same(study):
    assert "No rater is excluded: with and without exclusions, the same." in scores(study.public_id)
