"""Weights that carry the classifier give class probabilities with the features, from the same
forward pass: those the network itself gives without the output bias (StyleGAN2-ADA's IS call).
Weights that stop at pool3 say so. A small random TorchScript of NVIDIA's interface stands in
for inception-2015-12-05.pt (tests/fakes/inception.py): no real weights."""

import numpy as np
import pytest

from tests.baselines.conftest import require_torch
from tests.fakes.inception import CLASSES, tiny_inception_save

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


def pictures(count: int, *, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(count)]


def loaded(path):
    from hype.features import InceptionFeatures, weights_locate

    return InceptionFeatures(weights_locate(setting=path), device="cpu", batch_size=3)


class CountingCalls:
    """The loaded TorchScript, counting its forward calls."""

    def __init__(self, network):
        self.network, self.calls = network, []

    def __call__(self, *args, **kwargs):
        self.calls.append(kwargs)
        return self.network(*args, **kwargs)


@pytest.fixture
def classifier_weights(tmp_path):
    require_torch()
    return tiny_inception_save(tmp_path)


def test_weights_with_the_classifier_give_its_unbiased_softmax_from_the_same_pass(
    classifier_weights,
):
    import torch

    network = loaded(classifier_weights)
    assert network.weights.takes_uint8 and network.has_classifier and network.classes == CLASSES
    counted = network.network = CountingCalls(network.network)
    images = pictures(7)
    features, probabilities = network.extract_with_probabilities(images)
    # One call per batch of 3, each asking for the features only.
    assert counted.calls == [{"return_features": True}] * 3
    batch = torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2))
    with torch.inference_mode():
        expected_features = counted.network(batch, return_features=True).numpy()
        unbiased = counted.network(batch, no_output_bias=True).numpy()
        biased = counted.network(batch).numpy()
    assert features.shape == (7, 2048) and probabilities.shape == (7, CLASSES)
    assert np.abs(features - expected_features).max() <= 1e-5 * np.abs(expected_features).max()
    assert np.abs(probabilities - unbiased).max() <= 1e-5
    assert np.abs(probabilities - biased).max() > 1e-2  # the bias is left out, as it should
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)


def test_probabilities_from_cached_features_equal_those_of_the_pass(classifier_weights):
    network = loaded(classifier_weights)
    features, probabilities = network.extract_with_probabilities(pictures(4, seed=1))
    # The cache keeps float32 features, as the network computes them.
    cached = features.astype("<f4").astype(np.float64)
    assert np.array_equal(network.class_probabilities(cached), probabilities)


def test_weights_that_stop_at_pool3_have_no_classifier_and_say_so(tmp_path):
    require_torch()
    from hype.features import FeaturesUnavailable

    network = loaded(tiny_inception_save(tmp_path, classifier=False))
    assert not network.has_classifier and network.classes is None
    assert network.extract(pictures(2)).shape == (2, 2048)
    with pytest.raises(FeaturesUnavailable, match="stops at pool3: it has no classifier"):
        network.extract_with_probabilities(pictures(2))
