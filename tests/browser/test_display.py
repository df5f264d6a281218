"""The display size and the device check in Debian's Chromium: the images' box on the task page
is the display size in device pixels (getBoundingClientRect() x devicePixelRatio) at DPR 1,
1.25 and 2, drawn with whole device pixels per image pixel; the browser's rounding rule gives the
same table of cases as the server's side (tests/experiments/rating/test_display.py); and a
device that fails the check before consent (a window too small, a touch-only phone) gets the
device page, and no session."""

import io
import json
import time
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from PIL import Image as PILImage

from experiments.models import Image, RaterSession, Study
from tests.browser.conftest import VIEWPORT
from tests.experiments.rating.test_display import DISPLAY_CASES
from tests.factories import image_make, study_make

pytestmark = [pytest.mark.browser]

ITEM_BOXES = """() => [...document.querySelectorAll('#stage-items .stage-item')].map((e) => {
  const r = e.getBoundingClientRect();
  return {role: e.classList.contains('stage-mask') ? 'mask' : 'image',
          width: r.width, height: r.height, left: r.left, top: r.top,
          rendering: getComputedStyle(e).imageRendering,
          natural: [e.naturalWidth, e.naturalHeight], dpr: devicePixelRatio};
})"""
LOADED = """() => {
  const items = [...document.querySelectorAll('#stage-items .stage-item')];
  return items.length > 0 && items.every((e) => e.complete && e.naturalWidth > 0);
}"""


def checkerboard(width: int, height: int, seed: int) -> bytes:
    """A PNG whose neighbouring pixels differ (black and white squares of one pixel, one
    coloured pixel to tell images apart): any smoothing or uneven scaling shows in its pixels."""
    board = ((np.indices((height, width)).sum(axis=0) % 2) * 255).astype(np.uint8)
    pixels = np.repeat(board[:, :, None], 3, axis=2)
    pixels[0, 0] = (seed * 37 % 256, seed * 91 % 256, 128)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def display_study(width: int, height: int, css_px: int | None = None, **fields) -> Study:
    """A live HYPE_time study of width x height images: one block of 2 timed trials, with a
    qualification of `qualification_trials` (0 by default), one model, and masks."""
    fields.setdefault("qualification_trials", 0)
    study = study_make(
        status=Study.Status.LIVE,
        display_width=width,
        display_height=height,
        display_css_px=css_px,
        time_blocks=1,
        time_trials_per_block=2,
        **fields,
    )
    (model,) = study.models.all()
    count = 2 + fields["qualification_trials"]
    seed = 0
    for role, number in ((Image.Role.TASK, 2), (Image.Role.QUALIFICATION, count - 2)):
        for i in range(number):
            for fake in (False, True):
                seed += 1
                image_make(
                    study,
                    model=model if fake else None,
                    role=role,
                    data=checkerboard(width, height, seed),
                    size=(width, height),
                    original_name=f"{'fake' if fake else 'real'}_{i}.png",
                )
    for _ in range(2):
        seed += 1
        image_make(
            study,
            role=Image.Role.MASK,
            data=checkerboard(width, height, seed),
            size=(width, height),
        )
    return study


def open_context(chromium, **options):
    options.setdefault("viewport", VIEWPORT)
    context = chromium.new_context(**options)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    return context, page, errors


def landing(page, live_server_url: str, study: Study) -> None:
    page.goto(f"{live_server_url}/s/{study.public_id}/")


def start(page, live_server_url: str, study: Study) -> None:
    """The landing page, its device check, consent, and the task page with its first trial's
    image and masks loaded (hidden behind the block's introduction)."""
    landing(page, live_server_url, study)
    page.wait_for_function("() => !document.getElementById('start').disabled", timeout=10_000)
    page.check("input[name=consent]")
    page.click("#start")
    page.wait_for_url("**/task")
    page.wait_for_function(LOADED, timeout=10_000)


