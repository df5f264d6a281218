"""Adaptive stopping (hype.science.stopping) over simulated studies whose raters arrive one by
one: raters used and saved against a fixed 30, coverage of the final 95% interval, and the
false-positive rate of the study's t-test between two equal models, for each rule and fixed n.

Run from the repository root (about 11 minutes on a shared 2-core box; --quick: 200 studies,
one setting per population, under a minute):
nice -n 19 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/stopping.py
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
from hype.science.bootstrap import bootstrap_mean, bootstrap_pooled_rate
from hype.science.comparisons import compare_models
from hype.science.stopping import ADJUSTMENTS, StoppingRule, stopping_decide

CONFIDENCE = 0.95
ANSWERS = 100  # images each HYPE_inf rater judges
FIXED = 30  # the study's default raters per model, what savings are counted against

# HYPE_time rater scores: normal N(360, 60), and a shifted lognormal with the same mean and SD
# but skewness 1.75 (a tail of slow raters). HYPE_inf: per-rater error rates Beta(6, 14),
# mean 0.3, SD 0.10, each rater answering 100 images (SD of a rater's rate about 0.11). Then
# models whose raters really agree more than planned (the case stopping is for): N(360, 30),
# and an obvious fake, error rates Beta(1, 19), mean 0.05 (a rater's rate SD about 0.05).
NORMAL = stats.norm(360, 60)
NARROW = stats.norm(360, 30)
OBVIOUS = stats.beta(1, 19)
LOGNORMAL_S = 0.5
_SCALE = 60 / math.sqrt(math.exp(LOGNORMAL_S**2) * (math.exp(LOGNORMAL_S**2) - 1))
LOGNORMAL = stats.lognorm(
    s=LOGNORMAL_S, loc=360 - _SCALE * math.exp(LOGNORMAL_S**2 / 2), scale=_SCALE
)
RATES = stats.beta(6, 14)


# The Bonferroni rule checks every look to the end, which is most of the run time: it runs
# where it shows something (from 10 raters), the plain rule everywhere.
BOTH = ADJUSTMENTS
PLAIN = ("none",)


@dataclass(frozen=True)
class Population:
    name: str
    kind: str  # "time" (one score per rater, ms) or "inf" (wrong answers out of ANSWERS)
    draw: Callable[[np.random.Generator, tuple[int, int]], np.ndarray]
    truth: float
    unit: str
    scale: float  # to print half-widths in the unit
    # (half-width target, min raters, max raters, the rules' adjustments)
    settings: tuple[tuple[float, int, int, tuple[str, ...]], ...]


POPULATIONS = (
    Population("HYPE_time, normal", "time", lambda rng, s: NORMAL.rvs(s, random_state=rng),
               360.0, "ms", 1.0, ((25.0, 10, 30, BOTH), (25.0, 15, 30, PLAIN),
                                  (25.0, 20, 30, PLAIN), (20.0, 10, 60, BOTH),
                                  (20.0, 20, 60, PLAIN))),
    Population("HYPE_time, lognormal", "time", lambda rng, s: LOGNORMAL.rvs(s, random_state=rng),
               360.0, "ms", 1.0, ((25.0, 10, 30, BOTH), (25.0, 20, 30, PLAIN),
                                  (20.0, 20, 60, PLAIN))),
    Population("HYPE_inf, beta", "inf",
               lambda rng, s: rng.binomial(ANSWERS, RATES.rvs(s, random_state=rng)),
               RATES.mean(), "points", 100.0, ((0.04, 10, 30, BOTH), (0.04, 15, 30, PLAIN),
                                               (0.04, 20, 30, PLAIN), (0.03, 20, 60, PLAIN))),
    Population("HYPE_time, SD 30", "time", lambda rng, s: NARROW.rvs(s, random_state=rng),
               360.0, "ms", 1.0, ((25.0, 10, 30, BOTH), (25.0, 20, 30, PLAIN))),
    Population("HYPE_inf, mean 0.05", "inf",
               lambda rng, s: rng.binomial(ANSWERS, OBVIOUS.rvs(s, random_state=rng)),
               OBVIOUS.mean(), "points", 100.0, ((0.04, 10, 30, BOTH), (0.04, 20, 30, PLAIN))),
)  # fmt: skip


def _seed(*parts: object) -> int:
    # Stable across runs and independent of which cells are run.
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def _decide(
    population: Population, rule: StoppingRule, row: np.ndarray, *, seed: int, resamples: int
):
    """Feed the study's raters one at a time until the rule stops: (raters, final interval)."""
    answered = np.full(row.size, ANSWERS)
    for n in range(1, row.size + 1):
        if not rule.is_look(n):
            continue
        if population.kind == "time":
            decision = stopping_decide(
                rule=rule,
                rater_scores=row[:n],
                resamples=resamples,
                confidence=CONFIDENCE,
                seed=seed,
            )
        else:
            decision = stopping_decide(
                rule=rule, numerators=row[:n], denominators=answered[:n], resamples=resamples,
                confidence=CONFIDENCE, seed=seed,
            )  # fmt: skip
        if decision.stop:
            return n, _interval(population, row[:n], seed=seed, resamples=resamples)
    raise AssertionError("a rule always stops by max_raters")


