"""Whether a model's error differs between image subgroups (tags): the Cochran-Mantel-Haenszel
test of wrong/right across tags, stratified by rater, so that tags are compared within raters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

# Eigenvalues of the covariance below this share of its largest are zero (rank and inverse).
_RANK_TOLERANCE = 1e-10


@dataclass(frozen=True)
class TagDifference:
    """The generalized CMH statistic (chi-square with df degrees of freedom under "no
    difference between tags"), its p value, and the raters that carried information (those
    with at least two answers, on tags the test compares)."""

    test: str
    statistic: float
    df: int
    p_value: float
    n_raters: int


def tag_difference_test(wrong: ArrayLike, answered: ArrayLike) -> TagDifference | None:
    """Do the tags' error rates differ? wrong, answered: one row per rater, one column per tag,
    the rater's wrong answers and answers on images of that tag.

    Each rater is a stratum: under the null, a rater's wrong answers are spread over the tags
    in proportion to how many answers each tag had (hypergeometric), whatever the rater's own
    skill. Summing each tag's observed minus expected wrong answers over raters, and their
    covariance, gives Q = d' V^+ d, chi-square with rank(V) degrees of freedom (Landis, Heyman
    and Koch 1978; for one rater it is (N - 1) / N times Pearson's chi-square). None when no
    rater's answers can tell tags apart (one tag, all answers right, ...)."""
    w = np.asarray(wrong, dtype=float)
    n = np.asarray(answered, dtype=float)
    if w.ndim != 2 or w.shape != n.shape or w.size == 0:
        raise ValueError(f"need two tables raters x tags of one shape, got {w.shape}, {n.shape}")
    if not (np.isfinite(w).all() and np.isfinite(n).all()):
        raise ValueError("answers and wrong answers must be finite numbers")
    if (n < 0).any() or (w < 0).any() or (w > n).any():
        raise ValueError("answers and wrong answers must be counts, wrong at most answered")
    totals = n.sum(axis=1)
    wrong_totals = w.sum(axis=1)
    informative = totals >= 2
    deviation = np.zeros(w.shape[1])
    covariance = np.zeros((w.shape[1], w.shape[1]))
    for w_h, n_h, big_n, big_w in zip(
        w[informative], n[informative], totals[informative], wrong_totals[informative], strict=True
    ):
        deviation += w_h - n_h * big_w / big_n
        spread = big_w * (big_n - big_w) / (big_n**2 * (big_n - 1))
        covariance += spread * (big_n * np.diag(n_h) - np.outer(n_h, n_h))
    eigenvalues, vectors = np.linalg.eigh(covariance)
    keep = eigenvalues > _RANK_TOLERANCE * max(float(eigenvalues.max(initial=0.0)), 1e-300)
    df = int(keep.sum())
    if df == 0:
        return None
    projected = vectors[:, keep].T @ deviation
    statistic = float((projected**2 / eigenvalues[keep]).sum())
    return TagDifference(
        test="cmh",
        statistic=statistic,
        df=df,
        p_value=float(stats.chi2.sf(statistic, df)),
        n_raters=int(informative.sum()),
    )
