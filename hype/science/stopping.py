"""Adaptive stopping: stop recruiting raters for a model once its bootstrap interval is narrow
enough, checked after each completed rater between a minimum and a maximum of raters."""

from __future__ import annotations

import math
from dataclasses import dataclass

from numpy.typing import ArrayLike

from hype.science.bootstrap import INTERVAL_METHODS, bootstrap_mean, bootstrap_pooled_rate

# "none": the half-width of the reported interval itself must reach the target. "looks": the
# target must hold for the interval at 1 - (1 - confidence) / looks (Bonferroni over the
# planned looks). Looks is not the default: it restores coverage for normal raters but makes
# it worse for skewed ones, where a low spread also means a low mean (the slow raters are
# missing) and rarer stops select harder; a minimum of 20 raters works for both
# (docs/hype-method.md, "Adaptive stopping", has the simulation).
ADJUSTMENTS = ("none", "looks")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class StoppingRule:
    """Stop a model at min_raters or later once the interval's half-width is at most
    half_width (in the score's unit: ms for HYPE_time, a fraction for HYPE_inf), looking every
    check_every raters from min_raters on; stop at max_raters whatever the width.

    The default minimum, 20, is the conservative rule: checking from 10 raters stops when the
    spread is low by chance, and its intervals cover 3 to 4.5 points less than a fixed 30's."""

    half_width: float
    min_raters: int = 20
    max_raters: int = 30
    check_every: int = 1
    adjust: str = "none"

    def __post_init__(self) -> None:
        if (
            isinstance(self.half_width, bool)
            or not isinstance(self.half_width, int | float)
            or not math.isfinite(self.half_width)
            or self.half_width <= 0
        ):
            raise ValueError(f"half_width must be a positive number, got {self.half_width!r}")
        if not _is_int(self.min_raters) or self.min_raters < 2:
            raise ValueError(
                f"min_raters must be an integer of at least 2, got {self.min_raters!r}"
            )
        if not _is_int(self.max_raters) or self.max_raters < self.min_raters:
            raise ValueError(
                f"max_raters must be an integer of at least min_raters ({self.min_raters}), "
                f"got {self.max_raters!r}"
            )
        if not _is_int(self.check_every) or self.check_every < 1:
            raise ValueError(f"check_every must be a positive integer, got {self.check_every!r}")
        if self.adjust not in ADJUSTMENTS:
            raise ValueError(f"adjust must be one of {', '.join(ADJUSTMENTS)}, got {self.adjust!r}")

    @property
    def looks(self) -> int:
        """How many times the rule can stop: every check_every raters from min_raters, and at
        max_raters."""
        return len(
            set(range(self.min_raters, self.max_raters, self.check_every)) | {self.max_raters}
        )

    def is_look(self, raters: int) -> bool:
        """Whether the rule checks the width after this many raters."""
        if raters >= self.max_raters:
            return True
        return raters >= self.min_raters and (raters - self.min_raters) % self.check_every == 0

    def check_confidence(self, confidence: float) -> float:
        """The confidence of the interval whose half-width is held to the target."""
        if not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
        if self.adjust == "none":
            return confidence
        return 1.0 - (1.0 - confidence) / self.looks


@dataclass(frozen=True)
class StoppingDecision:
    """Whether to stop recruiting for the model, the half-width checked (of the interval at
    `confidence`: the reported one with adjust="none", a wider one with "looks"; inf before
    any rater), the raters counted, and why, one of: "below min_raters", "not a look",
    "wide", "narrow", "max_raters"."""

    stop: bool
    half_width: float
    raters: int
    reason: str
    confidence: float


def stopping_decide(
    *,
    rule: StoppingRule,
    rater_scores: ArrayLike | None = None,
    numerators: ArrayLike | None = None,
    denominators: ArrayLike | None = None,
    method: str = "percentile",
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> StoppingDecision:
    """The decision after the model's latest completed rater: pass rater_scores (HYPE_time, one
    per rater) or numerators and denominators (HYPE_inf, wrong answers and answers per rater)
    of all its completed raters, with the study's interval settings and the model's stream
    seed (model_stream_seed). The bootstrap's draws depend on the order of the raters: in the
    order the study's scores use, the width checked is that of the interval the study shows."""
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {', '.join(INTERVAL_METHODS)}, got {method!r}")
    level = rule.check_confidence(confidence)
    if (rater_scores is None) == (numerators is None and denominators is None):
        raise ValueError("pass either rater_scores or numerators and denominators")
    if rater_scores is None and (numerators is None or denominators is None):
        raise ValueError("pass both numerators and denominators")
    first = rater_scores if rater_scores is not None else numerators
    raters = len(first)  # type: ignore[arg-type]
    half_width = math.inf
    if raters:
        if rater_scores is not None:
            result = bootstrap_mean(
                rater_scores, resamples=resamples, confidence=level, seed=seed, method=method
            )
        else:
            result = bootstrap_pooled_rate(
                numerators,
                denominators,
                resamples=resamples,
                confidence=level,
                seed=seed,
                method=method,
            )
        half_width = (result.high - result.low) / 2.0

    def decision(stop: bool, reason: str) -> StoppingDecision:
        return StoppingDecision(
            stop=stop, half_width=half_width, raters=raters, reason=reason, confidence=level
        )

    if raters >= rule.max_raters:
        return decision(True, "max_raters")
    if raters < rule.min_raters:
        return decision(False, "below min_raters")
    if not rule.is_look(raters):
        return decision(False, "not a look")
    if half_width <= rule.half_width:
        return decision(True, "narrow")
    return decision(False, "wide")
