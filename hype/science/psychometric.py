"""A rater's HYPE_time threshold from all of their timed trials: a maximum-likelihood fit of a
two-alternative psychometric function, read at the staircase's target accuracy, and censored
where the data cannot place it."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special

from hype.science.checks import finite_array
from hype.science.staircase import StaircaseRule

GUESS = 0.5
# Lapses (a blink, a slip of the finger) are rare and nearly independent of exposure. A
# staircase spends its trials near its target, far below the top of the curve, so the data
# barely pin the top down: a free lapse rate trades off against the slope and location and
# can wander to implausible values. Bounding it to [0, 0.06] (Wichmann & Hill 2001) keeps it
# to what lapses are while still absorbing them; the default rule's 0.63 target stays far
# below the lowest possible top of 0.94.
LAPSE_BOUNDS = (0.0, 0.06)
# Slopes outside this range are not perception: under 2 ms is a step inside one display
# frame, over 500 ms is a curve flatter than the whole 100-1000 ms range.
SLOPE_BOUNDS_MS = (2.0, 500.0)
# How far beyond a rater's tested exposures a location may go. Far enough that a rater who is
# right (or at chance) everywhere puts the threshold well past the floor (the ceiling), and
# the censoring below then says so; the exact value only matters for data that carry no
# threshold.
_LOCATION_REACH_MS = 3000.0
# Parameters are optimised in hundreds of ms so that every coordinate moves on a similar
# scale (ms, log ms and a lapse of a few percent).
_MS_SCALE = 100.0
_P_EPS = 1e-12
# Raters whose starting locations are searched on the grid at once (_locations_on_grid).
_GRID_RATERS = 32

BELOW_FLOOR = "below floor"
ABOVE_CEILING = "above ceiling"
UNREACHABLE = "unreachable"
BELOW_TESTED_RANGE = "below tested range"
ABOVE_TESTED_RANGE = "above tested range"
CENSORED_LOW = (BELOW_FLOOR, BELOW_TESTED_RANGE)
CENSORED_HIGH = (ABOVE_CEILING, UNREACHABLE, ABOVE_TESTED_RANGE)


@dataclass(frozen=True)
class PsychometricFit:
    """One rater's fitted psychometric function and their threshold at the target accuracy.

    threshold_ms is None when the threshold is censored; censored then says which way (one of
    CENSORED_LOW or CENSORED_HIGH) and bound_ms is the limit it lies beyond (the floor, the
    ceiling, or the edge of what the rater's trials support), which is also what the rater
    contributes to a model's score (fit_contribution). slope_ms and lapse are shared by every
    rater of a joint fit. log_likelihood is this rater's own (natural log, Bernoulli).
    """

    threshold_ms: float | None
    censored: str | None
    bound_ms: float | None
    location_ms: float
    slope_ms: float
    lapse: float
    target_accuracy: float
    log_likelihood: float
    n_trials: int
    tested_min_ms: float
    tested_max_ms: float


@dataclass(frozen=True)
class JointPsychometricFit:
    """Several raters fitted together: one slope and one lapse, a location for each rater."""

    slope_ms: float
    lapse: float
    log_likelihood: float
    fits: tuple[PsychometricFit, ...]


@dataclass(frozen=True)
class FitScore:
    """A model's HYPE_time score from fitted thresholds, in ms, with how many raters were
    censored each way: with any censored rater the score is pulled towards the bounds."""

    score_ms: float
    raters: int
    censored_low: int
    censored_high: int


# --- The function and its inverse ---------------------------------------------------------


def _check_shape(*, slope_ms: float, lapse: float) -> None:
    if isinstance(slope_ms, bool) or not (math.isfinite(slope_ms) and slope_ms > 0):
        raise ValueError(f"slope_ms must be a positive number, got {slope_ms!r}")
    if isinstance(lapse, bool) or not (math.isfinite(lapse) and 0.0 <= lapse < GUESS):
        raise ValueError(f"lapse must be in [0, 0.5), got {lapse!r}")


def psychometric_p(
    exposures_ms: ArrayLike, *, location_ms: float, slope_ms: float, lapse: float
) -> np.ndarray:
    """p(correct) = 0.5 + (0.5 - lapse) * logistic((x - location_ms) / slope_ms).

    The logistic is the function the simulated observers use (hype.science.observers), so a
    fit to them is not misspecified; against real raters it is the usual choice and differs
    from a cumulative normal or Weibull mainly in the tails, where a staircase puts few
    trials. It is taken in ms, not log ms, because the exposures lie on a linear grid and the
    staircase steps are linear.
    """
    _check_shape(slope_ms=slope_ms, lapse=lapse)
    x = finite_array(exposures_ms, what="exposures")
    return GUESS + (GUESS - lapse) * special.expit((x - location_ms) / slope_ms)


def psychometric_log_likelihood(
    *,
    exposures_ms: ArrayLike,
    correct: ArrayLike,
    location_ms: float,
    slope_ms: float,
    lapse: float,
) -> float:
    """Sum over trials of log p(correct) for a right answer and log(1 - p) for a wrong one."""
    x, right = _trials(exposures_ms, correct)
    p = psychometric_p(x, location_ms=location_ms, slope_ms=slope_ms, lapse=lapse)
    with np.errstate(divide="ignore"):
        return float(np.where(right, np.log(p), np.log1p(-p)).sum())


def exposure_for_accuracy(
    accuracy: float, *, location_ms: float, slope_ms: float, lapse: float
) -> float | None:
    """The exposure at which the function reaches `accuracy`; None when it never does.

    The curve runs from 0.5 to 1 - lapse, so the target is inverted through the lapse too:
    F(z) = (accuracy - 0.5) / (0.5 - lapse). Ignoring the lapse would put the 63% point of a
    rater with 4% lapses about 7 ms too low for a 60 ms slope.
    """
    _check_shape(slope_ms=slope_ms, lapse=lapse)
    if not GUESS < accuracy < 1.0:
        raise ValueError(f"accuracy must be strictly between 0.5 and 1, got {accuracy!r}")
    fraction = (accuracy - GUESS) / (GUESS - lapse)
    # Within rounding of the top counts as never: the exposure there is infinite.
    if fraction >= 1.0 - 1e-12:
        return None
    return location_ms + slope_ms * math.log(fraction / (1.0 - fraction))


# --- Input -----------------------------------------------------------------------------


def _trials(exposures_ms: ArrayLike, correct: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = finite_array(exposures_ms, what="exposures")
    right = np.asarray(correct)
    if right.dtype != bool:
        # 0/1 or "yes"/"no" would be read silently, and a swapped column would fit; refuse.
        raise ValueError(f"correct must be booleans, got an array of {right.dtype}")
    if right.ndim != 1:
        raise ValueError(f"correct must be one-dimensional, got shape {right.shape}")
    if right.shape != x.shape:
        raise ValueError(f"need one answer per exposure, got {x.size} exposures and {right.size}")
    return x, right


def _rater_trials(
    exposures_ms: ArrayLike, correct: ArrayLike, *, rule: StaircaseRule, which: str
) -> tuple[np.ndarray, np.ndarray]:
    try:
        x, right = _trials(exposures_ms, correct)
    except ValueError as error:
        raise ValueError(f"{which}: {error}") from None
    if x.min() < rule.floor_ms or x.max() > rule.ceiling_ms:
        raise ValueError(
            f"{which}: exposures run from {x.min():g} to {x.max():g} ms, outside the rule's "
            f"bounds [{rule.floor_ms}, {rule.ceiling_ms}] ms: is it the study's rule?"
        )
    return x, right


def _rule_target(rule: StaircaseRule) -> float:
    if not isinstance(rule, StaircaseRule):
        raise ValueError(f"rule must be a StaircaseRule, got {type(rule).__name__}")
    target = rule.target_accuracy()
    if rule.is_at_or_below_chance():
        raise ValueError(
            f"the rule targets {target:.3f}, at or below chance: no exposure is a threshold"
        )
    return target


def _check_fixed(*, slope_ms: float | None, lapse: float | None) -> None:
    if slope_ms is not None and (
        isinstance(slope_ms, bool) or not (math.isfinite(slope_ms) and slope_ms > 0)
    ):
        raise ValueError(f"slope_ms must be a positive number or None, got {slope_ms!r}")
    if lapse is not None and (
        isinstance(lapse, bool) or not (math.isfinite(lapse) and 0.0 <= lapse < GUESS)
    ):
        raise ValueError(f"lapse must be in [0, 0.5) or None, got {lapse!r}")


# --- The fit -----------------------------------------------------------------------------


def _cells(raters: Sequence[tuple[np.ndarray, np.ndarray]]):
    """Trials grouped by (rater, exposure): the likelihood only needs counts there, and a
    staircase shows a few dozen distinct exposures, so this cuts the work tenfold."""
    index, xs, ns, ks = [], [], [], []
    for i, (x, right) in enumerate(raters):
        values, inverse = np.unique(x, return_inverse=True)
        index.append(np.full(values.size, i))
        xs.append(values)
        ns.append(np.bincount(inverse, minlength=values.size))
        ks.append(np.bincount(inverse, weights=right, minlength=values.size))
    return (
        np.concatenate(index),
        np.concatenate(xs),
        np.concatenate(ns).astype(float),
        np.concatenate(ks),
    )


def _cell_log_likelihood(p: np.ndarray, n: np.ndarray, k: np.ndarray) -> np.ndarray:
    return k * np.log(p) + (n - k) * np.log1p(-p)


def _locations_on_grid(
    rater: np.ndarray,
    x: np.ndarray,
    n: np.ndarray,
    k: np.ndarray,
    *,
    slope: float,
    lapse: float,
) -> np.ndarray:
    """Each rater's best location on a 20 ms grid, for the given slope and lapse.

    The likelihood is flat far from the data (p is 0.5 or 1 - lapse at every tested
    exposure), and a gradient method started on the wrong side of a rater's data can slide
    onto that plateau and stop there. Starting from the best grid point avoids it.
    """
    # Within 1000 ms of the data and 20 ms apart is close enough to start from anywhere.
    grid = np.arange(x.min() - 1000.0, x.max() + 1020.0, 20.0)
    # Cells come grouped by rater, in order.
    starts = np.flatnonzero(np.r_[True, rater[1:] != rater[:-1]])
    ends = np.r_[starts[1:], rater.size]
    best = np.empty(starts.size)
    # A rater's best grid point depends on their own cells only, so raters are taken a few at
    # a time: the cells-by-grid arrays of a whole study at once would take tens of MB (500
    # raters x 30 exposures x 150 grid points, several arrays), and the exports that fit a
    # study stream in bounded memory. The numbers are the same either way.
    for first in range(0, starts.size, _GRID_RATERS):
        last = min(first + _GRID_RATERS, starts.size)
        lo, hi = starts[first], ends[last - 1]
        z = (x[lo:hi, None] - grid[None, :]) / slope
        p = np.clip(GUESS + (GUESS - lapse) * special.expit(z), _P_EPS, 1.0 - _P_EPS)
        per_cell = _cell_log_likelihood(p, n[lo:hi, None], k[lo:hi, None])
        per_rater = np.add.reduceat(per_cell, starts[first:last] - lo, axis=0)
        best[first:last] = grid[per_rater.argmax(axis=1)]
    return best


def _fit(
    raters: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    slope_ms: float | None,
    lapse: float | None,
) -> tuple[np.ndarray, float, float]:
    """Maximum-likelihood (locations, slope, lapse) with one slope and one lapse for all."""
    rater, x, n, k = _cells(raters)
    count = len(raters)
    free_slope, free_lapse = slope_ms is None, lapse is None
    all_x = np.concatenate([trials[0] for trials in raters])
    reach = (all_x.min() - _LOCATION_REACH_MS, all_x.max() + _LOCATION_REACH_MS)

    slope0 = 60.0 if free_slope else slope_ms
    lapse0 = 0.02 if free_lapse else lapse
    start = list(_locations_on_grid(rater, x, n, k, slope=slope0, lapse=lapse0))
    start = [m / _MS_SCALE for m in start]
    bounds = [(reach[0] / _MS_SCALE, reach[1] / _MS_SCALE)] * count
    if free_slope:
        start.append(math.log(slope0))
        bounds.append(tuple(math.log(b) for b in SLOPE_BOUNDS_MS))
    if free_lapse:
        start.append(lapse0)
        bounds.append(LAPSE_BOUNDS)

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, float, float]:
        locations = theta[:count] * _MS_SCALE
        s = math.exp(theta[count]) if free_slope else slope_ms
        lam = theta[-1] if free_lapse else lapse
        return locations, s, float(lam)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        locations, s, lam = unpack(theta)
        z = (x - locations[rater]) / s
        f = special.expit(z)
        top = GUESS - lam
        p = np.clip(GUESS + top * f, _P_EPS, 1.0 - _P_EPS)
        ll = _cell_log_likelihood(p, n, k).sum()
        dll_dp = (k - n * p) / (p * (1.0 - p))
        df = f * (1.0 - f)
        grad = [np.bincount(rater, weights=dll_dp * (-top * df / s), minlength=count)]
        grad[0] = grad[0] * _MS_SCALE
        if free_slope:
            grad.append([np.sum(dll_dp * (-top * df * z))])
        if free_lapse:
            grad.append([np.sum(dll_dp * -f)])
        return -ll, -np.concatenate(grad)

    result = optimize.minimize(
        objective,
        np.asarray(start, dtype=float),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 2000, "ftol": 1e-12, "gtol": 1e-8},
    )
    return unpack(result.x)


def _censor(
    *,
    x: np.ndarray,
    right: np.ndarray,
    location: float,
    slope: float,
    lapse: float,
    rule: StaircaseRule,
    target: float,
) -> PsychometricFit:
    """A rater's fit with the threshold censored where the data cannot place it.

    In order: a target the curve never reaches (its top, 1 - lapse, is at or below the
    target) is UNREACHABLE; a threshold under the floor or over the ceiling is BELOW_FLOOR or
    ABOVE_CEILING: the rule never shows such exposures, so the number is an extrapolation
    with no trial there and it cannot be compared with a threshold the staircase could reach.
    Inside the bounds, a threshold more than one down step (rule.step_down_ms) outside the
    exposures the rater was shown is BELOW_ or ABOVE_TESTED_RANGE. A staircase at its target
    swings about one down step either side of it, so a rater who reached their threshold was
    shown exposures within a step of it; a fit further out rests on the assumed shape and
    slope of the curve, not on this rater's answers: typically a block that ran out of trials
    while still climbing from the start. The bound is then that edge (the tested extreme plus
    or minus a step), a limit the threshold lies beyond.
    """
    tested_min, tested_max = float(x.min()), float(x.max())
    ll = float(
        _cell_log_likelihood(
            np.clip(
                psychometric_p(x, location_ms=location, slope_ms=slope, lapse=lapse),
                _P_EPS,
                1.0 - _P_EPS,
            ),
            np.ones(x.size),
            right.astype(float),
        ).sum()
    )
    threshold = exposure_for_accuracy(target, location_ms=location, slope_ms=slope, lapse=lapse)
    margin = float(rule.step_down_ms)
    censored: str | None
    if threshold is None:
        censored, bound = UNREACHABLE, float(rule.ceiling_ms)
    elif threshold < rule.floor_ms:
        censored, bound = BELOW_FLOOR, float(rule.floor_ms)
    elif threshold > rule.ceiling_ms:
        censored, bound = ABOVE_CEILING, float(rule.ceiling_ms)
    elif threshold < tested_min - margin:
        censored, bound = BELOW_TESTED_RANGE, max(tested_min - margin, float(rule.floor_ms))
    elif threshold > tested_max + margin:
        censored, bound = ABOVE_TESTED_RANGE, min(tested_max + margin, float(rule.ceiling_ms))
    else:
        censored, bound = None, None
    return PsychometricFit(
        threshold_ms=float(threshold) if censored is None else None,
        censored=censored,
        bound_ms=bound,
        location_ms=float(location),
        slope_ms=float(slope),
        lapse=float(lapse),
        target_accuracy=target,
        log_likelihood=ll,
        n_trials=int(x.size),
        tested_min_ms=tested_min,
        tested_max_ms=tested_max,
    )


def psychometric_fit(
    *,
    exposures_ms: ArrayLike,
    correct: ArrayLike,
    slope_ms: float,
    lapse: float | None = None,
    rule: StaircaseRule | None = None,
) -> PsychometricFit:
    """One rater's maximum-likelihood fit with a given slope (in ms): their location, and
    their lapse rate within LAPSE_BOUNDS unless `lapse` fixes it.

    A staircase puts its trials near one accuracy, which pins the curve's position there but
    says little about its slope; a rater's own slope is therefore poorly determined, and
    the slope should come from elsewhere: psychometric_fit_joint estimates one for a study.
    The threshold is read at the rule's target accuracy and censored as _censor describes.
    """
    rule = StaircaseRule() if rule is None else rule
    target = _rule_target(rule)
    if slope_ms is None:
        raise ValueError("a single rater's fit needs a slope: use psychometric_fit_joint")
    _check_fixed(slope_ms=slope_ms, lapse=lapse)
    x, right = _rater_trials(exposures_ms, correct, rule=rule, which="the rater")
    locations, slope, lam = _fit([(x, right)], slope_ms=float(slope_ms), lapse=lapse)
    return _censor(
        x=x, right=right, location=locations[0], slope=slope, lapse=lam, rule=rule, target=target
    )


def psychometric_fit_joint(
    *,
    raters: Sequence[tuple[ArrayLike, ArrayLike]],
    rule: StaircaseRule | None = None,
    slope_ms: float | None = None,
    lapse: float | None = None,
) -> JointPsychometricFit:
    """Several raters' trials ((exposures_ms, correct) per rater) fitted together: a location
    per rater, and one slope and one lapse rate shared by all (each estimated unless given).

    This is the fit a study uses. The slope is how fast evidence builds up with exposure on
    this display and task, which the raters share far more than their thresholds; pooling it
    over raters lends every rater the slope that their own staircase cannot measure. The
    lapse is shared for the same reason: a few lapses per rater carry little information.
    Each rater's threshold is read at the rule's target accuracy and censored as _censor says.
    """
    rule = StaircaseRule() if rule is None else rule
    target = _rule_target(rule)
    _check_fixed(slope_ms=slope_ms, lapse=lapse)
    if isinstance(raters, (str, bytes)) or not isinstance(raters, Sequence) or not raters:
        raise ValueError("need a non-empty sequence of raters, each (exposures_ms, correct)")
    checked = []
    for i, trials in enumerate(raters):
        if not isinstance(trials, (tuple, list)) or len(trials) != 2:
            raise ValueError(f"rater {i} must be a pair (exposures_ms, correct)")
        checked.append(_rater_trials(trials[0], trials[1], rule=rule, which=f"rater {i}"))
    locations, slope, lam = _fit(
        checked, slope_ms=None if slope_ms is None else float(slope_ms), lapse=lapse
    )
    fits = tuple(
        _censor(x=x, right=right, location=m, slope=slope, lapse=lam, rule=rule, target=target)
        for (x, right), m in zip(checked, locations, strict=True)
    )
    return JointPsychometricFit(
        slope_ms=float(slope),
        lapse=float(lam),
        log_likelihood=float(sum(fit.log_likelihood for fit in fits)),
        fits=fits,
    )


# --- From blocks, for the rest of the platform ---------------------------------------------


def _blocks_trials(blocks: Sequence[tuple[ArrayLike, ArrayLike]], *, which: str):
    if isinstance(blocks, (str, bytes)) or not isinstance(blocks, Sequence) or not blocks:
        raise ValueError(f"{which} needs at least one block, each (exposures_ms, correct)")
    xs, rights = [], []
    for j, block in enumerate(blocks):
        if not isinstance(block, (tuple, list)) or len(block) != 2:
            raise ValueError(f"{which}, block {j} must be a pair (exposures_ms, correct)")
        try:
            x, right = _trials(block[0], block[1])
        except ValueError as error:
            raise ValueError(f"{which}, block {j}: {error}") from None
        xs.append(x)
        rights.append(right)
    return np.concatenate(xs), np.concatenate(rights)


def rater_fit(
    *,
    blocks: Sequence[tuple[ArrayLike, ArrayLike]],
    slope_ms: float,
    lapse: float | None = None,
    rule: StaircaseRule | None = None,
) -> PsychometricFit:
    """A rater's fit from their blocks, each (exposures_ms, correct), with a given slope
    (typically the study's, from study_fit): psychometric_fit over all of their trials."""
    x, right = _blocks_trials(blocks, which="the rater")
    return psychometric_fit(
        exposures_ms=x, correct=right, slope_ms=slope_ms, lapse=lapse, rule=rule
    )


K = TypeVar("K", bound=Hashable)


def study_fit(
    *,
    raters: Mapping[K, Sequence[tuple[ArrayLike, ArrayLike]]],
    rule: StaircaseRule | None = None,
) -> dict[K, PsychometricFit]:
    """Every rater's fit from their blocks, keyed as given, with the slope and lapse shared
    over all of them (psychometric_fit_joint): pass all the completed raters of a study."""
    if not isinstance(raters, Mapping) or not raters:
        raise ValueError("need a non-empty mapping of raters to their blocks")
    keys = list(raters)
    trials = [_blocks_trials(raters[key], which=f"rater {key!r}") for key in keys]
    joint = psychometric_fit_joint(raters=trials, rule=rule)
    return dict(zip(keys, joint.fits, strict=True))


# --- What a rater contributes to a model's score ---------------------------------------------


def fit_contribution(fit: PsychometricFit) -> float:
    """What a rater adds to a model's score: the threshold, or for a censored rater the bound
    it lies beyond (the floor, the ceiling, or the edge of their tested range).

    Leaving censored raters out would bias the score the most where it matters: a model
    whose best raters all fall below the floor would look worse for it. At the bound, a
    censored rater pulls the score towards the interior, by at most how far past the bound
    they are, and always in a known direction; it is also what the modal threshold does, as
    a staircase never shows an exposure beyond its bounds, so the score stays on the
    paper's scale. FitScore counts the censored raters so the pull is visible.
    """
    if not isinstance(fit, PsychometricFit):
        raise ValueError(f"need a PsychometricFit, got {type(fit).__name__}")
    return fit.bound_ms if fit.censored is not None else fit.threshold_ms


def model_fit_score(fits: Sequence[PsychometricFit]) -> FitScore:
    """A model's HYPE_time score from its raters' fits: the mean of fit_contribution, in ms,
    with the censored raters counted each way; bootstrap the contributions for an interval."""
    if isinstance(fits, PsychometricFit) or not isinstance(fits, Sequence) or not fits:
        raise ValueError("need a non-empty sequence of fits")
    contributions = [fit_contribution(fit) for fit in fits]
    return FitScore(
        score_ms=float(np.mean(contributions)),
        raters=len(fits),
        censored_low=sum(fit.censored in CENSORED_LOW for fit in fits),
        censored_high=sum(fit.censored in CENSORED_HIGH for fit in fits),
    )
