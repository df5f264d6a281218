"""Whether models differ: Welch's t-test for two models, one-way ANOVA with Tukey HSD for
more, on the rater scores; and Spearman's rank correlation of HYPE with an automated metric."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from hype.science.checks import finite_array


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
    samples = [finite_array(groups[name], what=f"rater scores of {name!r}") for name in names]
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
    differences, p_values, low, high = tukey_hsd_pairs(samples, confidence=confidence)
    pairs = tuple(
        PairwiseResult(
            a=names[i],
            b=names[j],
            difference=float(differences[n]),
            p_value=float(p_values[n]),
            low=float(low[n]),
            high=float(high[n]),
        )
        for n, (i, j) in enumerate(zip(*np.triu_indices(len(names), 1), strict=True))
    )
    return Comparison(
        test="anova", statistic=float(anova.statistic), p_value=float(anova.pvalue), pairs=pairs
    )


def tukey_hsd_pairs(
    samples: list[np.ndarray], *, confidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tukey's HSD for each pair i < j of the samples, in np.triu_indices order: (mean_i -
    mean_j, p value, interval low, interval high). The same arithmetic as scipy.stats.tukey_hsd
    (equal variances), which evaluates the studentized range's survival function for every cell
    of the k x k matrix, the diagonal and both halves: here only for the k(k-1)/2 pairs a
    result reports, which is most of its cost."""
    k = len(samples)
    means = np.asarray([np.mean(sample) for sample in samples])
    sizes = np.asarray([sample.size for sample in samples])
    observations = int(np.sum(sizes))
    variances = np.asarray([np.var(sample, ddof=1) for sample in samples])
    mse = np.sum(variances * (sizes - 1)) / (observations - k)
    df = observations - k
    first, second = np.triu_indices(k, 1)
    if np.unique(sizes).size == 1:
        normalize = np.full(first.shape, 2 / sizes[0])
    else:
        normalize = 1 / sizes[second] + 1 / sizes[first]
    standard_error = np.sqrt(normalize * mse / 2)
    differences = means[first] - means[second]
    p_values = stats.studentized_range.sf(np.abs(differences) / standard_error, k, df)
    radius = stats.studentized_range.ppf(confidence, k, df) * standard_error
    return differences, p_values, differences - radius, differences + radius


def spearman(x: ArrayLike, y: ArrayLike) -> tuple[float, float]:
    """Spearman's rank correlation (rho, p) of HYPE against an automated metric."""
    xs = finite_array(x, what="x")
    ys = finite_array(y, what="y")
    if xs.size != ys.size:
        raise ValueError(f"x and y must be the same length, got {xs.size} and {ys.size}")
    if xs.size < 2:
        raise ValueError("a rank correlation needs at least two points")
    result = stats.spearmanr(xs, ys)
    return float(result.statistic), float(result.pvalue)
