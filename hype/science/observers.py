"""Simulated raters with a known psychometric function, to check the protocol end to end.

An observer is right with a probability that rises with exposure from guessing (0.5) towards
its untimed accuracy; the staircase and the scores must recover what we put in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hype.science.staircase import StaircaseRule, staircase_start, staircase_step

GUESS = 0.5


def _logistic(z: float) -> float:
    # Split by sign so math.exp never overflows for very long or very short exposures.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True)
class SimulatedObserver:
    """A rater whose p(correct) is 0.5 + (top - 0.5) * logistic((ms - threshold_ms) / spread_ms).

    top is the untimed accuracy: 1 - lapse by default, or untimed_accuracy when given, so a
    model that fools raters 40% of the time without a time limit is approached, not exceeded,
    by long exposures. threshold_ms is where p(correct) is halfway between 0.5 and top.
    """

    threshold_ms: float
    spread_ms: float = 60.0
    lapse: float = 0.02
    untimed_accuracy: float | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold_ms):
            raise ValueError(f"threshold_ms must be finite, got {self.threshold_ms!r}")
        if not self.spread_ms > 0:
            raise ValueError(f"spread_ms must be positive, got {self.spread_ms!r}")
        if not 0.0 <= self.lapse < 0.5:
            raise ValueError(f"lapse must be in [0, 0.5), got {self.lapse!r}")
        if self.untimed_accuracy is not None and not 0.0 <= self.untimed_accuracy <= 1.0:
            raise ValueError(f"untimed_accuracy must be in [0, 1], got {self.untimed_accuracy!r}")

    @classmethod
    def with_inf_error(
        cls, error: float, *, threshold_ms: float, spread_ms: float = 60.0
    ) -> SimulatedObserver:
        """An observer that raters of a model whose true HYPE_inf error is `error` resemble."""
        if not 0.0 <= error <= 1.0:
            raise ValueError(f"error must be in [0, 1], got {error!r}")
        return cls(threshold_ms=threshold_ms, spread_ms=spread_ms, untimed_accuracy=1.0 - error)

    @property
    def top(self) -> float:
        return 1.0 - self.lapse if self.untimed_accuracy is None else self.untimed_accuracy

    def p_correct(self, exposure_ms: float | None) -> float:
        """Probability of a correct answer; None means no time limit (HYPE_inf)."""
        if exposure_ms is None:
            return self.top
        z = (exposure_ms - self.threshold_ms) / self.spread_ms
        return GUESS + (self.top - GUESS) * _logistic(z)

    def exposure_for_accuracy(self, p: float) -> float:
        """The exposure at which p_correct equals p; ValueError if no exposure reaches it."""
        fraction = (p - GUESS) / (self.top - GUESS) if self.top != GUESS else math.nan
        if not 0.0 < fraction < 1.0:
            raise ValueError(
                f"accuracy {p} is never reached: this observer's accuracy runs from {GUESS} "
                f"(no time) towards {self.top} (no time limit)"
            )
        return self.threshold_ms + self.spread_ms * math.log(fraction / (1.0 - fraction))

    def answer(self, *, is_real: bool, exposure_ms: float | None, rng: np.random.Generator) -> bool:
        """Whether the observer says "real" for this image."""
        correct = rng.random() < self.p_correct(exposure_ms)
        return bool(is_real) if correct else not is_real


def _balanced_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    # Half real, half fake, in random order; an odd count gets its extra image at random.
    labels = np.arange(n) < n // 2
    if n % 2:
        labels[-1] = rng.random() < 0.5
    return rng.permutation(labels)


def simulate_time_rater(
    observer: SimulatedObserver,
    rule: StaircaseRule,
    *,
    blocks: int = 3,
    trials_per_block: int = 150,
    rng: np.random.Generator,
) -> list[list[int]]:
    """The exposure of every trial of every block for one simulated HYPE_time rater."""
    if blocks < 1 or trials_per_block < 1:
        raise ValueError(f"need at least one block and one trial, got {blocks}, {trials_per_block}")
    exposures: list[list[int]] = []
    for _ in range(blocks):
        state = staircase_start(rule)
        shown: list[int] = []
        for is_real in _balanced_labels(trials_per_block, rng):
            shown.append(state.exposure_ms)
            says_real = observer.answer(
                is_real=bool(is_real), exposure_ms=state.exposure_ms, rng=rng
            )
            state = staircase_step(rule, state, correct=says_real == bool(is_real))
        exposures.append(shown)
    return exposures


def simulate_inf_rater(
    observer: SimulatedObserver, *, trials: int = 100, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One HYPE_inf rater: (is_real, correct) for `trials` untimed images, balanced 50/50."""
    if trials < 1:
        raise ValueError(f"need at least one trial, got {trials}")
    is_real = _balanced_labels(trials, rng)
    correct = rng.random(trials) < observer.p_correct(None)
    return is_real, correct
