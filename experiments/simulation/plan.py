"""A simulation's plan: which server and study, how many raters, and the simulated observer
of each model (its HYPE_time threshold and HYPE_inf error, known in advance so that what the
study measures can be checked against it); and what came of the run."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from experiments.models import Study
from hype.science.observers import SimulatedObserver
from hype.science.staircase import StaircaseRule

DEFAULT_THRESHOLD_MS = 300.0
DEFAULT_INF_ERROR = 0.25
DEFAULT_QUALIFICATION_ACCURACY = 0.95
DEFAULT_THINK_MS = 50.0
# The server closes a socket that sends more than 60 messages in 5 s (HYPE_RATER_FLOOD_LIMIT);
# 50 leaves room for messages that reach it bunched up. None sends at machine speed.
DEFAULT_PACE = (50, 5.0)


class SimulationError(Exception):
    """The simulation cannot run (no server, study not live, wrong database...)."""


def observer_make(
    *,
    rule: StaircaseRule,
    threshold_ms: float | None = None,
    inf_error: float | None = None,
    spread_ms: float = 60.0,
) -> SimulatedObserver:
    """An observer whose HYPE_time threshold under `rule` is threshold_ms, i.e.
    observer.exposure_for_accuracy(rule.target_accuracy()) == threshold_ms, and whose
    untimed error (HYPE_inf) is inf_error (default: the observer's 2% lapse)."""
    untimed = None if inf_error is None else 1.0 - inf_error
    base = SimulatedObserver(threshold_ms=0.0, spread_ms=spread_ms, untimed_accuracy=untimed)
    if threshold_ms is None:
        return base
    try:
        offset = base.exposure_for_accuracy(rule.target_accuracy())
    except ValueError:
        raise ValueError(
            f"an untimed error of {inf_error:.0%} leaves the observer below the staircase's "
            f"target accuracy {rule.target_accuracy():.0%} at any exposure: no threshold"
        ) from None
    return replace(base, threshold_ms=threshold_ms - offset)


@dataclass(frozen=True)
class SimulationPlan:
    """Who to simulate against which server. observers: one per model name of the study;
    a model without one gets `default_observer`."""

    base_url: str
    study: str  # the study's public id
    raters: int
    observers: Mapping[str, SimulatedObserver]
    default_observer: SimulatedObserver
    qualification_accuracy: float = DEFAULT_QUALIFICATION_ACCURACY
    concurrency: int = 8
    think_ms: float = DEFAULT_THINK_MS
    pace: tuple[int, float] | None = DEFAULT_PACE
    seed: int = 0
    # Prefix of the raters' external ids; random by default, so a second run adds raters
    # instead of resuming the first run's.
    run_id: str = field(default_factory=lambda: f"sim-{secrets.token_hex(4)}")


@dataclass(frozen=True)
class RaterRun:
    """One simulated rater: the model it was assigned and how its session ended."""

    index: int
    external_id: str
    model: str | None
    outcome: str  # completed, failed_qualification, closed, excluded, or error
    answers: int  # answers the server stored (acknowledged, not duplicates)
    duplicates: int
    reconnects: int
    error: str = ""


@dataclass(frozen=True)
class SimulationReport:
    raters: tuple[RaterRun, ...]
    seconds: float

    @property
    def failures(self) -> tuple[RaterRun, ...]:
        return tuple(r for r in self.raters if r.outcome == "error")


def plan_make(
    study: Study,
    *,
    base_url: str,
    raters: int,
    thresholds_ms: Mapping[str, float] | None = None,
    inf_errors: Mapping[str, float] | None = None,
    **options: Any,
) -> SimulationPlan:
    """A plan for `study`, checking the model names and building each model's observer."""
    thresholds_ms = dict(thresholds_ms or {})
    inf_errors = dict(inf_errors or {})
    names = set(study.models.values_list("name", flat=True))
    unknown = sorted((set(thresholds_ms) | set(inf_errors)) - names)
    if unknown:
        raise SimulationError(
            f"the study has no model {', '.join(map(repr, unknown))}; "
            f"its models are {', '.join(sorted(names)) or 'none'}"
        )
    if study.status != Study.Status.LIVE:
        raise SimulationError(f"study {study.name!r} is {study.status}, not live")
    rule = study.staircase_rule()
    timed = study.method == Study.Method.TIME

    def observer(name: str | None) -> SimulatedObserver:
        error = inf_errors.get(name) if name else None
        if not timed:
            return observer_make(rule=rule, inf_error=DEFAULT_INF_ERROR if error is None else error)
        return observer_make(
            rule=rule,
            threshold_ms=thresholds_ms.get(name, DEFAULT_THRESHOLD_MS),
            inf_error=error,
        )

    try:
        observers = {name: observer(name) for name in sorted(names)}
        default = observer(None)
    except ValueError as error:
        raise SimulationError(str(error)) from None
    return SimulationPlan(
        base_url=base_url.rstrip("/"),
        study=study.public_id,
        raters=raters,
        observers=observers,
        default_observer=default,
        **options,
    )
