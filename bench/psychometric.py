"""The fitted HYPE_time threshold (hype.science.psychometric) against the paper's modal one,
on simulated studies: bias per rater, share censored, and the model score's interval width.

Run from the repository root (about 4 minutes; --quick for a rough look in about 30 s):
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/psychometric.py
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
from scipy import special

import common  # noqa: F401 (puts the repository on the import path)
from hype.science.bootstrap import bootstrap_mean
from hype.science.observers import SimulatedObserver
from hype.science.psychometric import (
    CENSORED_HIGH,
    CENSORED_LOW,
    fit_contribution,
    psychometric_fit_joint,
)
from hype.science.staircase import StaircaseRule
from hype.science.thresholds import rater_time_score

RULE = StaircaseRule()
THRESHOLDS_MS = (100, 130, 200, 300, 400, 500, 600, 700, 800, 1000)
BLOCKS = 3
TRIALS_PER_BLOCK = 150
LAPSE = 0.04
# Raters of one model differ: their 63% points scatter around the model's with this SD, and
# their spreads (the observers' slope) around 60 ms by a factor of about 1.3 either way.
RATER_SD_MS = 50.0
SPREAD_MS = 60.0
SPREAD_LOG_SD = 0.25


def observers_draw(
    model_ms: float,
    *,
    raters: int,
    rater_sd_ms: float,
    rng: np.random.Generator,
    rule: StaircaseRule = RULE,
) -> list[SimulatedObserver]:
    """Raters of one model: their 63% points (the rule's target) around model_ms."""
    target = rule.target_accuracy()
    top = 1.0 - LAPSE
    fraction = (target - 0.5) / (top - 0.5)
    points = model_ms + rater_sd_ms * rng.standard_normal(raters)
    spreads = SPREAD_MS * np.exp(SPREAD_LOG_SD * rng.standard_normal(raters))
    # SimulatedObserver is parameterised by its halfway point; put its target point where
    # we drew it.
    return [
        SimulatedObserver(
            threshold_ms=float(point - spread * math.log(fraction / (1 - fraction))),
            spread_ms=float(spread),
            lapse=LAPSE,
        )
        for point, spread in zip(points, spreads, strict=True)
    ]


def raters_simulate(
    observers: list[SimulatedObserver],
    rule: StaircaseRule,
    *,
    blocks: int,
    trials_per_block: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(exposures, correct), each raters x blocks x trials: every rater's staircase run in
    step with the others, which is what makes 60,000 raters take seconds.

    The same rule as hype.science.staircase.staircase_step, written over arrays; the
    simulation's test checks every block against staircase_replay. The real/fake label is
    left out: these observers are equally right on both.
    """
    location = np.array([o.threshold_ms for o in observers])
    spread = np.array([o.spread_ms for o in observers])
    top = np.array([o.top for o in observers])
    n = len(observers)
    exposures = np.empty((n, blocks, trials_per_block), dtype=np.int64)
    correct = np.empty((n, blocks, trials_per_block), dtype=bool)
    for b in range(blocks):
        shown = np.full(n, rule.start_ms, dtype=np.int64)
        run = np.zeros(n, dtype=np.int64)
        for t in range(trials_per_block):
            p = 0.5 + (top - 0.5) * special.expit((shown - location) / spread)
            right = rng.random(n) < p
            exposures[:, b, t] = shown
            correct[:, b, t] = right
            run = np.where(right, run + 1, 0)
            down = run == rule.run_length
            shown = np.where(
                right,
                np.where(down, np.maximum(shown - rule.step_down_ms, rule.floor_ms), shown),
                np.minimum(shown + rule.step_up_ms, rule.ceiling_ms),
            )
            run[down] = 0
    return exposures, correct


@dataclass(frozen=True)
class Row:
    """One model threshold's results over many simulated studies."""

    model_ms: float
    fit_bias_ms: float  # mean over raters not censored of fitted - true
    fit_sd_ms: float  # their SD: a rater's measurement error
    censored_low: float  # share of raters
    censored_high: float
    fit_score_bias_ms: float  # mean over studies of the model score - model_ms
    mode_bias_ms: float  # mean over all raters of modal score - true
    mode_sd_ms: float
    mode_score_bias_ms: float
    fit_width_ms: float  # mean over studies of the 95% bootstrap interval's width
    mode_width_ms: float
    fit_bias_se_ms: float
    ratio_se: float
    slope_ms: float  # mean shared slope of the joint fits
    lapse: float


def row_simulate(
    model_ms: float,
    *,
    studies: int,
    raters: int,
    rater_sd_ms: float,
    resamples: int,
    rng: np.random.Generator,
) -> Row:
    observers = observers_draw(model_ms, raters=studies * raters, rater_sd_ms=rater_sd_ms, rng=rng)
    target = RULE.target_accuracy()
    true = np.array([o.exposure_for_accuracy(target) for o in observers])
    exposures, correct = raters_simulate(
        observers, RULE, blocks=BLOCKS, trials_per_block=TRIALS_PER_BLOCK, rng=rng
    )
    modes = np.array([rater_time_score(list(e)) for e in exposures])

    errors, flags, contributions, slopes, lapses = [], [], [], [], []
    for s in range(studies):
        members = range(s * raters, (s + 1) * raters)
        joint = psychometric_fit_joint(
            raters=[(exposures[i].ravel(), correct[i].ravel()) for i in members], rule=RULE
        )
        slopes.append(joint.slope_ms)
        lapses.append(joint.lapse)
        for i, fit in zip(members, joint.fits, strict=True):
            flags.append(fit.censored)
            contributions.append(fit_contribution(fit))
            if fit.censored is None:
                errors.append(fit.threshold_ms - true[i])
    contributions = np.array(contributions).reshape(studies, raters)
    by_study = modes.reshape(studies, raters)

    def width(values: np.ndarray, seed: int) -> float:
        result = bootstrap_mean(values, resamples=resamples, seed=seed)
        return result.high - result.low

    fit_widths = np.array([width(v, i) for i, v in enumerate(contributions)])
    mode_widths = np.array([width(v, i) for i, v in enumerate(by_study)])
    ratios = fit_widths / mode_widths
    errors = np.array(errors)
    return Row(
        model_ms=model_ms,
        fit_bias_ms=float(errors.mean()) if errors.size else math.nan,
        fit_sd_ms=float(errors.std(ddof=1)) if errors.size > 1 else math.nan,
        censored_low=float(np.mean([f in CENSORED_LOW for f in flags])),
        censored_high=float(np.mean([f in CENSORED_HIGH for f in flags])),
        fit_score_bias_ms=float(contributions.mean() - model_ms),
        mode_bias_ms=float((modes - true).mean()),
        mode_sd_ms=float((modes - true).std(ddof=1)),
        mode_score_bias_ms=float(modes.mean() - model_ms),
        fit_width_ms=float(fit_widths.mean()),
        mode_width_ms=float(mode_widths.mean()),
        # Raters are independent, so the SE of a mean error is its SD over sqrt(count).
        fit_bias_se_ms=float(errors.std(ddof=1) / math.sqrt(errors.size))
        if errors.size > 1
        else math.nan,
        ratio_se=float(ratios.std(ddof=1) / math.sqrt(studies)) if studies > 1 else math.nan,
        slope_ms=float(np.mean(slopes)),
        lapse=float(np.mean(lapses)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=200, help="simulated studies per row")
    parser.add_argument("--raters", type=int, default=30, help="raters per study")
    parser.add_argument("--rater-sd", type=float, default=RATER_SD_MS, help="ms between raters")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="20 studies per row")
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=THRESHOLDS_MS, help="model 63%% points"
    )
    args = parser.parse_args()
    studies = 20 if args.quick else args.studies

    started = time.perf_counter()
    print(
        f"{studies} studies x {args.raters} raters per row; {BLOCKS} blocks x "
        f"{TRIALS_PER_BLOCK} trials from {RULE.start_ms} ms, target accuracy "
        f"{RULE.target_accuracy():.3f}; raters' 63% points SD {args.rater_sd:g} ms around "
        f"the model's, spread {SPREAD_MS:g} ms x/÷ {math.exp(SPREAD_LOG_SD):.2f}, lapse "
        f"{LAPSE:g}; bootstrap {args.resamples} resamples, 95%"
    )
    print(
        f"{'true':>5} {'fit bias':>8} {'±se':>4} {'sd':>4} {'cens lo':>7} {'cens hi':>7} "
        f"{'mode bias':>9} {'sd':>4} {'score bias: fit':>15} {'mode':>6} "
        f"{'width: fit':>10} {'mode':>5} {'ratio':>5} {'±se':>5} {'slope':>5} {'lapse':>5}"
    )
    rng = np.random.default_rng(args.seed)
    rows = []
    for model_ms in args.thresholds:
        row = row_simulate(
            float(model_ms),
            studies=studies,
            raters=args.raters,
            rater_sd_ms=args.rater_sd,
            resamples=args.resamples,
            rng=rng,
        )
        rows.append(row)
        print(
            f"{row.model_ms:5.0f} {row.fit_bias_ms:+8.1f} {row.fit_bias_se_ms:4.1f} "
            f"{row.fit_sd_ms:4.0f} {row.censored_low:7.1%} {row.censored_high:7.1%} "
            f"{row.mode_bias_ms:+9.1f} {row.mode_sd_ms:4.0f} "
            f"{row.fit_score_bias_ms:+15.1f} {row.mode_score_bias_ms:+6.1f} "
            f"{row.fit_width_ms:10.1f} {row.mode_width_ms:5.1f} "
            f"{row.fit_width_ms / row.mode_width_ms:5.3f} {row.ratio_se:5.3f} "
            f"{row.slope_ms:5.1f} {row.lapse:5.3f}",
            flush=True,
        )
    fit_w = np.mean([r.fit_width_ms for r in rows])
    mode_w = np.mean([r.mode_width_ms for r in rows])
    print(
        f"all rows: mean width {fit_w:.1f} ms (fit) vs {mode_w:.1f} ms (mode), ratio "
        f"{fit_w / mode_w:.3f}; {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
