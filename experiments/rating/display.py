"""How large a study's images appear on the rater's screen, and what a rater's device needs to
take the study: the one owner of both rules (docs/raters.md, "Devices and display"). The server
knows the size in CSS pixels; the browser (static/js/display.js) turns it into whole device
pixels per image pixel at its device pixel ratio, and static/js/device_check.js measures the
device against DEVICE_REQUIREMENTS before consent."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from experiments.models import Image, Study

# The longer side of the images on screen, in CSS pixels, unless the study sets its own (or the
# images are larger: they are never shrunk by default).
DEFAULT_CSS_PX = 256

# The task page around the image (the progress bar, the prompt and its buttons, padding), in
# rem of the page's font: the window must hold the image plus this. The task page's stylesheet
# reads these very numbers (templates/rater/task.html), so the check and the layout agree.
STAGE_MARGIN_WIDTH_REM = 2.0
STAGE_MARGIN_HEIGHT_REM = 13.0

# A desktop-class pointer: `(any-pointer: fine)` and `(any-hover: hover)` (a mouse or a
# trackpad; a touch screen alone has neither). Browsers cannot tell whether a keyboard is
# attached, so the pointer stands for both.
# The refresh rate: requestAnimationFrame intervals over REFRESH_FRAMES frames whose median lies
# between REFRESH_HZ_MIN and REFRESH_HZ_MAX, with at least REFRESH_STEADY_SHARE of the intervals
# within REFRESH_TOLERANCE (of the median) of a whole number of medians: a dropped frame keeps
# the cadence, a display that draws at no steady rate does not, and its exposures could not be
# counted in frames.
REFRESH_HZ_MIN = 24
REFRESH_HZ_MAX = 360
REFRESH_FRAMES = 40
REFRESH_STEADY_SHARE = 2 / 3
REFRESH_TOLERANCE = 0.2

DEVICE_REQUIREMENTS: dict[str, Any] = {
    "fine_pointer": True,
    "hover": True,
    "refresh_hz_min": REFRESH_HZ_MIN,
    "refresh_hz_max": REFRESH_HZ_MAX,
    "refresh_frames": REFRESH_FRAMES,
    "refresh_steady_share": REFRESH_STEADY_SHARE,
    "refresh_tolerance": REFRESH_TOLERANCE,
}

# The start form's hidden fields, filled in by static/js/device_check.js (and put on the device
# page's address when the check fails). Absent altogether: no check ran (a script, a test).
DEVICE_FIELDS = (
    "device_fine_pointer",
    "device_hover",
    "device_window",
    "device_needed",
    "device_dpr",
    "device_refresh_ms",
    "device_refresh_steady",
)
_SIZE = re.compile(r"(\d{1,6})x(\d{1,6})")


def image_size(study: Study) -> tuple[int, int] | None:
    """The size every task and qualification image of the study has (set at import), or, for a
    study made before that, the size of one of its images; None without any."""
    if study.display_width and study.display_height:
        return study.display_width, study.display_height
    found = (
        Image.objects.filter(study=study)
        .exclude(role=Image.Role.MASK)
        .values_list("width", "height")
        .first()
    )
    return (int(found[0]), int(found[1])) if found else None


def display_css_px(study: Study, size: tuple[int, int] | None = None) -> int:
    """The longer side of the images on screen in CSS pixels, before the browser's rounding to
    whole device pixels: the study's display_css_px, else DEFAULT_CSS_PX or the images' own
    longer side if that is larger."""
    if study.display_css_px:
        return int(study.display_css_px)
    size = image_size(study) if size is None else size
    return max(DEFAULT_CSS_PX, max(size) if size else 0)


def display_settings(study: Study) -> dict[str, Any]:
    """What the rater's browser needs to size the images (rater_settings' "display"): the CSS
    size of the longer side, the images' own size (null when the study has no images yet: the
    browser then takes a square), and the task page's margins around the image."""
    size = image_size(study)
    return {
        "css_px": display_css_px(study, size),
        "image_width": size[0] if size else None,
        "image_height": size[1] if size else None,
        "margin_width_rem": STAGE_MARGIN_WIDTH_REM,
        "margin_height_rem": STAGE_MARGIN_HEIGHT_REM,
    }


def display_shown(study: Study) -> str:
    """The display size in words, for the study page: e.g. "256 × 256 CSS pixels; the images
    are 64 × 64, enlarged to a whole number of screen pixels per image pixel on each screen"."""
    size = image_size(study)
    css = display_css_px(study, size)
    if size is None:
        return f"{css} CSS pixels along the longer side (no images yet)"
    width, height = size
    longer = max(size)
    box = f"{_px(css * width / longer)} × {_px(css * height / longer)} CSS pixels"
    if css > longer:
        how = "enlarged to a whole number of screen pixels per image pixel on each screen"
    elif css < longer:
        how = (
            "reduced by a whole number of image pixels per screen pixel on each screen where "
            "that divides the image, smoothly otherwise"
        )
    else:
        how = "at their own size (one screen pixel per image pixel on a standard screen)"
    return f"{box}; the images are {width} × {height}, {how}"


def _px(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.1f}"


# --- The device check -----------------------------------------------------------------------


