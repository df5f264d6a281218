"""HYPE by image tag and soft labels, on a hand-worked study: two counted raters of model A
(one more excluded, one still in the task) answering known images with known tags."""

import csv
import io

import pytest
from django.test import Client

from experiments.models import Answer, Block, ImageTag, RaterSession, Study
from experiments.services.exports.downloads import export_response
from experiments.services.exports.soft_labels import SOFT_LABEL_COLUMNS, soft_labels_csv
from experiments.services.subgroups import image_soft_labels, subgroup_results, tag_seed
from hype.science.bootstrap import bootstrap_pooled_rate
from hype.science.subgroups import tag_difference_test
from tests.factories import block_make, image_make, session_make, study_make, trial_make

pytestmark = pytest.mark.django_db


def image(study, name, *tags, model=None):
    made = image_make(study, model=model, original_name=name)
    for tag in tags:
        ImageTag.objects.create(image=made, name=tag)
    return made


def rater(study, model, answers, *, status=RaterSession.Status.COMPLETED, qualification=()):
    """answers: (image, response) in the task block; qualification: the same, before it."""
    session = session_make(study, model=model, status=status)
    index = 0
    for number, (kind, rows) in enumerate(
        ((Block.Kind.QUALIFICATION, qualification), (Block.Kind.TASK, answers))
    ):
        block = block_make(session, index=number, kind=kind)
        for position, (shown, response) in enumerate(rows):
            trial = trial_make(block, image=shown, index=index, position=position)
            correct = (response == "real") == shown.is_real
            Answer.objects.create(trial=trial, response=response, correct=correct, rt_ms=600)
            index += 1
    return session


@pytest.fixture
def worked():
    """Model A's images: fakes a1 (smiling), a2 (neutral), a3 (smiling, glasses), a4 (no tag);
    reals r1 (smiling), r2 (neutral). R1 and R2 count; R3 was excluded after completing and
    R4 is still in the task: neither counts. B has one rater on an untagged fake."""
    study = study_make(models=("A", "B"), method=Study.Method.INF, bootstrap_resamples=200)
    a, b = study.models.get(name="A"), study.models.get(name="B")
    a1 = image(study, "a1.png", "smiling", model=a)
    a2 = image(study, "a2.png", "neutral", model=a)
    a3 = image(study, "a3.png", "smiling", "glasses", model=a)
    a4 = image(study, "a4.png", model=a)
    r1 = image(study, "r1.png", "smiling")
    r2 = image(study, "r2.png", "neutral")
    b1 = image(study, "b1.png", model=b)
    # R1: a1 fooled, a2 right, r1 right, r2 called fake (wrong), a4 fooled.
    rater(study, a, [(a1, "real"), (a2, "fake"), (r1, "real"), (r2, "fake"), (a4, "real")])
    # R2: a1 right, a3 fooled, r1 and r2 called fake (wrong); a qualification answer on a4.
    rater(
        study,
        a,
        [(a1, "fake"), (a3, "real"), (r1, "fake"), (r2, "fake")],
        qualification=[(a4, "fake")],
    )
    excluded = rater(study, a, [(a1, "real"), (a2, "real")])
    excluded.status, excluded.status_before_exclusion = "excluded", "completed"
    excluded.save()
    rater(study, a, [(a2, "real"), (r1, "fake")], status=RaterSession.Status.IN_TASK)
    rater(study, b, [(b1, "real"), (r1, "real")])
    return study


def by_tag(study, model="A"):
    found = subgroup_results(study)
    (one,) = [m for m in found.models if m.name == model]
    return one, {t.tag: t for t in one.tags}


def test_each_tag_pools_the_counted_answers_on_its_fakes_and_reals(worked):
    found = subgroup_results(worked)
    assert found.tags == ("glasses", "neutral", "smiling")
    model, tags = by_tag(worked)
    assert list(tags) == ["glasses", "neutral", "smiling"]
    smiling, neutral, glasses = tags["smiling"], tags["neutral"], tags["glasses"]
    # smiling: fakes a1 (R1 wrong, R2 right) and a3 (R2 wrong); real r1 (R1 right, R2 wrong).
    assert (smiling.n_fake, smiling.wrong_fake, smiling.n_real, smiling.wrong_real) == (3, 2, 2, 1)
    assert smiling.error.estimate == 3 / 5 and smiling.n_raters == 2
    assert smiling.fake_error == 2 / 3 and smiling.real_error == 1 / 2
    # neutral: fake a2 (R1 right); real r2 (R1 wrong, R2 wrong).
    assert (neutral.n_fake, neutral.wrong_fake, neutral.n_real, neutral.wrong_real) == (1, 0, 2, 2)
    assert neutral.error.estimate == 2 / 3
    assert (glasses.n_answers, glasses.error.estimate, glasses.real_error) == (1, 1.0, None)
    # B's raters answered one tagged image, r1, and got it right.
    b_model, b_tags = by_tag(worked, "B")
    assert list(b_tags) == ["smiling"] and b_tags["smiling"].error.estimate == 0.0
    assert b_model.test is None  # one tag: nothing to compare


