"""HYPE scores and their statistics: block thresholds, HYPE_time and HYPE_inf scores,
bootstrap confidence intervals over raters, and tests of whether models differ.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

TIE_RULES = ("mean", "lowest", "highest")

# Tables of sums of k resampled values hold n**k entries; beyond this size they stop fitting
# in cache and the gather gets slower than drawing the k indices one by one.
_MAX_TABLE_SIZE = 1 << 16


# --- HYPE_time ---------------------------------------------------------------------------


def block_threshold(exposures: Sequence[int], *, burn_in: int = 0, tie_rule: str = "mean") -> float:
    """The modal exposure of a block after dropping its first burn_in trials.

    When several exposures are shown equally often, tie_rule picks their mean (the
    default), the lowest or the highest.
    """
    if tie_rule not in TIE_RULES:
        raise ValueError(f"tie_rule must be one of {TIE_RULES}, got {tie_rule!r}")
    if isinstance(burn_in, bool) or not isinstance(burn_in, int) or burn_in < 0:
        raise ValueError(f"burn_in must be a non-negative integer, got {burn_in!r}")
    if len(exposures) == 0:
        raise ValueError("a block needs at least one trial")
    kept = np.asarray(exposures)[burn_in:]
    if kept.size == 0:
        raise ValueError(f"burn_in={burn_in} drops all {len(exposures)} trials of the block")
    values, counts = np.unique(kept, return_counts=True)
    modes = values[counts == counts.max()]
    if tie_rule == "lowest":
        return float(modes.min())
    if tie_rule == "highest":
        return float(modes.max())
    return float(modes.mean())


def rater_time_score(
    blocks: Sequence[Sequence[int]], *, burn_in: int = 0, tie_rule: str = "mean"
) -> float:
    """A rater's HYPE_time score: the mean of their block thresholds, in ms."""
    if len(blocks) == 0:
        raise ValueError("a rater needs at least one block")
    return float(np.mean([block_threshold(b, burn_in=burn_in, tie_rule=tie_rule) for b in blocks]))


def model_time_score(rater_scores: ArrayLike) -> float:
    """A model's HYPE_time score: the mean of its rater scores, in ms."""
    return float(np.mean(_scores(rater_scores, what="rater scores")))


# --- HYPE_inf ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InfScore:
    """HYPE_inf error rates pooled over trials; fake/real errors are NaN without such images."""

    error: float
    fake_error: float
    real_error: float
    n_trials: int
    n_fake: int
    n_real: int


def inf_score(*, is_real: ArrayLike, correct: ArrayLike) -> InfScore:
    """Pooled HYPE_inf error: wrong answers / trials, plus fakes called real and reals called
    fake. With balanced blocks the error is the mean of the fake and real errors.
    """
    real = np.asarray(is_real, dtype=bool)
    right = np.asarray(correct, dtype=bool)
    if real.ndim != 1 or real.shape != right.shape:
        raise ValueError(
            f"is_real and correct must be 1-D and the same length, got shapes {real.shape} "
            f"and {right.shape}"
        )
    if real.size == 0:
        raise ValueError("HYPE_inf needs at least one answered trial")
    wrong = ~right
    n_real = int(real.sum())
    n_fake = real.size - n_real
    return InfScore(
        error=float(wrong.mean()),
        fake_error=float(wrong[~real].sum() / n_fake) if n_fake else math.nan,
        real_error=float(wrong[real].sum() / n_real) if n_real else math.nan,
        n_trials=int(real.size),
        n_fake=n_fake,
        n_real=n_real,
    )


# --- Bootstrap over raters ---------------------------------------------------------------


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


def _scores(values: ArrayLike, *, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"need at least one value in {what}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} must be finite numbers")
    return array


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
    scores = _scores(values, what="rater scores")
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
    num = _scores(numerators, what="numerators")
    den = _scores(denominators, what="denominators")
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


def _stream_key(name: str) -> int:
    # A stable (not per-process salted like hash()) 64-bit number for a model's name.
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")


def bootstrap_many(
    groups: Mapping[str, ArrayLike],
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, BootstrapResult]:
    """bootstrap_mean for several models at once.

    Each model gets its own random stream, derived from (seed, model name): its interval
    depends only on its own data, the seed and its name, never on which other models are in
    the mapping or their order, and the models' Monte Carlo errors are independent. (It is
    therefore a different stream from bootstrap_mean(values, seed=seed).)
    """
    _check_settings(resamples=resamples, confidence=confidence, seed=seed)
    checked = {
        name: _scores(values, what=f"rater scores of {name!r}") for name, values in groups.items()
    }
    return {
        name: _bootstrap_mean(
            scores,
            resamples=resamples,
            confidence=confidence,
            seed=seed,
            rng=np.random.default_rng([seed, _stream_key(name)]),
        )
        for name, scores in checked.items()
    }


