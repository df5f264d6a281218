"""Automated baselines computed from image features: the Fréchet distance (FID when the
features are Inception pool3), KID, and improved precision and recall; the Inception Score
from class probabilities; plus the standard `.npz` statistics files. numpy and scipy only:
the features and probabilities come from elsewhere.

See ../shared/reference/fid-notes.md and docs/baselines.md for the definitions followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from scipy import linalg, special

# A covariance may have eigenvalues a little below zero from rounding; one further below
# than this share of its largest eigenvalue is not a covariance (the input is broken).
NEGATIVE_EIGENVALUE_TOLERANCE = 1e-6
SYMMETRY_TOLERANCE = 1e-6


class DegenerateInput(ValueError):
    """Features or statistics that no distance can be computed from, and why."""


@dataclass(frozen=True)
class FeatureStatistics:
    """Mean and covariance (n - 1 denominator) of n feature vectors, in float64. n is None
    for statistics loaded from a file that does not say."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int | None = None

    @property
    def dimensions(self) -> int:
        return int(self.mu.shape[0])


@dataclass(frozen=True)
class KidResult:
    """KID: the unbiased polynomial-kernel MMD^2, mean and SD over subsets. When the sets are
    no larger than the subset size, every subset would be the whole set: it is computed once
    on all images, and the SD is None (there is no spread to report)."""

    mean: float
    sd: float | None
    subsets: int
    subset_size: int


@dataclass(frozen=True)
class PrecisionRecall:
    """Improved precision (share of fakes inside the real manifold) and recall (share of
    reals inside the fake manifold), with k nearest neighbours defining each manifold."""

    precision: float
    recall: float
    k: int


@dataclass(frozen=True)
class InceptionScore:
    """The Inception Score of n images: mean and SD (population, ddof = 0, as the original
    code reports it) of exp(E_x KL(p(y|x) || p(y))) over `splits` consecutive splits. sd is
    None with one split (no spread to report)."""

    mean: float
    sd: float | None
    splits: int
    n: int


# --- Statistics -----------------------------------------------------------------------------


def _features(values: ArrayLike, *, what: str, at_least: int = 2) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise DegenerateInput(
            f"{what} must be a 2-d array (images x dimensions), got {array.shape}"
        )
    if array.shape[0] < at_least:
        raise DegenerateInput(f"{what} needs at least {at_least} images, got {array.shape[0]}")
    if array.shape[1] < 1:
        raise DegenerateInput(f"{what} has no feature dimensions")
    if not np.isfinite(array).all():
        raise DegenerateInput(f"{what} contains NaN or infinite values")
    return array


def statistics_from_features(features: ArrayLike) -> FeatureStatistics:
    """Mean and covariance of feature vectors (one row per image), in float64: keeping the
    covariance in float32 moves FID by up to 3e-4 relative."""
    array = _features(features, what="features")
    return FeatureStatistics(
        mu=array.mean(axis=0), sigma=np.cov(array, rowvar=False), n=int(array.shape[0])
    )


def statistics_save(path: str | Path, statistics: FeatureStatistics) -> None:
    """Write the standard `.npz` (keys `mu`, `sigma`), plus `n` when known."""
    extra = {} if statistics.n is None else {"n": np.int64(statistics.n)}
    with open(path, "wb") as handle:
        np.savez(handle, mu=statistics.mu, sigma=statistics.sigma, **extra)