class DeviceReportInvalid(ValueError):
    """The start form's device fields cannot be read; the message says which."""


@dataclass(frozen=True)
class DeviceReport:
    """What static/js/device_check.js measured (CSS pixels; refresh_ms None: not measurable)."""

    fine_pointer: bool
    hover: bool
    window: tuple[int, int]
    needed: tuple[int, int]
    dpr: float
    refresh_ms: float | None
    refresh_steady: float


@dataclass(frozen=True)
class DeviceProblem:
    """One failed check: which, what was measured and what is needed, in words; `retry`: the
    rater may be able to fix it on the spot and check again (the window's size)."""

    check: str
    title: str
    message: str
    retry: bool


def _flag(params: Mapping[str, str], name: str) -> bool:
    value = str(params.get(name, ""))
    if value not in ("0", "1"):
        raise DeviceReportInvalid(f"{name} must be 0 or 1, not {value[:20]!r}")
    return value == "1"


def _size(params: Mapping[str, str], name: str) -> tuple[int, int]:
    value = str(params.get(name, ""))
    match = _SIZE.fullmatch(value)
    if not match:
        raise DeviceReportInvalid(f"{name} must be WIDTHxHEIGHT in pixels, not {value[:20]!r}")
    return int(match[1]), int(match[2])


def _number(params: Mapping[str, str], name: str, *, low: float, high: float) -> float:
    value = str(params.get(name, ""))
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and low <= number <= high):
        raise DeviceReportInvalid(
            f"{name} must be a number from {low} to {high}, not {value[:20]!r}"
        )
    return number


def device_report_read(params: Mapping[str, str]) -> DeviceReport | None:
    """The device check's results in the start form's fields (or on the device page's address);
    None when there are none at all (no check ran: the server accepts, see docs/raters.md).
    Raises DeviceReportInvalid, in words, for a field that is missing or malformed."""
    if not any(name in params for name in DEVICE_FIELDS):
        return None
    refresh = str(params.get("device_refresh_ms", ""))
    return DeviceReport(
        fine_pointer=_flag(params, "device_fine_pointer"),
        hover=_flag(params, "device_hover"),
        window=_size(params, "device_window"),
        needed=_size(params, "device_needed"),
        dpr=_number(params, "device_dpr", low=0.1, high=20),
        refresh_ms=None
        if refresh == ""
        else _number(params, "device_refresh_ms", low=0.1, high=10_000),
        refresh_steady=_number(params, "device_refresh_steady", low=0, high=1),
    )


def device_problems(report: DeviceReport) -> list[DeviceProblem]:
    """Every requirement the device fails, in the order the device page gives them (none: it
    can take the study). The browser applies the same DEVICE_REQUIREMENTS before it sends."""
    problems = []
    if not (report.fine_pointer and report.hover):
        found = "a touch screen only" if not report.fine_pointer else "a pointer that cannot hover"
        problems.append(
            DeviceProblem(
                check="pointer",
                title="A computer with a mouse and a keyboard is needed",
                message=f"This device has {found}. The study needs a desktop or laptop "
                "computer with a mouse or trackpad, and a keyboard: you answer each image with "
                "a key press.",
                retry=False,
            )
        )
    window_w, window_h = report.window
    needed_w, needed_h = report.needed
    short = []
    if window_w < needed_w:
        short.append(f"{window_w} px wide; the images need {needed_w} px")
    if window_h < needed_h:
        short.append(f"{window_h} px tall; the images need {needed_h} px")
    if short:
        problems.append(
            DeviceProblem(
                check="window",
                title="Your window is too small for the images",
                message=f"Your window is {' and '.join(short)}: make the window larger (or "
                "full screen) or use a larger screen, then check again.",
                retry=True,
            )
        )
    problem = _refresh_problem(report)
    if problem is not None:
        problems.append(problem)
    return problems


def _refresh_problem(report: DeviceReport) -> DeviceProblem | None:
    title = "Your screen's refresh rate could not be measured"
    if report.refresh_ms is None:
        return DeviceProblem(
            check="refresh",
            title=title,
            message="The browser drew too few frames to measure how often your screen "
            "refreshes, as happens when the page is in a background tab or a minimised window. "
            "Keep this page in front, then check again.",
            retry=True,
        )
    hz = 1000 / report.refresh_ms
    if not REFRESH_HZ_MIN <= hz <= REFRESH_HZ_MAX:
        return DeviceProblem(
            check="refresh",
            title="Your screen's refresh rate is outside what the study needs",
            message=f"Your screen refreshes {hz:.0f} times a second (Hz); the study needs "
            f"between {REFRESH_HZ_MIN} and {REFRESH_HZ_MAX}, because it times each image in "
            "screen frames. Try another screen, or check again with the page in front.",
            retry=True,
        )
    if report.refresh_steady < REFRESH_STEADY_SHARE:
        return DeviceProblem(
            check="refresh",
            title=title,
            message=f"Your screen drew frames at uneven intervals: {report.refresh_steady:.0%} "
            f"of them came at its usual rate of {hz:.0f} Hz, and the study needs at least "
            f"{REFRESH_STEADY_SHARE:.0%}, because it times each image in screen frames. Close "
            "other tabs and programs, keep this page in front, then check again.",
            retry=True,
        )
    return None