def _interval(population: Population, row: np.ndarray, *, seed: int, resamples: int):
    # The interval the study reports, at the nominal confidence whatever the rule checked.
    if population.kind == "time":
        result = bootstrap_mean(row, resamples=resamples, confidence=CONFIDENCE, seed=seed)
    else:
        answered = np.full(row.size, ANSWERS)
        result = bootstrap_pooled_rate(
            row, answered, resamples=resamples, confidence=CONFIDENCE, seed=seed
        )
    return result.low, result.high


def _scores(population: Population, row: np.ndarray) -> np.ndarray:
    # The t-test's per-rater scores: HYPE_inf compares the raters' error rates.
    return row if population.kind == "time" else row / ANSWERS


def simulate(population: Population, setting, *, studies: int, resamples: int) -> dict[str, dict]:
    """For fixed n (= max raters) and each rule: raters used, covered, and t-test rejections of
    disjoint pairs of studies (two models with the same true score). All read the same
    raters, so the rows of a setting are paired."""
    target, low, high, adjusts = setting
    rng = np.random.default_rng(_seed(population.name, target, low, high))
    data = population.draw(rng, (studies, high))
    rules = {
        adjust: StoppingRule(half_width=target, min_raters=low, max_raters=high, adjust=adjust)
        for adjust in adjusts
    }
    out = {}
    for label in ("fixed", *rules):
        used = np.empty(studies, dtype=int)
        covered = np.empty(studies, dtype=bool)
        for study, row in enumerate(data):
            if label == "fixed":
                n, (lo, hi) = high, _interval(population, row, seed=study, resamples=resamples)
            else:
                n, (lo, hi) = _decide(
                    population, rules[label], row, seed=study, resamples=resamples
                )
            used[study] = n
            covered[study] = lo <= population.truth <= hi
        rejected = np.array([
            compare_models({
                "a": _scores(population, data[i, : used[i]]),
                "b": _scores(population, data[i + 1, : used[i + 1]]),
            }).p_value < 0.05
            for i in range(0, studies - 1, 2)
        ])  # fmt: skip
        out[label] = {"used": used, "covered": covered, "rejected": rejected, "max": high}
    return out


def _percent(hits: np.ndarray) -> str:
    p = hits.mean()
    return f"{100 * p:5.1f} ({100 * math.sqrt(p * (1 - p) / hits.size):.1f})"


def _paired(a: np.ndarray, b: np.ndarray) -> str:
    # SE of a difference of paired proportions: the discordant studies carry it.
    a, b = a.astype(float), b.astype(float)
    diff = a.mean() - b.mean()
    se = np.sqrt(((a - b) ** 2).mean() - diff**2) / np.sqrt(a.size)
    return f"{100 * diff:+5.1f} ({100 * se:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 studies, one setting each")
    parser.add_argument("--studies", type=int, help="studies per setting (default 1500)")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    studies = args.studies or (200 if args.quick else 1500)
    start = time.perf_counter()
    print(
        f"Adaptive stopping, {100 * CONFIDENCE:.0f}% percentile intervals: {studies:,} studies "
        f"per setting, {args.resamples:,} resamples; in % with Monte Carlo SE; t-test "
        f"(Welch, 5%) over {studies // 2:,} pairs of equal models; saved = {FIXED} - mean;\n"
        "vs fixed = coverage minus that of the same studies at max raters (paired SE)"
    )
    header = (
        f"{'population':21} {'target':>9} {'min':>3} {'max':>3} {'rule':>5}  {'mean':>5} "
        f"{'p10':>3} {'p50':>3} {'p90':>3} {'saved':>5} {'early':>5}  {'coverage':>10}"
        f"  {'vs fixed':>10}  {'t-test FPR':>10}"
    )
    print(header)
    for population in POPULATIONS:
        for setting in population.settings[:1] if args.quick else population.settings:
            out = simulate(population, setting, studies=studies, resamples=args.resamples)
            target, low, high, _ = setting
            for label, cell in out.items():
                used = cell["used"]
                p10, p50, p90 = np.percentile(used, [10, 50, 90]).astype(int)
                print(
                    f"{population.name:21} {f'{population.scale * target:g} {population.unit}':>9} "
                    f"{low:>3} {high:>3} "
                    f"{label:>5}  {used.mean():5.1f} {p10:>3} {p50:>3} {p90:>3} "
                    f"{FIXED - used.mean():+5.1f} {100 * (used < high).mean():5.1f}  "
                    f"{_percent(cell['covered']):>10}  "
                    f"{_paired(cell['covered'], out['fixed']['covered']):>10}  "
                    f"{_percent(cell['rejected']):>10}",
                    flush=True,
                )
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
