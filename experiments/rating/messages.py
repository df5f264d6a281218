"""The messages of the rater protocol (docs/protocol.md): what a browser may send, validated
(raw JSON text in, a typed message out), and the ProtocolError it gets back otherwise."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE_BYTES = 4096
# A display refreshes between 24 and 360 times a second; anything else is a broken measure.
REFRESH_RANGE_MS = (1000 / 360, 1000 / 24)
# An answer slower than an hour is not a measurement of anything.
MAX_MS = 3_600_000.0
# A trial's id is a URL-safe token (experiments.models.public_token): anything else, a NUL
# byte or a lone surrogate say, names no trial and never reaches a query.
TRIAL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ProtocolError(Exception):
    """A request the server refuses; `code` is the error code of docs/protocol.md."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def as_message(self, *, trial: str | None = None) -> dict[str, Any]:
        """The error message for the browser; `trial`: the trial the refused message named."""
        message = {"type": "error", "code": self.code, "message": self.message}
        if trial:
            message["trial"] = trial
        return message


@dataclass(frozen=True)
class Measurements:
    """What the browser measured for one trial (None where it could not measure)."""

    rt_ms: float
    shown_ms: float | None = None
    mask_ms: float | None = None
    refresh_ms: float | None = None
    page_hidden: bool = False


@dataclass(frozen=True)
class Hello:
    refresh_ms: float | None  # None: the browser could not measure its refresh rate
    screen_width: int | None
    screen_height: int | None
    device_pixel_ratio: float | None
    trial = None  # a hello is about no trial


@dataclass(frozen=True)
class Presented:
    trial: str


@dataclass(frozen=True)
class AnswerMessage:
    trial: str
    choice: str
    measured: Measurements


def _bad(message: str) -> ProtocolError:
    return ProtocolError("bad_message", message)


def _number(data: dict, key: str, *, low: float, high: float, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"'{key}' must be a number.")
    try:
        number = float(value)  # an integer of 400 digits is too large for a float
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise _bad(f"'{key}' must be a finite number.")
    if not low <= number <= high:
        raise _bad(f"'{key}' must be between {low:g} and {high:g}, got {number:g}.")
    return number


def _trial_id(data: dict) -> str:
    value = data.get("trial")
    if not isinstance(value, str) or not TRIAL_ID.fullmatch(value):
        raise _bad("'trial' must be the trial's id: 1 to 64 letters, digits, - or _.")
    return value


def _parse_hello(data: dict) -> Hello:
    if "refresh_ms" not in data:
        raise _bad("'refresh_ms' is required: the measured refresh interval, or null.")
    # null: the browser could not measure it (the server then counts frames at 60 Hz).
    refresh_ms = _number(
        data, "refresh_ms", low=REFRESH_RANGE_MS[0], high=REFRESH_RANGE_MS[1], optional=True
    )
    screen = data.get("screen") or {}
    if not isinstance(screen, dict):
        raise _bad("'screen' must be an object with width, height and dpr.")
    width = _number(screen, "width", low=1, high=100_000, optional=True)
    height = _number(screen, "height", low=1, high=100_000, optional=True)
    dpr = _number(screen, "dpr", low=0.1, high=20, optional=True)
    return Hello(
        refresh_ms=refresh_ms,
        screen_width=int(width) if width is not None else None,
        screen_height=int(height) if height is not None else None,
        device_pixel_ratio=dpr,
    )


def _parse_answer(data: dict) -> AnswerMessage:
    choice = data.get("choice")
    if choice not in ("real", "fake"):
        raise _bad('\'choice\' must be "real" or "fake".')
    page_hidden = data.get("page_hidden", False)
    if not isinstance(page_hidden, bool):
        raise _bad("'page_hidden' must be true or false.")
    return AnswerMessage(
        trial=_trial_id(data),
        choice=choice,
        measured=Measurements(
            rt_ms=_number(data, "rt_ms", low=0, high=MAX_MS),
            shown_ms=_number(data, "shown_ms", low=0, high=MAX_MS, optional=True),
            mask_ms=_number(data, "mask_ms", low=0, high=MAX_MS, optional=True),
            refresh_ms=_number(
                data,
                "refresh_ms",
                low=REFRESH_RANGE_MS[0],
                high=REFRESH_RANGE_MS[1],
                optional=True,
            ),
            page_hidden=page_hidden,
        ),
    )


def message_parse(text: str | None) -> Hello | Presented | AnswerMessage:
    """The typed message in a websocket text frame, or ProtocolError."""
    if text is None:
        raise ProtocolError("bad_json", "Messages are JSON text frames.")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"Messages are at most {MAX_MESSAGE_BYTES} bytes.")
    try:
        data = json.loads(text)
    except ValueError:
        raise ProtocolError("bad_json", "That message is not valid JSON.") from None
    except RecursionError:
        # Arrays or objects nested hundreds deep: no message of the protocol is.
        raise ProtocolError("bad_json", "That message is nested too deeply.") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_json", "A message is a JSON object.")
    kind = data.get("type")
    if kind == "hello":
        return _parse_hello(data)
    if kind == "presented":
        return Presented(trial=_trial_id(data))
    if kind == "answer":
        return _parse_answer(data)
    raise ProtocolError("unknown_type", f"Unknown message type {kind!r}.")
