"""Times hype.science.bootstrap.bootstrap_many against scipy.stats.bootstrap on a study of
10 models x 30 raters x 10,000 resamples, and checks that the intervals agree.

Run from the repository root: .venv/bin/python bench/bootstrap.py
"""

import numpy as np
from scipy import stats

from common import best_of
from hype.science.bootstrap import bootstrap_many

MODELS = 10
RATERS = 30
RESAMPLES = 10_000
CONFIDENCE = 0.95
REPEATS = 9


def main() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(rng.uniform(200, 450, (MODELS, 1)), 60, (MODELS, RATERS))
    groups = {f"model {i}": row for i, row in enumerate(data)}
    scipy_rng = np.random.default_rng(1)

    def ours():
        return bootstrap_many(groups, resamples=RESAMPLES, confidence=CONFIDENCE, seed=0)

    def scipy_per_model():
        # Like for like: every model gets its own resamples, as bootstrap_many does.
        return [
            stats.bootstrap(
                (row,),
                np.mean,
                vectorized=True,
                method="percentile",
                n_resamples=RESAMPLES,
                confidence_level=CONFIDENCE,
                rng=scipy_rng,
            )
            for row in data
        ]

    def scipy_batched():
        # Fastest scipy call, but scipy draws ONE index matrix and applies it to every model,
        # so it generates a tenth of the random numbers and the models share resamples.
        return stats.bootstrap(
            (data,),
            np.mean,
            axis=-1,
            vectorized=True,
            method="percentile",
            n_resamples=RESAMPLES,
            confidence_level=CONFIDENCE,
            rng=scipy_rng,
        )

    ours(), scipy_per_model(), scipy_batched()  # warm up imports and caches
    t_ours, results = best_of(ours, REPEATS)
    t_loop, per_model = best_of(scipy_per_model, REPEATS)
    t_batch, _ = best_of(scipy_batched, REPEATS)

    # Interval ends differ only by Monte Carlo error: SE of a bootstrap q-quantile is
    # sqrt(q(1-q)/B) / density at the quantile, read off scipy's bootstrap distribution.
    worst_ms, worst_in_se = 0.0, 0.0
    for result, theirs in zip(results.values(), per_model, strict=True):
        dist = theirs.bootstrap_distribution
        for q, mine, their in (
            (0.025, result.low, theirs.confidence_interval.low),
            (0.975, result.high, theirs.confidence_interval.high),
        ):
            lo, hi = np.quantile(dist, [q - 0.01, q + 0.01])
            se = np.sqrt(q * (1 - q) / RESAMPLES) * (hi - lo) / 0.02
            diff = abs(mine - their)
            worst_ms = max(worst_ms, diff)
            worst_in_se = max(worst_in_se, diff / (np.sqrt(2) * se))

    print(
        f"bootstrap of {MODELS} models x {RATERS} raters x {RESAMPLES:,} resamples, "
        f"best of {REPEATS}"
    )
    print(f"  hype bootstrap_many             {1e3 * t_ours:8.2f} ms")
    print(
        f"  scipy, one call per model       {1e3 * t_loop:8.2f} ms   "
        f"ratio {t_loop / t_ours:5.1f}x  (same procedure)"
    )
    print(
        f"  scipy, one batched call         {1e3 * t_batch:8.2f} ms   "
        f"ratio {t_batch / t_ours:5.1f}x  (models share one index matrix)"
    )
    print(
        f"  max |interval end difference|   {worst_ms:8.3f} ms = {worst_in_se:.2f} MC SE "
        f"of the difference (expect < ~3.5 over {2 * MODELS} ends)"
    )


if __name__ == "__main__":
    main()