# --- Comparing models ------------------------------------------------------------------


@dataclass(frozen=True)
class PairwiseResult:
    """Model a against model b: difference = mean(a) - mean(b), its p value and interval."""

    a: str
    b: str
    difference: float
    p_value: float
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """The omnibus test ("t-test" for two models, "anova" for more) and every pair."""

    test: str
    statistic: float
    p_value: float
    pairs: tuple[PairwiseResult, ...]


def compare_models(
    groups: Mapping[str, Sequence[float]], *, equal_var: bool = False, confidence: float = 0.95
) -> Comparison:
    """Do the models' rater scores differ?

    Two models: an unpaired t-test, Welch's by default (equal_var=False). Raters are
    independent between models, but their numbers can differ (drop-outs) and so can the
    spread of their scores (raters agree more on an obviously fake model); Welch keeps its
    error rate in both cases and loses almost nothing when variances are equal. Pass
    equal_var=True for Student's test, e.g. to reproduce an analysis. The pair's interval is
    the t interval for mean(a) - mean(b).

    Three or more: one-way ANOVA and Tukey HSD intervals and p values for every pair, as
    in the paper; both assume equal variances, and equal_var does not apply to them.
    """
    if len(groups) < 2:
        raise ValueError(f"need at least two models to compare, got {len(groups)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    names = list(groups)
    samples = [_scores(groups[name], what=f"rater scores of {name!r}") for name in names]
    for name, sample in zip(names, samples, strict=True):
        if sample.size < 2:
            raise ValueError(f"model {name!r} needs at least two rater scores, has {sample.size}")

    if len(samples) == 2:
        test = stats.ttest_ind(samples[0], samples[1], equal_var=equal_var)
        interval = test.confidence_interval(confidence_level=confidence)
        pair = PairwiseResult(
            a=names[0],
            b=names[1],
            difference=float(samples[0].mean() - samples[1].mean()),
            p_value=float(test.pvalue),
            low=float(interval.low),
            high=float(interval.high),
        )
        return Comparison(
            test="t-test",
            statistic=float(test.statistic),
            p_value=float(test.pvalue),
            pairs=(pair,),
        )

    anova = stats.f_oneway(*samples)
    tukey = stats.tukey_hsd(*samples)
    intervals = tukey.confidence_interval(confidence_level=confidence)
    pairs = tuple(
        PairwiseResult(
            a=names[i],
            b=names[j],
            difference=float(tukey.statistic[i, j]),
            p_value=float(tukey.pvalue[i, j]),
            low=float(intervals.low[i, j]),
            high=float(intervals.high[i, j]),
        )
        for i in range(len(names))
        for j in range(i + 1, len(names))
    )
    return Comparison(
        test="anova", statistic=float(anova.statistic), p_value=float(anova.pvalue), pairs=pairs
    )


def spearman(x: ArrayLike, y: ArrayLike) -> tuple[float, float]:
    """Spearman's rank correlation (rho, p) of HYPE against an automated metric."""
    xs = _scores(x, what="x")
    ys = _scores(y, what="y")
    if xs.size != ys.size:
        raise ValueError(f"x and y must be the same length, got {xs.size} and {ys.size}")
    if xs.size < 2:
        raise ValueError("a rank correlation needs at least two points")
    result = stats.spearmanr(xs, ys)
    return float(result.statistic), float(result.pvalue)


# --- Planning: how many raters ---------------------------------------------------------


def raters_for_width(rater_scores: ArrayLike, *, width: float, confidence: float = 0.95) -> int:
    """How many raters per model the observed spread suggests for an interval `width` wide.

    The normal approximation of a mean's interval, 2 z s / sqrt(n) = width, solved for n:
    n = ceil((2 z s / width)^2), with s the SD of the rater scores (ddof=1) and z the
    two-sided normal quantile of `confidence`. For HYPE_inf pass the per-rater error rates
    and the width as a fraction. Never fewer than 2: a spread, and a test between models,
    need two raters.
    """
    scores = _scores(rater_scores, what="rater scores")
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
