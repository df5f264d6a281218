"""Exports stream: the peak Python memory of reading a study's trials and raters exports does
not grow with the number of trials (tracemalloc counts allocations, so this is deterministic
enough to test, unlike a clock)."""

import tracemalloc

import pytest
from asgiref.sync import async_to_sync

from experiments.models import Answer
from experiments.services.exports.downloads import export_response
from tests.bulk import bulk_study_make
from tests.factories import user_make

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

# What the joint psychometric fit holds per timed trial while it runs (its float exposures and
# answers, the fit's own copies of them and their concatenation; measured: about 55).
FIT_BYTES_PER_TRIAL = 80


def peak_bytes(consume) -> tuple[int, int]:
    """(peak traced bytes while consume() ran, bytes it returned)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        size = consume()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, size


def streamed(study, kind):
    """Consume the export as an ASGI server sends it (the way HYPE is served), a part at a
    time. (A WSGI server iterates the same generator.)"""

    async def send():
        return sum([len(part) async for part in export_response(study, kind)])

    return lambda: async_to_sync(send)()


def test_the_peak_memory_of_an_export_does_not_grow_with_the_size_of_the_study():
    owner = user_make()
    # 10 models x 5 raters x 200 trials = 10,000 answered trials, against 100,000.
    shape = {"models": 10, "trials_per_rater": 200, "blocks": 2}
    small = bulk_study_make(owner=owner, raters_per_model=5, **shape)
    large = bulk_study_make(owner=owner, raters_per_model=50, **shape)
    assert Answer.objects.filter(trial__session__study=large).count() == 100_000

    # The raters export too: per-rater scores from one stream of all the answers. Its HYPE_time
    # fitted thresholds come from one joint fit of every rater's timed trials (a shared slope),
    # which holds those trials as arrays while it runs: that, and only that, grows with the
    # study, by at most FIT_BYTES_PER_TRIAL a trial.
    trials = {"trials.csv": 0, "raters.csv": 90_000}
    for kind in ("trials.csv", "raters.csv"):
        small_peak, small_size = peak_bytes(streamed(small, kind))
        large_peak, large_size = peak_bytes(streamed(large, kind))
        assert large_size > 9 * small_size  # the large export really is ten times larger
        allowed = 1.5 * small_peak + FIT_BYTES_PER_TRIAL * trials[kind]
        assert large_peak <= allowed, (kind, small_peak, large_peak)
