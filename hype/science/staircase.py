"""The HYPE_time staircase: a transformed, weighted up-down rule on exposure time.

Pure functions over frozen values, so the state can live in a database row and be replayed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def _require_positive_int(name: str, value: object) -> None:
    # bool is an int subclass; True as "1 ms" is always a bug upstream.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")


def convergence_accuracy(*, run_length: int, step_down_ms: float, step_up_ms: float) -> float:
    """Accuracy p at which an n-correct-down / 1-wrong-up staircase stops drifting.

    At equilibrium the expected step is zero: p**n * step_down = (1 - p**n) * step_up,
    so p**n = step_up / (step_up + step_down).
    """
    if isinstance(run_length, bool) or not isinstance(run_length, int) or run_length <= 0:
        raise ValueError(f"run_length must be a positive integer, got {run_length!r}")
    if not step_down_ms > 0 or not step_up_ms > 0:
        raise ValueError(
            f"steps must be positive, got step_down_ms={step_down_ms!r}, step_up_ms={step_up_ms!r}"
        )
    return (step_up_ms / (step_up_ms + step_down_ms)) ** (1.0 / run_length)


@dataclass(frozen=True)
class StaircaseRule:
    """Parameters of a HYPE_time staircase; the defaults are the paper's."""

    run_length: int = 3
    step_down_ms: int = 30
    step_up_ms: int = 10
    start_ms: int = 500
    floor_ms: int = 100
    ceiling_ms: int = 1000

    def __post_init__(self) -> None:
        for name in (
            "run_length",
            "step_down_ms",
            "step_up_ms",
            "start_ms",
            "floor_ms",
            "ceiling_ms",
        ):
            _require_positive_int(name, getattr(self, name))
        if not self.floor_ms <= self.start_ms <= self.ceiling_ms:
            raise ValueError(
                "the staircase must start inside its bounds: need floor_ms <= start_ms <= "
                f"ceiling_ms, got {self.floor_ms} <= {self.start_ms} <= {self.ceiling_ms}"
            )

    def target_accuracy(self) -> float:
        """The accuracy this rule converges to (0.63 for the defaults)."""
        return convergence_accuracy(
            run_length=self.run_length,
            step_down_ms=self.step_down_ms,
            step_up_ms=self.step_up_ms,
        )

    def is_at_or_below_chance(self) -> bool:
        """True when the target is <= 50%: every above-chance rater then sinks to the floor."""
        return self.target_accuracy() <= 0.5


@dataclass(frozen=True)
class StaircaseState:
    """Where a block's staircase stands: the next exposure and the current run of correct."""

    exposure_ms: int
    run: int

    def __post_init__(self) -> None:
        _require_positive_int("exposure_ms", self.exposure_ms)
        if isinstance(self.run, bool) or not isinstance(self.run, int) or self.run < 0:
            raise ValueError(f"run must be a non-negative integer, got {self.run!r}")

    def to_dict(self) -> dict[str, int]:
        return {"exposure_ms": self.exposure_ms, "run": self.run}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StaircaseState:
        expected = {"exposure_ms", "run"}
        if not isinstance(d, Mapping) or set(d) != expected:
            keys = sorted(d) if isinstance(d, Mapping) else type(d).__name__
            raise ValueError(
                f"a staircase state needs exactly the keys {sorted(expected)}, got {keys}"
            )
        return cls(exposure_ms=d["exposure_ms"], run=d["run"])


def staircase_start(rule: StaircaseRule) -> StaircaseState:
    return StaircaseState(exposure_ms=rule.start_ms, run=0)


def staircase_step(rule: StaircaseRule, state: StaircaseState, *, correct: bool) -> StaircaseState:
    """The state after one answer at state.exposure_ms.

    Wrong: up one step. Correct: extend the run, and step down when it reaches run_length.
    Every step, clamped or not, resets the run, so a rater at the floor must again be right
    run_length times before the (clamped) step counts.
    """
    if not rule.floor_ms <= state.exposure_ms <= rule.ceiling_ms:
        raise ValueError(
            f"exposure {state.exposure_ms} ms is outside the rule's bounds "
            f"[{rule.floor_ms}, {rule.ceiling_ms}] ms"
        )
    if state.run >= rule.run_length:
        raise ValueError(f"run {state.run} must be below the run length {rule.run_length}")
    if not correct:
        return StaircaseState(
            exposure_ms=min(state.exposure_ms + rule.step_up_ms, rule.ceiling_ms), run=0
        )
    run = state.run + 1
    if run < rule.run_length:
        return StaircaseState(exposure_ms=state.exposure_ms, run=run)
    return StaircaseState(
        exposure_ms=max(state.exposure_ms - rule.step_down_ms, rule.floor_ms), run=0
    )


def staircase_replay(rule: StaircaseRule, answers: Sequence[bool]) -> list[int]:
    """The exposure shown at each trial of a block, given whether each answer was correct."""
    state = staircase_start(rule)
    exposures: list[int] = []
    for correct in answers:
        exposures.append(state.exposure_ms)
        state = staircase_step(rule, state, correct=bool(correct))
    return exposures