def test_a_tags_interval_is_the_rater_bootstrap_of_its_own_stream(worked):
    _, tags = by_tag(worked)
    # R1 then R2 (session order): wrong and answered on smiling images.
    expected = bootstrap_pooled_rate(
        [1, 2], [2, 3], resamples=200, confidence=0.95, seed=tag_seed(worked, "A", "smiling")
    )
    assert tags["smiling"].error == expected
    assert tag_seed(worked, "A", "smiling") != tag_seed(worked, "A", "neutral")


def test_adding_a_tag_changes_no_other_tags_interval(worked):
    _, before = by_tag(worked)
    a4 = worked.images.get(original_name="a4.png")
    ImageTag.objects.create(image=a4, name="blurry")
    _, after = by_tag(worked)
    assert after["blurry"].n_answers == 1
    for tag in ("glasses", "neutral", "smiling"):
        assert after[tag] == before[tag], tag


def test_the_tags_test_is_the_rater_stratified_cmh_of_the_counts(worked):
    model, _ = by_tag(worked)
    # Raters R1, R2 x tags glasses, neutral, smiling.
    wrong = [[0, 1, 1], [1, 1, 2]]
    answered = [[0, 2, 2], [1, 1, 3]]
    assert model.test == tag_difference_test(wrong, answered)
    assert model.test.df == 2 and model.test.n_raters == 2


def test_a_study_without_tags_has_no_subgroups():
    study = study_make(method=Study.Method.INF)
    assert subgroup_results(study) is None


def test_soft_labels_count_the_counted_raters_task_answers_per_image(worked):
    labels = {s.file_name: s for s in image_soft_labels(worked)}
    got = {
        name: (s.answers, s.judged_real, s.share_judged_real, s.share_fooled)
        for name, s in labels.items()
    }
    assert got == {
        "a1.png": (2, 1, 0.5, 0.5),
        "a2.png": (1, 0, 0.0, 0.0),
        "a3.png": (1, 1, 1.0, 1.0),
        "a4.png": (1, 1, 1.0, 1.0),  # R2's qualification answer does not count
        "r1.png": (3, 2, 2 / 3, 1 / 3),  # R1 real, R2 fake, B's rater real
        "r2.png": (2, 0, 0.0, 1.0),
        "b1.png": (1, 1, 1.0, 1.0),
    }
    assert labels["a3.png"].tags == ("glasses", "smiling") and labels["a4.png"].tags == ()
    assert [s.file_name for s in image_soft_labels(worked)][:2] == ["r1.png", "r2.png"]


def test_the_soft_label_csv_writes_its_declared_columns_one_row_per_task_image(worked):
    rows = list(csv.reader(io.StringIO("".join(soft_labels_csv(worked)))))
    assert (
        tuple(rows[0])
        == SOFT_LABEL_COLUMNS
        == (
            "study",
            "image_id",
            "file_name",
            "model",
            "is_real",
            "tags",
            "answers",
            "judged_real",
            "share_judged_real",
            "share_fooled",
        )
    )
    by_name = {row[2]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert len(by_name) == 7
    assert by_name["a3.png"] | {"image_id": ""} == {
        "study": worked.public_id,
        "image_id": "",
        "file_name": "a3.png",
        "model": "A",
        "is_real": "false",
        "tags": "glasses;smiling",
        "answers": "1",
        "judged_real": "1",
        "share_judged_real": "1.0",
        "share_fooled": "1.0",
    }
    assert by_name["r2.png"]["model"] == "" and by_name["r2.png"]["share_fooled"] == "1.0"
    response = export_response(worked, "soft_labels.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"


def page(study) -> str:
    client = Client()
    client.force_login(study.owner)
    response = client.get(f"/studies/{study.public_id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_study_page_shows_the_tag_table_only_when_images_have_tags(worked):
    shown = page(worked)
    assert 'id="subgroup-results"' in shown
    table = shown.split('id="subgroup-results"', 1)[1].split("</table>", 1)[0]
    assert "smiling" in table and "60.0%" in table and "66.7%" in table
    assert "χ²(2) =" in table
    assert "soft_labels.csv" in shown
    plain = study_make(method=Study.Method.INF)
    assert 'id="subgroups"' not in page(plain)
