"""The real FID network for the baseline tests: loaded once, skipped where the optional extra
is not installed, but required (a failure, not a skip) when HYPE_REQUIRE_BASELINES is set, as
`make test` sets it after installing the extra."""

import importlib.util
import os

import pytest


def require_torch():
    if importlib.util.find_spec("torch") is None:
        if os.environ.get("HYPE_REQUIRE_BASELINES"):
            pytest.fail("HYPE_REQUIRE_BASELINES is set but torch is not installed")
        pytest.skip("the baselines extra (torch) is not installed")


@pytest.fixture(scope="session")
def network():
    require_torch()
    from hype.features import InceptionFeatures, weights_locate

    try:
        weights = weights_locate(download=False)
    except Exception as error:  # FeaturesUnavailable, said plainly
        if os.environ.get("HYPE_REQUIRE_BASELINES"):
            pytest.fail(f"HYPE_REQUIRE_BASELINES is set but {error}")
        pytest.skip(str(error))
    return InceptionFeatures(weights, device="cpu", batch_size=8)