def statistics_load(path: str | Path) -> FeatureStatistics:
    """Read a `.npz` of FID statistics (keys `mu` and `sigma`, as pytorch-fid, TTUR and
    clean-fid write them), checked for shape and finiteness."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"mu", "sigma"} - set(data.files)
            if missing:
                raise DegenerateInput(
                    f"{path}: not FID statistics: no {', '.join(sorted(missing))} "
                    f"(keys: {', '.join(data.files) or 'none'})"
                )
            mu = np.asarray(data["mu"], dtype=np.float64)
            sigma = np.asarray(data["sigma"], dtype=np.float64)
            n = int(data["n"]) if "n" in data.files else None
    except (OSError, ValueError) as error:
        if isinstance(error, DegenerateInput):
            raise
        raise DegenerateInput(f"{path}: cannot read FID statistics ({error})") from None
    statistics = FeatureStatistics(mu=mu, sigma=sigma, n=n)
    _check_statistics(statistics, what=str(path))
    return statistics


def _check_statistics(statistics: FeatureStatistics, *, what: str) -> None:
    mu, sigma = statistics.mu, statistics.sigma
    if mu.ndim != 1 or mu.shape[0] < 1:
        raise DegenerateInput(f"{what}: the mean must be a vector, got shape {mu.shape}")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise DegenerateInput(
            f"{what}: the covariance must be {mu.shape[0]}x{mu.shape[0]} to match the mean, "
            f"got {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise DegenerateInput(f"{what}: contains NaN or infinite values")
    scale = max(float(np.abs(sigma).max()), np.finfo(float).tiny)
    if float(np.abs(sigma - sigma.T).max()) > SYMMETRY_TOLERANCE * scale:
        raise DegenerateInput(f"{what}: the covariance is not symmetric")


# --- The Fréchet distance -------------------------------------------------------------------


def _psd_eigh(sigma: np.ndarray, *, what: str) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = linalg.eigh(sigma, check_finite=False)
    top = max(float(values[-1]), 0.0)
    if values[0] < -NEGATIVE_EIGENVALUE_TOLERANCE * max(top, np.finfo(float).tiny):
        raise DegenerateInput(
            f"{what} is not a covariance matrix: eigenvalue {values[0]:.3g} is negative "
            f"(largest {top:.3g})"
        )
    return np.clip(values, 0.0, None), vectors


def _symmetric_factor(sigma1: np.ndarray) -> np.ndarray:
    """A matrix F with F F' = S1, so that F' S2 F has the eigenvalues of sqrt(S1) S2 sqrt(S1)
    (all three are similar to S1 S2). The Cholesky factor when S1 is positive definite (the
    usual case with more images than dimensions, and several times cheaper than an
    eigendecomposition); V diag(sqrt w) from S1 = V diag(w) V' when it is singular."""
    try:
        return linalg.cholesky(sigma1, lower=True, check_finite=False)
    except linalg.LinAlgError:
        values, vectors = _psd_eigh(sigma1, what="the first covariance")
        return vectors * np.sqrt(values)[None, :]


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr sqrt(S1 S2) from a symmetric eigendecomposition: the eigenvalues of S1 S2 are those
    of sqrt(S1) S2 sqrt(S1), equivalently of F' S2 F with F F' = S1, a symmetric positive
    semi-definite matrix, so they are real and non-negative (up to rounding, clipped)."""
    factor = _symmetric_factor(sigma1)
    inner = factor.T @ sigma2 @ factor
    inner = (inner + inner.T) / 2.0
    eigenvalues = linalg.eigvalsh(inner, check_finite=False)
    top = max(float(eigenvalues[-1]), np.finfo(float).tiny)
    if eigenvalues[0] < -NEGATIVE_EIGENVALUE_TOLERANCE * top:
        # F' S2 F is positive semi-definite whenever S2 is.
        raise DegenerateInput(
            f"the second covariance is not a covariance matrix (sqrt(S1) S2 sqrt(S1) has "
            f"eigenvalue {eigenvalues[0]:.3g})"
        )
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def frechet_distance(first: FeatureStatistics, second: FeatureStatistics) -> float:
    """The Fréchet distance between two Gaussians:
    |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2), in float64."""
    _check_statistics(first, what="the first statistics")
    _check_statistics(second, what="the second statistics")
    if first.dimensions != second.dimensions:
        raise DegenerateInput(
            f"the statistics have different dimensions: {first.dimensions} and "
            f"{second.dimensions} (features from different networks?)"
        )
    sigma1 = (first.sigma + first.sigma.T) / 2.0
    sigma2 = (second.sigma + second.sigma.T) / 2.0
    difference = first.mu - second.mu
    distance = (
        float(difference @ difference)
        + float(np.trace(sigma1))
        + float(np.trace(sigma2))
        - 2.0 * trace_sqrt_product(sigma1, sigma2)
    )
    # Rounding can leave a distance of two equal distributions a hair below zero.
    return max(distance, 0.0)


def frechet_distance_from_features(first: ArrayLike, second: ArrayLike) -> float:
    return frechet_distance(statistics_from_features(first), statistics_from_features(second))


# --- KID ------------------------------------------------------------------------------------


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kernel_inception_distance(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    rng: np.random.Generator,
) -> KidResult:
    """KID (Binkowski et al. 2018): the unbiased MMD^2 with kernel (x.y / d + 1)^3, averaged
    over `subsets` subsets of min(subset_size, n_real, n_fake) images drawn without
    replacement from each side. Small negative values are valid (it is unbiased). If a side
    has no more images than the subset size, the subsets would all be that whole side, so
    KID is computed once on all images and its SD is None."""
    x = _features(real, what="real features")
    y = _features(fake, what="fake features")
    if x.shape[1] != y.shape[1]:
        raise DegenerateInput(
            f"real and fake features have different dimensions: {x.shape[1]} and {y.shape[1]}"
        )
    if subsets < 1 or subset_size < 2:
        raise ValueError("need at least one subset of at least two images")
    m = min(subset_size, x.shape[0], y.shape[0])
    if m == x.shape[0] == y.shape[0]:
        subsets = 1  # any subset is the whole of both sets
    values = np.empty(subsets)
    for s in range(subsets):
        a = x[rng.choice(x.shape[0], m, replace=False)]
        b = y[rng.choice(y.shape[0], m, replace=False)]
        kxx, kyy, kxy = _polynomial_kernel(a, a), _polynomial_kernel(b, b), _polynomial_kernel(a, b)
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values[s] = within - 2.0 * kxy.mean()
    sd = float(values.std(ddof=1)) if subsets > 1 else None
    return KidResult(mean=float(values.mean()), sd=sd, subsets=subsets, subset_size=m)


# --- Precision and recall -------------------------------------------------------------------

_ROWS_PER_BATCH = 1024


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0)


def _kth_neighbour_radii(points: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point of the same set."""
    radii = np.empty(points.shape[0])
    for start in range(0, points.shape[0], _ROWS_PER_BATCH):
        block = _squared_distances(points[start : start + _ROWS_PER_BATCH], points)
        # Column k of the sorted row: column 0 is the point itself (distance 0).
        radii[start : start + block.shape[0]] = np.partition(block, k, axis=1)[:, k]
    return radii


