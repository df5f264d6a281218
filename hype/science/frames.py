"""Display frames: how many frames a requested duration becomes at a refresh interval (the one
rule the server's trials, the study page and the docs use), and what the backward masks of a
study really last at the refresh rates its raters measured."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The refresh interval assumed until a rater's browser has measured one: 60 Hz.
DEFAULT_REFRESH_MS = 1000 / 60


def frames_for(ms: float, refresh_ms: float) -> int:
    """The whole number of frames nearest to `ms` at one frame every `refresh_ms`, and at
    least one: an exposure or a mask is shown for whole frames."""
    if not refresh_ms > 0:
        raise ValueError(f"the refresh interval must be positive, not {refresh_ms!r}")
    return max(1, round(ms / refresh_ms))


def refresh_hz(refresh_ms: float) -> int:
    """A refresh interval as the rate it is sold as: 16.68 ms is 60 Hz, 6.94 ms is 144 Hz."""
    return round(1000 / refresh_ms)


@dataclass(frozen=True)
class MaskTiming:
    """The backward masks of a trial at one refresh rate: `count` masks of `requested_ms`
    each, shown for `frames` frames each. `raters`: how many raters measured this rate (0:
    the 60 Hz assumed before anyone has)."""

    count: int
    requested_ms: float
    hz: int
    refresh_ms: float
    frames: int
    raters: int = 0

    @property
    def shown_ms(self) -> float:
        """What one mask lasts on screen."""
        return self.frames * self.refresh_ms

    @property
    def total_ms(self) -> float:
        return self.count * self.shown_ms

    def sentence(self) -> str:
        """E.g. "4 masks of 30 ms requested: 2 frames = 33.3 ms each, 133 ms in all, at 60 Hz"."""
        frames = f"{self.frames} frame{'s' if self.frames != 1 else ''}"
        if self.count == 1:
            return (
                f"1 mask of {self.requested_ms:g} ms requested: {frames} = "
                f"{self.shown_ms:.1f} ms, at {self.hz} Hz"
            )
        return (
            f"{self.count} masks of {self.requested_ms:g} ms requested: {frames} = "
            f"{self.shown_ms:.1f} ms each, {self.total_ms:.0f} ms in all, at {self.hz} Hz"
        )


def mask_timings(
    *, count: int, mask_ms: float, refresh_intervals: Iterable[float]
) -> list[MaskTiming]:
    """The masks' real durations at each refresh rate among `refresh_intervals` (one per
    rater who measured one), fastest display last; at 60 Hz when there is none. Raters whose
    intervals round to one rate but give different frame counts get a line each."""
    groups: dict[tuple[int, int], list[float]] = {}
    for interval in refresh_intervals:
        if interval is None or not interval > 0:
            continue
        key = (refresh_hz(interval), frames_for(mask_ms, interval))
        groups.setdefault(key, []).append(interval)
    if not groups:
        return [
            MaskTiming(
                count=count,
                requested_ms=mask_ms,
                hz=refresh_hz(DEFAULT_REFRESH_MS),
                refresh_ms=DEFAULT_REFRESH_MS,
                frames=frames_for(mask_ms, DEFAULT_REFRESH_MS),
            )
        ]
    timings = []
    for (hz, frames), intervals in sorted(groups.items()):
        ordered = sorted(intervals)
        middle = len(ordered) // 2
        median = (
            ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        )
        timings.append(
            MaskTiming(
                count=count,
                requested_ms=mask_ms,
                hz=hz,
                refresh_ms=median,
                frames=frames,
                raters=len(intervals),
            )
        )
    return timings