@pytest.mark.parametrize(
    ("size", "css_px", "dpr", "device", "css", "pixelated"),
    [
        # A 64 px study at 256 CSS px: 4 device px per image px at DPR 1, 8 at DPR 2, and at
        # DPR 1.25 the 5 nearest 320 device px, that is 256 CSS px.
        ((64, 64), None, 1, (256, 256), (256, 256), True),
        ((64, 64), None, 2, (512, 512), (256, 256), True),
        ((64, 64), None, 1.25, (320, 320), (256, 256), True),
        # A 1024 px study at its own size (a 1024 x 576 one: a square one does not fit in 800
        # px), and a square one at 512 CSS px on DPR 2: one device px per image px.
        ((1024, 576), None, 1, (1024, 576), (1024, 576), False),
        ((1024, 1024), 512, 2, (1024, 1024), (512, 512), False),
    ],
)
def test_the_images_and_masks_get_the_display_size_in_device_pixels(
    chromium, live_server_url, size, css_px, dpr, device, css, pixelated
):
    study = display_study(*size, css_px)
    context, page, errors = open_context(chromium, device_scale_factor=dpr)
    try:
        start(page, live_server_url, study)
        boxes = page.evaluate(ITEM_BOXES)
    finally:
        context.close()
    assert not errors, errors
    assert {box["role"] for box in boxes} == {"image", "mask"}
    for box in boxes:
        assert box["dpr"] == dpr
        assert box["natural"] == list(size)
        assert (box["width"], box["height"]) == pytest.approx(css, abs=0.02), box
        assert (box["width"] * dpr, box["height"] * dpr) == pytest.approx(device, abs=0.05), box
        assert box["rendering"] == ("pixelated" if pixelated else "auto")
    # Masks on the image: the same box at the same place.
    assert len({(round(b["left"], 2), round(b["top"], 2)) for b in boxes}) == 1


@pytest.mark.parametrize(("dpr", "per_pixel"), [(1, 4), (1.25, 5), (2, 8)])
def test_each_image_pixel_is_drawn_as_a_square_of_whole_device_pixels(
    chromium, live_server_url, dpr, per_pixel
):
    """The untimed practice image on screen, in the screenshot's device pixels: the 64 x 64
    checkerboard is 64 x 64 uniform squares of per_pixel x per_pixel device pixels."""
    study = display_study(64, 64, qualification_trials=2)
    context, page, errors = open_context(chromium, device_scale_factor=dpr)
    try:
        start(page, live_server_url, study)
        page.keyboard.press("Space")  # the practice round's introduction
        page.wait_for_function(
            "() => getComputedStyle(document.querySelector('.stage-image')).visibility"
            " === 'visible'"
        )
        box = page.locator(".stage-image").bounding_box()
        shot = page.screenshot(clip=box, scale="device", animations="disabled")
    finally:
        context.close()
    assert not errors, errors
    pixels = np.asarray(PILImage.open(io.BytesIO(shot)).convert("L"), dtype=int)
    assert pixels.shape == (64 * per_pixel, 64 * per_pixel)
    blocks = pixels.reshape(64, per_pixel, 64, per_pixel).transpose(0, 2, 1, 3)
    spread = blocks.max(axis=(2, 3)) - blocks.min(axis=(2, 3))
    # Every square is one colour, and the squares alternate like the image's pixels (the first
    # one is the image's marker pixel).
    assert spread.max() == 0
    means = blocks.mean(axis=(2, 3))
    board = (np.indices((64, 64)).sum(axis=0) % 2) * 255
    assert np.array_equal(means.ravel()[1:], board.ravel()[1:])


def test_the_browsers_rounding_gives_the_table_of_cases(chromium, static_server_url):
    context, page, errors = open_context(chromium)
    try:
        page.goto(f"{static_server_url}/bench/timing.html")
        results = page.evaluate(
            """async (cases) => {
              const { displayBox } = await import('/js/display.js');
              return cases.map(([width, height, cssPx, dpr]) =>
                displayBox({ imageWidth: width, imageHeight: height, cssPx, dpr }));
            }""",
            [[w, h, expected[0], dpr] for (w, h, _setting, dpr), expected in DISPLAY_CASES],
        )
    finally:
        context.close()
    assert not errors, errors
    for (case, expected), box in zip(DISPLAY_CASES, results, strict=True):
        _css, device_w, device_h, whole, pixelated = expected
        dpr = case[3]
        assert (box["deviceWidth"], box["deviceHeight"]) == (device_w, device_h), (case, box)
        assert (box["whole"], box["pixelated"]) == (whole, pixelated), (case, box)
        assert box["cssWidth"] == pytest.approx(device_w / dpr), (case, box)
        assert box["cssHeight"] == pytest.approx(device_h / dpr), (case, box)


def test_the_task_page_fits_a_window_of_exactly_the_size_the_device_check_asks_for(
    chromium, live_server_url
):
    """The page's margins are what the check adds: in a window just large enough the prompt's
    buttons are inside it and the image has its full size."""
    study = display_study(1024, 576)
    context, page, errors = open_context(chromium)
    try:
        landing(page, live_server_url, study)
        page.wait_for_function("() => window.hypeDeviceCheck !== undefined")
        width, height = page.evaluate("() => window.hypeDeviceCheck.results.size.needed")
        page.set_viewport_size({"width": width, "height": height})
        start(page, live_server_url, study)
        boxes = page.evaluate(ITEM_BOXES)
        prompt = page.locator("#prompt").bounding_box()
        bar = page.locator(".task-bar").bounding_box()
    finally:
        context.close()
    assert not errors, errors
    assert (width, height) == (1024 + 32, 576 + 13 * 16)
    for box in boxes:
        assert (box["width"], box["height"]) == (1024, 576)
        assert box["top"] >= bar["y"] + bar["height"] and box["left"] >= 0
    assert prompt["y"] + prompt["height"] <= height