def _share_inside(queries: np.ndarray, manifold: np.ndarray, radii: np.ndarray) -> float:
    inside = 0
    for start in range(0, queries.shape[0], _ROWS_PER_BATCH):
        block = _squared_distances(queries[start : start + _ROWS_PER_BATCH], manifold)
        inside += int((block <= radii[None, :]).any(axis=1).sum())
    return inside / queries.shape[0]


def precision_recall(real: ArrayLike, fake: ArrayLike, *, k: int = 3) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019): a set's manifold is the union
    of balls around its points, each with the radius to the point's k-th nearest neighbour in
    the set. Precision: the share of fakes inside the real manifold; recall: the share of
    reals inside the fake manifold."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    x = _features(real, what="real features", at_least=k + 1)
    y = _features(fake, what="fake features", at_least=k + 1)
    if x.shape[1] != y.shape[1]:
        raise DegenerateInput(
            f"real and fake features have different dimensions: {x.shape[1]} and {y.shape[1]}"
        )
    precision = _share_inside(y, x, _kth_neighbour_radii(x, k))
    recall = _share_inside(x, y, _kth_neighbour_radii(y, k))
    return PrecisionRecall(precision=precision, recall=recall, k=k)


# --- The Inception Score --------------------------------------------------------------------

# Softmax rows in float32 over 1008 classes sum to 1 within about 1e-6; a row further off
# than this is not a probability distribution (logits, or a truncated row).
ROW_SUM_TOLERANCE = 1e-4


def inception_score(probabilities: ArrayLike, *, splits: int = 10) -> InceptionScore:
    """The Inception Score (Salimans et al. 2016) of class probabilities p(y|x), one row per
    image, as the original TensorFlow code (openai/improved-gan) and StyleGAN2-ADA's metric
    compute it: the rows are cut, in the order given (not shuffled), into `splits` consecutive
    parts [i n / splits, (i + 1) n / splits); in each part p(y) is the mean row and the score
    is exp(mean over rows of KL(p(y|x) || p(y))); the result is the mean and population SD of
    the parts' scores. KL terms with p(y|x) = 0 count 0 (the limit; the original code would
    give NaN for them). Uniform predictions score 1; k classes each predicted with certainty
    by an equal share of the images score k."""
    if isinstance(splits, bool) or not isinstance(splits, int) or splits < 1:
        raise ValueError(f"splits must be a positive integer, got {splits!r}")
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise DegenerateInput(
            f"class probabilities must be a 2-d array (images x at least 2 classes), "
            f"got shape {p.shape}"
        )
    n = int(p.shape[0])
    if n < splits:
        raise DegenerateInput(
            f"the Inception Score over {splits} splits needs at least {splits} images, got {n}"
        )
    if not np.isfinite(p).all():
        raise DegenerateInput("class probabilities contain NaN or infinite values")
    if (p < 0).any():
        raise DegenerateInput("class probabilities contain negative values (logits?)")
    sums = p.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > ROW_SUM_TOLERANCE:
        raise DegenerateInput(
            f"class probabilities must sum to 1 in every row: row {worst} sums to {sums[worst]:.6g}"
        )
    scores = np.empty(splits)
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = special.rel_entr(part, marginal).sum(axis=1).mean()
        scores[i] = np.exp(kl)
    sd = float(scores.std()) if splits > 1 else None
    return InceptionScore(mean=float(scores.mean()), sd=sd, splits=splits, n=n)
