"""How often the percentile, BCa and studentized 95% intervals of hype.science.bootstrap cover
the true HYPE_time and HYPE_inf score, over simulated studies of normal and skewed raters.

Run from the repository root (about 10 minutes on a shared 2-core box; --quick: 30 raters,
500 studies, about 10 seconds):
nice -n 19 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/coverage.py
"""

import argparse
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from common import REPOSITORY  # noqa: F401  (puts the repository on the import path)
from hype.science.bootstrap import INTERVAL_METHODS, bootstrap_mean, bootstrap_pooled_rate

CONFIDENCE = 0.95
ANSWERS = 100  # images each HYPE_inf rater judges
GRID = 10 / 3  # a rater's HYPE_time score is a mean of three 10 ms block thresholds
LABELS = {"percentile": "percentile", "bca": "BCa", "studentized": "studentized"}


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "time" (one score per rater, ms) or "inf" (wrong answers out of ANSWERS)
    draw: Callable[[np.random.Generator, tuple[int, int]], np.ndarray]
    truth: float


def _on_grid(values: np.ndarray) -> np.ndarray:
    return np.round(values / GRID) * GRID


def _grid_mean(distribution) -> float:
    """The exact mean of round(X / GRID) * GRID: what the simulated rater scores estimate."""
    cells = np.arange(
        math.floor(distribution.ppf(1e-15) / GRID) - 1,
        math.ceil(distribution.ppf(1 - 1e-15) / GRID) + 2,
    )
    mass = distribution.cdf((cells + 0.5) * GRID) - distribution.cdf((cells - 0.5) * GRID)
    return float((mass * cells * GRID).sum() / mass.sum())


# Rater thresholds: normal around 360 ms; shifted-exponential with the same mean and SD
# (skewness 2); lognormal with a long right tail of slow raters (mean 360, SD 152,
# skewness 3.7). Scores sit on the 10/3 ms grid, as real ones do.
NORMAL = stats.norm(360, 60)
EXPONENTIAL = stats.expon(loc=300, scale=60)
LOGNORMAL = stats.lognorm(s=0.8, loc=200, scale=160 / math.exp(0.8**2 / 2))

# Rater error rates (HYPE_inf): beta with mean 0.3 and SD 0.10 or 0.23 (the latter puts many
# raters near 0 and some near 1), and a mixture where 85% of raters are rarely fooled
# (Beta(1, 39), mean 0.025) and 15% answer near chance (Beta(10, 10)).
MODERATE = stats.beta(6, 14)
SPREAD = stats.beta(0.9, 2.1)
SHARE_NEAR_CHANCE = 0.15


def _mixture(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    near_chance = rng.random(shape) < SHARE_NEAR_CHANCE
    return np.where(near_chance, rng.beta(10, 10, shape), rng.beta(1, 39, shape))


def _wrong(rates) -> Callable[[np.random.Generator, tuple[int, int]], np.ndarray]:
    return lambda rng, shape: rng.binomial(ANSWERS, rates(rng, shape))


CASES = (
    Case("normal", "time", lambda rng, s: _on_grid(NORMAL.rvs(s, random_state=rng)),
         _grid_mean(NORMAL)),
    Case("shifted exponential", "time",
         lambda rng, s: _on_grid(EXPONENTIAL.rvs(s, random_state=rng)), _grid_mean(EXPONENTIAL)),
    Case("lognormal", "time", lambda rng, s: _on_grid(LOGNORMAL.rvs(s, random_state=rng)),
         _grid_mean(LOGNORMAL)),
    Case("beta, SD 0.10", "inf", _wrong(lambda rng, s: MODERATE.rvs(s, random_state=rng)),
         MODERATE.mean()),
    Case("beta, SD 0.23", "inf", _wrong(lambda rng, s: SPREAD.rvs(s, random_state=rng)),
         SPREAD.mean()),
    Case("85% near 0, 15% near 0.5", "inf", _wrong(_mixture),
         (1 - SHARE_NEAR_CHANCE) * 1 / 40 + SHARE_NEAR_CHANCE * 0.5),
)  # fmt: skip


def _case_seed(case: Case, raters: int) -> int:
    # Stable across runs and independent of which cells are run.
    digest = hashlib.blake2b(f"{case.name}:{raters}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def simulate(case: Case, *, raters: int, studies: int, resamples: int) -> dict[str, np.ndarray]:
    """For each method, a (studies, 2) array of (covered, width). Every method reads the same
    resamples of the same study (the seed fixes the draws), so their differences are paired."""
    rng = np.random.default_rng(_case_seed(case, raters))
    data = case.draw(rng, (studies, raters))
    answered = np.full(raters, ANSWERS)
    out = {method: np.empty((studies, 2)) for method in INTERVAL_METHODS}
    for study, row in enumerate(data):
        for method in INTERVAL_METHODS:
            if case.kind == "time":
                result = bootstrap_mean(row, resamples=resamples, seed=study, method=method)
            else:
                result = bootstrap_pooled_rate(
                    row, answered, resamples=resamples, seed=study, method=method
                )
            out[method][study] = (result.low <= case.truth <= result.high, result.high - result.low)
    return out


def _percent(p: float, se: float) -> str:
    return f"{100 * p:5.1f} ({100 * se:.1f})"


def _paired(a: np.ndarray, b: np.ndarray) -> str:
    # SE of a difference of paired proportions: the discordant studies carry it.
    diff = a.mean() - b.mean()
    se = np.sqrt(((a - b) ** 2).mean() - diff**2) / np.sqrt(a.size)
    return f"{100 * diff:+5.1f} ({100 * se:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 raters, 500 studies")
    parser.add_argument("--studies", type=int, help="studies per row (default 4000)")
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    studies = args.studies or (500 if args.quick else 4000)
    sizes = (30,) if args.quick else (10, 30, 60)
    start = time.perf_counter()
    print(
        f"Coverage of {100 * CONFIDENCE:.0f}% bootstrap intervals: {studies:,} studies per row, "
        f"{args.resamples:,} resamples each; coverage in % (Monte Carlo SE), mean width"
    )
    for kind, title, unit, scale in (
        ("time", "HYPE_time: mean of rater scores", "ms", 1.0),
        ("inf", f"HYPE_inf: pooled error, {ANSWERS} answers per rater", "points", 100.0),
    ):
        print(f"\n{title} (width in {unit})")
        print(
            f"{'case':26} {'raters':>6}  {'percentile':>11} {'BCa':>11} {'studentized':>11}"
            f"  {'width pct':>9} {'BCa':>6} {'stud':>6}  {'BCa-pct':>11} {'stud-pct':>11}"
        )
        for case in (c for c in CASES if c.kind == kind):
            for raters in sizes:
                out = simulate(case, raters=raters, studies=studies, resamples=args.resamples)
                hits = {m: out[m][:, 0] for m in INTERVAL_METHODS}
                cover = [
                    _percent(h.mean(), math.sqrt(h.mean() * (1 - h.mean()) / studies))
                    for h in hits.values()
                ]
                widths = [f"{scale * out[m][:, 1].mean():6.1f}" for m in INTERVAL_METHODS]
                print(
                    f"{case.name:26} {raters:>6}  {cover[0]:>11} {cover[1]:>11} {cover[2]:>11}"
                    f"  {widths[0]:>9} {widths[1]:>6} {widths[2]:>6}"
                    f"  {_paired(hits['bca'], hits['percentile']):>11}"
                    f" {_paired(hits['studentized'], hits['percentile']):>11}",
                    flush=True,
                )
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