def test_a_window_too_small_for_the_images_gets_the_device_page_and_no_session(
    chromium, live_server_url
):
    study = display_study(1024, 1024)  # at its own size: 1024 CSS px + the page, in 800 px
    context, page, errors = open_context(chromium)
    try:
        landing(page, live_server_url, study)
        page.wait_for_url("**/device?*", timeout=10_000)
        text = page.inner_text("main")
        check_again = page.locator("#check-again").get_attribute("href")
    finally:
        context.close()
    assert not errors, errors
    assert "Your window is too small for the images" in text
    assert "Your window is 800 px tall; the images need 1232 px: make the window larger" in text
    assert check_again == f"/s/{study.public_id}/"
    assert not RaterSession.objects.filter(study=study).exists()


def test_a_touch_only_phone_gets_the_device_page_and_no_session(chromium, live_server_url):
    study = display_study(64, 64)
    context, page, errors = open_context(
        chromium,
        viewport={"width": 390, "height": 844},
        device_scale_factor=3,
        has_touch=True,
        is_mobile=True,
    )
    try:
        landing(page, live_server_url, study)
        page.wait_for_url("**/device?*", timeout=10_000)
        text = page.inner_text("main")
        measured = dict(parse_qsl(urlsplit(page.url).query))
    finally:
        context.close()
    assert not errors, errors
    assert "A computer with a mouse and a keyboard is needed" in text
    assert "This device has a touch screen only" in text
    assert (measured["device_fine_pointer"], measured["device_hover"]) == ("0", "0")
    assert not RaterSession.objects.filter(study=study).exists()


def test_a_browser_that_cannot_measure_its_refresh_rate_says_null_in_hello(
    chromium, live_server_url
):
    """A browser that draws no animation frames (as in a background tab): the task page's
    hello reports refresh_ms null instead of passing 60 Hz's interval off as measured."""
    study = display_study(64, 64)
    context, page, errors = open_context(chromium)
    sent = []
    try:
        landing(page, live_server_url, study)
        page.wait_for_function("() => !document.getElementById('start').disabled", timeout=10_000)
        # From the task page on, requestAnimationFrame never calls back.
        context.add_init_script("window.requestAnimationFrame = () => 0;")
        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
        page.check("input[name=consent]")
        page.click("#start")
        page.wait_for_url("**/task")
        deadline = time.monotonic() + 10  # the measurement gives up after 5 s
        while not any('"hello"' in text for text in sent) and time.monotonic() < deadline:
            page.wait_for_timeout(100)
    finally:
        context.close()
    assert not errors, errors
    hellos = [json.loads(text) for text in sent if '"hello"' in text]
    assert hellos, sent
    assert hellos[0]["refresh_ms"] is None


def test_a_dropped_frame_keeps_the_cadence_and_intervals_at_no_common_rate_do_not(
    chromium, static_server_url
):
    context, page, errors = open_context(chromium)
    try:
        page.goto(f"{static_server_url}/bench/timing.html")
        shares = page.evaluate(
            """async () => {
              const { steadyShare } = await import('/js/frames.js');
              const even = Array(30).fill(16.7);
              const dropped = [...even.slice(0, 25), 33.4, 50.1, 16.6, 16.8, 16.7];
              const uneven = [10, 23, 17, 31, 12, 27, 40, 14, 21, 35, 11, 25];
              return [steadyShare(even, 0.2), steadyShare(dropped, 0.2),
                      steadyShare(uneven, 0.2), steadyShare([], 0.2)];
            }"""
        )
    finally:
        context.close()
    assert not errors, errors
    assert shares[0] == 1 and shares[1] == 1
    assert shares[2] < 2 / 3
    assert shares[3] == 0


def test_a_browser_that_draws_no_frames_gets_the_device_page_and_no_session(
    chromium, live_server_url
):
    """As in a background tab that never comes to the front: the landing page's refresh
    measurement gives up, twice, and the device page says the rate could not be measured."""
    study = display_study(64, 64)
    context, page, errors = open_context(chromium)
    context.add_init_script("window.requestAnimationFrame = () => 0;")
    try:
        landing(page, live_server_url, study)
        page.wait_for_url("**/device?*", timeout=15_000)
        text = page.inner_text("main")
        measured = dict(parse_qsl(urlsplit(page.url).query, keep_blank_values=True))
    finally:
        context.close()
    assert not errors, errors
    assert "Your screen's refresh rate could not be measured" in text
    assert "Check again" in text
    assert measured["device_refresh_ms"] == ""
    assert not RaterSession.objects.filter(study=study).exists()
