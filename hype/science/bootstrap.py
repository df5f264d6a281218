"""Bootstrap confidence intervals over raters (percentile, BCa or studentized; seeded), each
model on its own random stream, and how many raters an interval of a given width needs."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from hype.science.checks import finite_array

# The interval methods: "percentile" (the HYPE paper's, the default), "bca" (bias-corrected
# and accelerated) and "studentized" (bootstrap-t). All three read the same resamples.
INTERVAL_METHODS = ("percentile", "bca", "studentized")

# Sums of squares left over after cancellation below this share of their size are rounding,
# not spread: a resample of one rater repeated. Data count as all alike when their RMS
# spread is below this share of their size.
_ZERO_SPREAD = 1e-12

# Tables of sums of k resampled values hold n**k entries; beyond this size they stop fitting
# in cache and the gather gets slower than drawing the k indices one by one.
_MAX_TABLE_SIZE = 1 << 16


@dataclass(frozen=True)
class BootstrapResult:
    """A bootstrap: the estimate on the data, the SD of the bootstrap statistics, the interval,
    and everything needed to reproduce it (method is one of INTERVAL_METHODS)."""

    estimate: float
    sd: float
    low: float
    high: float
    n: int
    resamples: int
    confidence: float
    seed: int
    method: str = "percentile"


def _check_settings(
    *, resamples: int, confidence: float, seed: int, method: str = "percentile"
) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {', '.join(INTERVAL_METHODS)}, got {method!r}")


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


def _percentile_interval(statistics: np.ndarray, *, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    # numpy's default (linear) quantile is scipy.stats.bootstrap's percentile definition.
    low, high = np.quantile(statistics, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bca_adjustment(
    *, statistics: ArrayLike, jackknife: ArrayLike, estimate: float
) -> tuple[float, float]:
    """BCa's (bias correction z0, acceleration a) from the bootstrap statistics, the
    leave-one-rater-out jackknife statistics and the estimate on all raters.

    z0 is the normal quantile of the share of bootstrap statistics below the estimate, ties
    counting half (as scipy.stats.bootstrap does); a is the jackknife's skewness,
    sum(d^3) / (6 sum(d^2)^1.5) with d = mean(jackknife) - jackknife. With no spread (one
    rater, or all raters alike) a is 0.
    """
    boot = np.asarray(statistics, dtype=float)
    jack = np.asarray(jackknife, dtype=float)
    resamples = boot.size
    share = (np.count_nonzero(boot < estimate) + np.count_nonzero(boot <= estimate)) / (
        2.0 * resamples
    )
    # An estimate beyond every resample would make z0 infinite and the levels undefined
    # (scipy returns NaN); half a resample short of the end keeps them finite.
    share = min(max(share, 0.5 / resamples), 1.0 - 0.5 / resamples)
    z0 = float(special.ndtri(share))
    if jack.size < 2:
        return z0, 0.0
    d = jack.mean() - jack
    spread = float((d**2).sum())
    scale = float(np.abs(jack).max())
    if spread <= _ZERO_SPREAD**2 * jack.size * scale**2:
        return z0, 0.0
    return z0, float((d**3).sum() / (6.0 * spread**1.5))


def _bca_level(z0: float, a: float, z: float) -> float:
    shifted = z0 + z
    denominator = 1.0 - a * shifted
    # Past a pole the formula would swap tails; its limit there is the end of the
    # bootstrap distribution on that side.
    if denominator <= 0.0:
        return 1.0 if shifted > 0 else 0.0
    return float(special.ndtr(z0 + shifted / denominator))


def bca_interval(
    *, statistics: ArrayLike, jackknife: ArrayLike, estimate: float, confidence: float
) -> tuple[float, float]:
    """The BCa interval: the bootstrap statistics' quantiles at the levels
    Phi(z0 + (z0 + z) / (1 - a (z0 + z))) for z = -+ z_(1 - alpha/2), z0 and a from
    bca_adjustment, linear quantiles as for the percentile interval. This is the step of
    scipy.stats.bootstrap(method="BCa") after its resampling, given the same statistics."""
    boot = np.asarray(statistics, dtype=float)
    z0, a = bca_adjustment(statistics=boot, jackknife=jackknife, estimate=estimate)
    z = float(special.ndtri((1.0 - confidence) / 2.0))
    levels = [_bca_level(z0, a, z), _bca_level(z0, a, -z)]
    low, high = np.quantile(boot, levels)
    return float(low), float(high)


def _quantiles_allowing_infinity(values: np.ndarray, levels: Sequence[float]) -> list[float]:
    with np.errstate(invalid="ignore"):
        found = np.quantile(values, levels)
    if np.isfinite(found).all():
        return [float(q) for q in found]
    # Linear interpolation touching an infinite order statistic is that infinity (numpy
    # gives NaN for inf - inf).
    ordered = np.sort(values)
    last = ordered.size - 1
    out = []
    for level, q in zip(levels, found, strict=True):
        if not np.isfinite(q):
            below = ordered[math.floor(level * last)]
            q = below if not np.isfinite(below) else ordered[math.ceil(level * last)]
        out.append(float(q))
    return out


def studentized_interval(
    *,
    statistics: ArrayLike,
    standard_errors: ArrayLike,
    estimate: float,
    standard_error: float,
    confidence: float,
) -> tuple[float, float]:
    """The studentized (bootstrap-t) interval: estimate - t_hi se, estimate - t_lo se, with
    t_lo, t_hi the linear quantiles of t = (statistic - estimate) / its resample's SE.

    A resample with no spread (the same rater drawn n times) has t = +-inf, which keeps it in
    the tail where it belongs; if such resamples reach a tail quantile (a handful of raters,
    or heavily tied ones) that end is the most extreme bootstrap statistic instead of
    infinite. No spread in the data gives the zero-width interval at the estimate.
    """
    boot = np.asarray(statistics, dtype=float)
    ses = np.asarray(standard_errors, dtype=float)
    if standard_error <= 0.0:
        return estimate, estimate
    deviations = boot - estimate
    spread = ses > 0.0
    t = np.where(deviations == 0.0, 0.0, np.copysign(np.inf, deviations))
    np.divide(deviations, ses, out=t, where=spread)
    alpha = (1.0 - confidence) / 2.0
    t_low, t_high = _quantiles_allowing_infinity(t, [alpha, 1.0 - alpha])
    low = estimate - t_high * standard_error
    high = estimate - t_low * standard_error
    if not math.isfinite(low):
        low = min(float(boot.min()), estimate)
    if not math.isfinite(high):
        high = max(float(boot.max()), estimate)
    return float(low), float(high)


def _summarise(
    statistics: np.ndarray,
    *,
    interval: tuple[float, float],
    estimate: float,
    n: int,
    resamples: int,
    confidence: float,
    seed: int,
    method: str,
) -> BootstrapResult:
    sd = float(statistics.std(ddof=1)) if resamples > 1 else 0.0
    return BootstrapResult(
        estimate=estimate,
        sd=sd,
        low=interval[0],
        high=interval[1],
        n=n,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        method=method,
    )


def _bootstrap_mean(
    scores: np.ndarray,
    *,
    resamples: int,
    confidence: float,
    seed: int,
    rng: np.random.Generator,
    method: str,
) -> BootstrapResult:
    n = scores.size
    estimate = float(scores.mean())
    # Centring keeps the resampled sums of squares free of cancellation; extra tables reuse
    # the same draws, so every method reads the percentile interval's resamples.
    tables = [scores, (scores - estimate) ** 2] if method == "studentized" else [scores]
    sums, *more = _resample_sums(tables, resamples=resamples, rng=rng)
    statistics = sums / n
    if method == "percentile":
        interval = _percentile_interval(statistics, confidence=confidence)
    elif method == "bca":
        # Leaving rater i out of a mean moves it by (x_i - mean) / (n - 1).
        jackknife = (scores.sum() - scores) / (n - 1) if n > 1 else scores[:0]
        interval = bca_interval(
            statistics=statistics, jackknife=jackknife, estimate=estimate, confidence=confidence
        )
    else:
        interval = _studentized_mean(
            scores=scores, sums=sums, squares=more[0], estimate=estimate, confidence=confidence
        )
    return _summarise(
        statistics,
        interval=interval,
        estimate=estimate,
        n=n,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        method=method,
    )


def _studentized_mean(
    *,
    scores: np.ndarray,
    sums: np.ndarray,
    squares: np.ndarray,
    estimate: float,
    confidence: float,
) -> tuple[float, float]:
    """Bootstrap-t of a mean, given the resampled sums of the scores and of their squared
    deviations from the estimate."""
    n = scores.size
    statistics = sums / n
    total = float(((scores - estimate) ** 2).sum())
    if n < 2 or total <= _ZERO_SPREAD**2 * n * float(np.abs(scores).max()) ** 2:
        return estimate, estimate
    shifts = sums - n * estimate
    within = squares - shifts**2 / n
    # s^2 / n with s the resample's SD (ddof=1), as for the estimate's SE.
    variances = np.where(within > _ZERO_SPREAD * squares, within, 0.0) / ((n - 1) * n)
    return studentized_interval(
        statistics=statistics,
        standard_errors=np.sqrt(variances),
        estimate=estimate,
        standard_error=math.sqrt(total / ((n - 1) * n)),
        confidence=confidence,
    )


def bootstrap_mean(
    values: ArrayLike,
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "percentile",
) -> BootstrapResult:
    """Bootstrap of the mean over raters (one score per rater), e.g. HYPE_time; method is one
    of INTERVAL_METHODS, and all of them use the same resamples for a seed."""
    _check_settings(resamples=resamples, confidence=confidence, seed=seed, method=method)
    scores = finite_array(values, what="rater scores")
    return _bootstrap_mean(
        scores,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        rng=np.random.default_rng(seed),
        method=method,
    )


def bootstrap_pooled_rate(
    numerators: ArrayLike,
    denominators: ArrayLike,
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "percentile",
) -> BootstrapResult:
    """Bootstrap of a pooled rate sum(num) / sum(den), resampling raters with all of their
    answers (HYPE_inf: num = wrong answers, den = answers, one entry per rater); method is one
    of INTERVAL_METHODS, and all of them use the same resamples for a seed.

    The studentized interval uses the delta-method SE of a ratio and is cut to the rate's
    range, [0, 1] when no rater has more wrong answers than answers ([0, inf) otherwise).
    """
    _check_settings(resamples=resamples, confidence=confidence, seed=seed, method=method)
    num = finite_array(numerators, what="numerators")
    den = finite_array(denominators, what="denominators")
    if num.shape != den.shape:
        raise ValueError(f"need one numerator per denominator, got {num.size} and {den.size}")
    if (den <= 0).any() or (num < 0).any():
        raise ValueError("denominators must be positive and numerators non-negative")
    rng = np.random.default_rng(seed)
    tables = [num, den]
    if method == "studentized":
        tables += [num * num, den * den, num * den]
    num_sums, den_sums, *more = _resample_sums(tables, resamples=resamples, rng=rng)
    statistics = num_sums / den_sums
    estimate = float(num.sum() / den.sum())
    if method == "percentile":
        interval = _percentile_interval(statistics, confidence=confidence)
    elif method == "bca":
        jackknife = (num.sum() - num) / (den.sum() - den) if num.size > 1 else num[:0]
        interval = bca_interval(
            statistics=statistics, jackknife=jackknife, estimate=estimate, confidence=confidence
        )
    else:
        nn, dd, nd = more
        # sum over the resample of (num_i - R* den_i)^2: the delta method's variance of R*
        # times sum(den)^2, from sums the same draws give.
        spread = dd * statistics**2
        within = nn - 2.0 * statistics * nd + spread
        size = nn + spread
        within = np.where(within > _ZERO_SPREAD * size, within, 0.0)
        residuals = num - estimate * den
        total = float((residuals**2).sum())
        standard_error = 0.0
        if total > _ZERO_SPREAD**2 * float((num**2 + estimate**2 * den**2).sum()):
            standard_error = math.sqrt(total) / float(den.sum())
        low, high = studentized_interval(
            statistics=statistics,
            standard_errors=np.sqrt(within) / den_sums,
            estimate=estimate,
            standard_error=standard_error,
            confidence=confidence,
        )
        top = 1.0 if (num <= den).all() else math.inf
        interval = (min(max(low, 0.0), top), min(max(high, 0.0), top))
    return _summarise(
        statistics,
        interval=interval,
        estimate=estimate,
        n=num.size,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        method=method,
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
    method: str = "percentile",
) -> dict[str, BootstrapResult]:
    """bootstrap_mean for several models at once.

    Each model gets its own random stream, seeded by model_stream_seed(seed, name): its
    interval depends only on its own data, the seed and its name, never on which other models
    are in the mapping or their order, and equals bootstrap_mean(values,
    seed=model_stream_seed(seed, name), method=method), which is how a study's scores are made.
    """
    _check_settings(resamples=resamples, confidence=confidence, seed=seed, method=method)
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
            method=method,
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
