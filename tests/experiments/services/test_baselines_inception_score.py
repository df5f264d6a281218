"""The Inception Score of every model's fakes, stored next to FID and KID when the Inception
weights carry the classifier, and null (with the reason on the page) when they stop at pool3;
carried wherever KID is: scores.csv, the bundle and the API. The weights are a small random
TorchScript of NVIDIA's interface named by HYPE_INCEPTION_WEIGHTS (tests/fakes/inception.py)."""

import csv
import io
import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from experiments.models import Baseline, Image
from experiments.services.baselines import (
    IS_SPLITS,
    baselines_compute,
    baselines_summary,
    network_load,
)
from experiments.services.exports.bundle import bundle
from experiments.services.exports.scores import scores_csv
from experiments.services.results_data import study_results_data
from experiments.services.scores import study_results
from hype.science.metrics import inception_score
from tests.baselines.conftest import require_torch
from tests.factories import image_make, study_make
from tests.fakes.inception import tiny_inception_save

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning"),
]


def png(seed: int) -> bytes:
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def study(settings, tmp_path):
    """12 real images; 30 fakes per model, so each of the 10 splits holds 3."""
    settings.MEDIA_ROOT = tmp_path / "media"
    study = study_make(models=("alpha", "beta"))
    for i in range(12):
        image_make(study, data=png(i))
    for offset, model in enumerate(study.models.order_by("name"), start=1):
        for i in range(30):
            image_make(study, model=model, data=png(1000 * offset + i))
    return study


@pytest.fixture(autouse=True)
def _no_frechet_distance(monkeypatch):
    """FID of 2048-d features from a few dozen images takes an eigendecomposition of a
    singular 2048 x 2048 covariance, seconds each on a busy CPU, and is tested elsewhere
    (tests/baselines, tests/science/test_metrics.py): here it is a constant."""
    monkeypatch.setattr("experiments.services.baselines.frechet_distance", lambda a, b: 1.0)


def weights(settings, tmp_path, *, classifier: bool):
    require_torch()
    folder = tmp_path / ("with-classifier" if classifier else "pool3")
    folder.mkdir()
    settings.HYPE_INCEPTION_WEIGHTS = str(tiny_inception_save(folder, classifier=classifier))


def unbiased_probabilities(path, images) -> np.ndarray:
    """What StyleGAN2-ADA's IS asks the network for, one image at a time, without our code."""
    import torch
    from PIL import Image as PILImage

    module = torch.jit.load(str(path), map_location="cpu").eval()
    rows = []
    for image in images:
        with image.file.open("rb") as handle:
            array = np.asarray(PILImage.open(handle).convert("RGB"))
        with torch.inference_mode():
            tensor = torch.from_numpy(array.transpose(2, 0, 1)[None].copy())
            rows.append(module(tensor, no_output_bias=True)[0].numpy().astype(np.float64))
    return np.vstack(rows)


def test_each_models_fakes_get_the_inception_score_of_the_networks_own_probabilities(
    settings, tmp_path, study
):
    weights(settings, tmp_path, classifier=True)
    stored = {
        b.model.name: b
        for b in baselines_compute(study, network=network_load(device="cpu"), kid_subsets=5)
    }
    for name in ("alpha", "beta"):
        fakes = list(Image.objects.filter(model__name=name).order_by("id"))
        expected = inception_score(
            unbiased_probabilities(settings.HYPE_INCEPTION_WEIGHTS, fakes), splits=IS_SPLITS
        )
        assert stored[name].inception_score == pytest.approx(expected.mean, rel=1e-5)
        assert stored[name].inception_score_sd == pytest.approx(expected.sd, rel=1e-3, abs=1e-6)
        assert stored[name].inception_score > 1.5  # confident, varied predictions
    assert baselines_summary(study, study_results(study)).inception_score_absent == ""


def test_the_command_prints_each_models_score_and_the_real_images(settings, tmp_path, study):
    weights(settings, tmp_path, classifier=True)
    out = StringIO()
    call_command(
        "compute_baselines", study.public_id, "--no-progress", "--kid-subsets", "5", stdout=out
    )
    text = out.getvalue()
    alpha = Baseline.objects.get(model__name="alpha")
    assert f"{alpha.inception_score:.2f}±{alpha.inception_score_sd:.2f}" in text
    reals = list(Image.objects.filter(study=study, is_real=True).order_by("id"))
    real = inception_score(
        unbiased_probabilities(settings.HYPE_INCEPTION_WEIGHTS, reals), splits=IS_SPLITS
    )
    assert f"Inception Score of the real images: {real.mean:.2f} ± {real.sd:.2f}" in text


def test_weights_that_stop_at_pool3_store_no_score_and_the_summary_says_why(
    settings, tmp_path, study
):
    weights(settings, tmp_path, classifier=False)
    out = StringIO()
    call_command(
        "compute_baselines", study.public_id, "--no-progress", "--kid-subsets", "5", stdout=out
    )
    assert set(Baseline.objects.values_list("inception_score", "inception_score_sd")) == {
        (None, None)
    }
    assert "No Inception Score: Inception Score needs Inception weights with the classifier" in (
        out.getvalue()
    )
    absent = baselines_summary(study, study_results(study)).inception_score_absent
    assert absent.startswith("Inception Score needs Inception weights with the classifier")
    assert "stop at pool3" in absent


def stored_row(study, **fields) -> Baseline:
    return Baseline.objects.create(
        study=study,
        model=study.models.get(name="alpha"),
        fid=12.5,
        kid_mean=0.01,
        kid_sd=0.001,
        kid_subsets=100,
        kid_subset_size=12,
        precision=0.7,
        recall=0.6,
        neighbours=3,
        n_real=12,
        n_fake=12,
        weights_origin="nvidia",
        weights_sha256="0" * 64,
        **fields,
    )


def test_the_exports_and_the_api_carry_the_score_wherever_they_carry_kid(study):
    stored_row(study, inception_score=3.0625, inception_score_sd=0.25)
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO("".join(scores_csv(study))))}
    assert (rows["alpha"]["inception_score"], rows["alpha"]["inception_score_sd"]) == (
        "3.0625",
        "0.25",
    )
    assert rows["beta"]["inception_score"] == rows["beta"]["inception_score_sd"] == ""
    exported = json.loads(json.dumps(bundle(study)))
    (entry,) = exported["baselines"]
    assert (entry["inception_score"], entry["inception_score_sd"]) == (3.0625, 0.25)
    for results in (exported["results"], exported["results_without_exclusions"]):
        by_name = {m["name"]: m for m in results["models"]}
        assert by_name["alpha"]["inception_score"] == 3.0625
        assert by_name["beta"]["inception_score"] is None
    api = {m["name"]: m for m in study_results_data(study=study)["models"]}
    assert api["alpha"]["baselines"]["inception_score"] == 3.0625
    assert api["alpha"]["baselines"]["inception_score_sd"] == 0.25


def test_rows_from_before_the_score_or_with_too_few_fakes_are_told_apart(study):
    row = stored_row(study)
    absent = baselines_summary(study, study_results(study)).inception_score_absent
    assert "or they were computed before HYPE computed it" in absent
    row.n_fake = IS_SPLITS - 1
    row.save()
    absent = baselines_summary(study, study_results(study)).inception_score_absent
    assert absent.startswith(f"Inception Score needs at least {IS_SPLITS} fakes per model")
