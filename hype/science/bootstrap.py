"""Bootstrap confidence intervals over raters (percentile, seeded), each model on its own
random stream, and how many raters an interval of a given width needs."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from hype.science.checks import finite_array

# Tables of sums of k resampled values hold n**k entries; beyond this size they stop fitting
# in cache and the gather gets slower than drawing the k indices one by one.
_MAX_TABLE_SIZE = 1 << 16


@dataclass(frozen=True)
class BootstrapResult:
    """A percentile bootstrap: the estimate on the data, the SD of the bootstrap statistics,
    the interval, and everything needed to reproduce it."""

    estimate: float
    sd: float
    low: float
    high: float
    n: int
    resamples: int
    confidence: float
    seed: int


def _check_settings(*, resamples: int, confidence: float, seed: int) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _resample_sums(
    tables: Sequence[np.ndarray], *, resamples: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """For each array in tables (all of length n), the sums over `resamples` bootstrap
    resamples of n items drawn with replacement, using the same draws for every array.

    The sum of k items drawn with replacement is one draw from the n**k sums of k-tuples:
    drawing an index in [0, n**k) is exactly drawing k independent indices in [0, n). So we
    build that table and draw n // k indices into it (plus n % k single draws), which is the
    same resampling distribution with k times fewer random numbers and lookups.
    """
    n = len(tables[0])
    k = next(k for k in (3, 2, 1) if n**k <= _MAX_TABLE_SIZE or k == 1)
    groups, singles = divmod(n, k)
    # Rows are the draws, columns the resamples: summing over rows adds contiguous vectors.
    tuple_draws = rng.integers(0, n**k, size=(groups, resamples))
    single_draws = rng.integers(0, n, size=(singles, resamples)) if singles else None
    sums = []
    for values in tables:
        table = values
        for _ in range(k - 1):
            table = (table[:, None] + values[None, :]).ravel()
        total = table.take(tuple_draws).sum(axis=0)
        if single_draws is not None:
            total += values.take(single_draws).sum(axis=0)
        sums.append(total)
    return sums


def _summarise(
    statistics: np.ndarray,
    *,
    estimate: float,
    n: int,
    resamples: int,
    confidence: float,
    seed: int,
) -> BootstrapResult:
    alpha = (1.0 - confidence) / 2.0
    # numpy's default (linear) quantile is scipy.stats.bootstrap's percentile definition.
    low, high = np.quantile(statistics, [alpha, 1.0 - alpha])
    sd = float(statistics.std(ddof=1)) if resamples > 1 else 0.0
    return BootstrapResult(
        estimate=estimate,
        sd=sd,
        low=float(low),
        high=float(high),
        n=n,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
    )


def _bootstrap_mean(
    scores: np.ndarray,
    *,
    resamples: int,
    confidence: float,
    seed: int,
    rng: np.random.Generator,
) -> BootstrapResult:
    (sums,) = _resample_sums([scores], resamples=resamples, rng=rng)
    return _summarise(
        sums / scores.size,
        estimate=float(scores.mean()),
        n=scores.size,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
    )


def bootstrap_mean(
    values: ArrayLike, *, resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> BootstrapResult:
    """Percentile bootstrap of the mean over raters (one score per rater), e.g. HYPE_time."""
    _check_settings(resamples=resamples, confidence=confidence, seed=seed)
    scores = finite_array(values, what="rater scores")
    return _bootstrap_mean(
        scores,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        rng=np.random.default_rng(seed),
    )


def bootstrap_pooled_rate(
    numerators: ArrayLike,
    denominators: ArrayLike,
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Percentile bootstrap of a pooled rate sum(num) / sum(den), resampling raters with all
    of their answers (HYPE_inf: num = wrong answers, den = answers, one entry per rater).
    """
    _check_settings(resamples=resamples, confidence=confidence, seed=seed)
    num = finite_array(numerators, what="numerators")
    den = finite_array(denominators, what="denominators")
    if num.shape != den.shape:
        raise ValueError(f"need one numerator per denominator, got {num.size} and {den.size}")
    if (den <= 0).any() or (num < 0).any():
        raise ValueError("denominators must be positive and numerators non-negative")
    rng = np.random.default_rng(seed)
    num_sums, den_sums = _resample_sums([num, den], resamples=resamples, rng=rng)
    return _summarise(
        num_sums / den_sums,
        estimate=float(num.sum() / den.sum()),
        n=num.size,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
    )


def model_stream_seed(seed: int, model_name: str) -> int:
    """The seed of one model's bootstrap stream: fixed by the study's seed and the model's name
    (a stable hash, not Python's per-process hash()), so a model's interval does not change
    when models are added and the models' Monte Carlo errors are independent."""
    digest = hashlib.blake2b(f"{seed}:{model_name}".encode(), digest_size=4)
    return int.from_bytes(digest.digest(), "big")


def bootstrap_many(
    groups: Mapping[str, ArrayLike],
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, BootstrapResult]:
    """bootstrap_mean for several models at once.

    Each model gets its own random stream, seeded by model_stream_seed(seed, name): its
    interval depends only on its own data, the seed and its name, never on which other models
    are in the mapping or their order, and equals bootstrap_mean(values,
    seed=model_stream_seed(seed, name)), which is how a study's scores are made.
    """
    _check_settings(resamples=resamples, confidence=confidence, seed=seed)
    checked = {
        name: finite_array(values, what=f"rater scores of {name!r}")
        for name, values in groups.items()
    }
    return {
        name: _bootstrap_mean(
            scores,
            resamples=resamples,
            confidence=confidence,
            seed=model_stream_seed(seed, name),
            rng=np.random.default_rng(model_stream_seed(seed, name)),
        )
        for name, scores in checked.items()
    }


# --- Planning: how many raters ---------------------------------------------------------


def raters_for_width(rater_scores: ArrayLike, *, width: float, confidence: float = 0.95) -> int:
    """How many raters per model the observed spread suggests for an interval `width` wide.

    The normal approximation of a mean's interval, 2 z s / sqrt(n) = width, solved for n:
    n = ceil((2 z s / width)^2), with s the SD of the rater scores (ddof=1) and z the
    two-sided normal quantile of `confidence`. For HYPE_inf pass the per-rater error rates
    and the width as a fraction. Never fewer than 2: a spread, and a test between models,
    need two raters.
    """
    scores = finite_array(rater_scores, what="rater scores")
    if scores.size < 2:
        raise ValueError(f"need at least two rater scores to measure a spread, got {scores.size}")
    if isinstance(width, bool) or not math.isfinite(width) or width <= 0:
        raise ValueError(f"width must be a positive number, got {width!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    spread = float(scores.std(ddof=1))
    exact = (2.0 * z * spread / width) ** 2
    # Rounding noise must not turn an exact 30.0 into 31 raters.
    return max(2, math.ceil(exact - 1e-9))
