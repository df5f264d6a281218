"""Each model's KID comes from its own random stream, seeded by the study's seed and the
model's name as its bootstrap stream is: adding or removing a model leaves the others' KIDs as
they were, even when every side has more images than a KID subset holds (so subsets are drawn).

The features come from a stand-in network (16 numbers per image, fixed by the image's pixels),
so this runs without torch or weights; tests/hype/test_features_classifier.py and
tests/baselines/ exercise the real network class."""

import hashlib

import numpy as np
import pytest

from experiments.models import Baseline, GenerativeModel, Image
from experiments.services.baselines import baselines_compute, image_features
from hype.features import WeightsSource
from hype.science.bootstrap import model_stream_seed
from hype.science.metrics import kernel_inception_distance
from tests.factories import image_make, png_bytes, study_make

pytestmark = pytest.mark.django_db

SUBSET_SIZE = 4  # below every side's count: 8 real images, 6 fakes per model
SUBSETS = 5


class PixelHashNetwork:
    """A network in name only: each image's features are drawn from a generator seeded by a
    digest of its pixels, so the same image always has the same features, whatever the batch."""

    dimensions = 16
    has_classifier = False

    def __init__(self, tmp_path):
        path = tmp_path / "pixel-hash.pt"
        path.write_bytes(b"not a network")
        self.weights = WeightsSource(path, "setting", "f" * 64, takes_uint8=True)

    def extract_batches(self, images):
        for image in images:
            seed = int.from_bytes(hashlib.sha256(image.tobytes()).digest()[:8], "big")
            yield np.random.default_rng(seed).normal(size=(1, self.dimensions))


@pytest.fixture
def network(tmp_path):
    return PixelHashNetwork(tmp_path)


@pytest.fixture
def study(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    study = study_make(models=("beta", "gamma"), bootstrap_seed=20190226)
    for _ in range(8):
        image_make(study, data=png_bytes())
    for model in study.models.all():
        add_fakes(model)
    return study


def add_fakes(model: GenerativeModel, count: int = 6) -> None:
    for _ in range(count):
        image_make(model.study, model=model, data=png_bytes())


def kids(study, network) -> dict[str, float]:
    baselines = baselines_compute(
        study, network=network, kid_subsets=SUBSETS, kid_subset_size=SUBSET_SIZE
    )
    return {b.model.name: b.kid_mean for b in baselines}


def test_subsets_are_drawn_from_both_sides(study, network):
    (row, *_) = baselines_compute(
        study, network=network, kid_subsets=SUBSETS, kid_subset_size=SUBSET_SIZE
    )
    assert (row.kid_subsets, row.kid_subset_size) == (SUBSETS, SUBSET_SIZE)
    assert row.n_real > SUBSET_SIZE and row.n_fake > SUBSET_SIZE and row.kid_sd is not None


def test_a_model_added_before_the_others_in_name_order_leaves_their_kids_unchanged(study, network):
    before = kids(study, network)
    # "alpha" comes first in name order: with one stream for all models it would have
    # drawn first and moved every other model's subsets.
    add_fakes(GenerativeModel.objects.create(study=study, name="alpha"))
    after = kids(study, network)
    assert set(after) == {"alpha", "beta", "gamma"}
    assert (after["beta"], after["gamma"]) == (before["beta"], before["gamma"])


def test_removing_a_model_leaves_the_others_kids_unchanged(study, network):
    add_fakes(GenerativeModel.objects.create(study=study, name="alpha"))
    before = kids(study, network)
    Image.objects.filter(model__name="alpha").delete()
    study.models.get(name="alpha").delete()
    after = kids(study, network)
    assert set(after) == {"beta", "gamma"}
    assert (after["beta"], after["gamma"]) == (before["beta"], before["gamma"])
    assert Baseline.objects.filter(model__name="alpha").count() == 0


def test_a_models_kid_is_drawn_from_its_bootstrap_stream(study, network):
    stored = kids(study, network)
    real = image_features(
        list(Image.objects.filter(study=study, is_real=True).order_by("id")), network=network
    )
    for name in ("beta", "gamma"):
        fakes = list(Image.objects.filter(model__name=name).order_by("id"))
        kid = kernel_inception_distance(
            real,
            image_features(fakes, network=network),
            subsets=SUBSETS,
            subset_size=SUBSET_SIZE,
            rng=np.random.default_rng(model_stream_seed(study.bootstrap_seed, name)),
        )
        assert stored[name] == kid.mean


def test_the_study_seed_still_moves_every_kid(study, network):
    first = kids(study, network)
    study.bootstrap_seed += 1
    study.save()
    second = kids(study, network)
    assert all(first[name] != second[name] for name in first)
