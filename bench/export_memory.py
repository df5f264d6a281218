"""Peak Python memory (tracemalloc) of streaming the trials export of a 10,000-trial and a
100,000-trial study: it should not grow with the study. For scale, the peak of merely
holding the same rows in a list is printed next to it.

Run from the repository root: .venv/bin/python bench/export_memory.py
It makes a throwaway test database (SQLite in the temp folder by default, or a test_...
database next to DATABASE_URL's) and deletes it at the end; nothing else is touched.
"""

import time
import tracemalloc

from common import on_a_test_database

SIZES = (("small", 5), ("large", 50))  # raters per model; x 10 models x 200 trials
MODELS = 10
TRIALS_PER_RATER = 200


def traced(function):
    """(peak traced bytes, result, seconds) of function()."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = time.perf_counter()
        result = function()
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result, seconds


def main() -> None:
    from asgiref.sync import async_to_sync

    from experiments.services.exports.downloads import export_response
    from experiments.services.exports.trials import trial_rows
    from tests.bulk import bulk_study_make
    from tests.factories import user_make

    def wsgi(study):
        # How a WSGI server sends a streaming response: iterating it.
        return sum(len(part) for part in export_response(study, "trials.csv"))

    def asgi(study):
        # How Django's ASGI handler sends it: async iteration
        # (see experiments.services.exports.downloads).
        async def send():
            return sum([len(part) async for part in export_response(study, "trials.csv")])

        return async_to_sync(send)()

    owner = user_make("bench")
    rows = []
    for label, raters in SIZES:
        study = bulk_study_make(
            owner=owner,
            models=MODELS,
            raters_per_model=raters,
            trials_per_rater=TRIALS_PER_RATER,
            blocks=2,
            name=f"{label} study",
        )
        trials = MODELS * raters * TRIALS_PER_RATER
        start = time.perf_counter()
        size = wsgi(study)
        untraced = time.perf_counter() - start
        wsgi_peak, _, _ = traced(lambda s=study: wsgi(s))
        asgi_peak, _, _ = traced(lambda s=study: asgi(s))
        listed, _, _ = traced(lambda s=study: len(list(trial_rows(s))))
        rows.append((trials, size, untraced, wsgi_peak, asgi_peak, listed))

    print("trials.csv streamed; peak traced Python memory while sending it")
    print(
        f"  {'trials':>8}  {'CSV':>9}  {'time':>6}  {'WSGI peak':>9}  {'ASGI peak':>9}  "
        f"{'the rows in a list':>18}"
    )
    for trials, size, seconds, wsgi_peak, asgi_peak, listed in rows:
        print(
            f"  {trials:>8,}  {size / 1e6:>6.1f} MB  {seconds:>4.1f} s  "
            f"{wsgi_peak / 1e6:>6.2f} MB  {asgi_peak / 1e6:>6.2f} MB  {listed / 1e6:>15.1f} MB"
        )
    small, large = rows
    print(
        f"  peak ratio large/small: WSGI {large[3] / small[3]:.2f}x, ASGI "
        f"{large[4] / small[4]:.2f}x, for {large[0] / small[0]:.0f}x the trials "
        f"({large[1] / small[1]:.1f}x the CSV; the list grows {large[5] / small[5]:.1f}x)"
    )


if __name__ == "__main__":
    on_a_test_database(main)
