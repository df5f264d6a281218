"""The display size and the device check, on the server: the CSS size a study's images get
(the browser's rounding to whole device pixels is tested on the same table of cases in
tests/browser/test_display.py), the device page, and a start the device check failed, which
creates nothing."""

from urllib.parse import urlencode

import pytest

from experiments.models import Image, RaterSession, Study
from experiments.rating.display import (
    DEFAULT_CSS_PX,
    DEVICE_FIELDS,
    DeviceReportInvalid,
    device_problems,
    device_report_read,
    display_css_px,
    display_settings,
    display_shown,
)
from experiments.rating.sessions import rater_settings
from experiments.recruiting.prolific import CODE_TYPES
from tests.factories import image_make, study_make, user_make
from tests.raters import MTURK_WORKER

pytestmark = pytest.mark.django_db

# One row per case, shared with the browser's side of the rule (tests/browser/test_display.py):
# the images' size, the study's display_css_px (None: the default), the device pixel ratio;
# then the CSS size of the longer side the server sends, and the device pixels the browser
# gives the image, whether that is a whole number per image pixel, and whether it is drawn
# pixelated (a whole-number enlargement).
DISPLAY_CASES = [
    # (width, height, css_px setting, dpr) -> (css_px, device width, height, whole, pixelated)
    ((64, 64, None, 1), (256, 256, 256, True, True)),  # 4 device px per image px
    ((64, 64, None, 2), (256, 512, 512, True, True)),  # 8
    ((64, 64, None, 1.25), (256, 320, 320, True, True)),  # 5: 320 device px = 256 CSS px
    ((100, 100, None, 1.25), (256, 300, 300, True, True)),  # 3 (3.2 asked): 240 CSS px
    ((100, 100, None, 1), (256, 300, 300, True, True)),  # 3 (2.56 asked): 300 nearer than 200
    ((64, 64, 96, 1), (96, 128, 128, True, True)),  # 1.5 asked: a tie goes to the larger
    ((64, 64, 90, 1), (90, 64, 64, True, False)),  # 1.41: own size
    ((32, 24, None, 1), (256, 256, 192, True, True)),  # the longer side: 8 per image px
    ((48, 48, None, 1.5), (256, 384, 384, True, True)),
    ((1024, 576, None, 1), (1024, 1024, 576, True, False)),  # its own size, larger than 256
    ((1024, 1024, None, 1), (1024, 1024, 1024, True, False)),
    ((1024, 1024, 512, 2), (512, 1024, 1024, True, False)),  # one device px per image px
    ((1024, 1024, 512, 1), (512, 512, 512, True, False)),  # 2 image px per device px
    ((1024, 1024, 256, 1), (256, 256, 256, True, False)),  # 4
    ((1024, 1024, 700, 1), (700, 512, 512, True, False)),  # 512 is nearer 700 than 1024
    ((1024, 1024, 256, 1.25), (256, 320, 320, False, False)),  # 3.2: 3 does not divide 1024
    ((1000, 1000, 300, 1), (300, 300, 300, False, False)),  # 3.33: 3 does not divide 1000
    ((1000, 1000, 250, 1), (250, 250, 250, True, False)),  # 4 divides 1000
]


def study_with_size(width, height, css_px) -> Study:
    return study_make(display_width=width, display_height=height, display_css_px=css_px)


@pytest.mark.parametrize(("case", "expected"), DISPLAY_CASES)
def test_the_server_sends_the_css_size_of_the_longer_side_and_the_images_own_size(case, expected):
    width, height, setting, _dpr = case
    study = study_with_size(width, height, setting)
    display = rater_settings(study)["display"]
    assert display["css_px"] == expected[0] == display_css_px(study)
    assert (display["image_width"], display["image_height"]) == (width, height)


def test_the_default_is_256_or_the_images_own_size_if_larger():
    assert DEFAULT_CSS_PX == 256
    assert display_css_px(study_with_size(255, 100, None)) == 256
    assert display_css_px(study_with_size(257, 100, None)) == 257
    assert display_css_px(study_with_size(100, 300, None)) == 300
    # A size the study sets wins, smaller or larger.
    assert display_css_px(study_with_size(300, 300, 128)) == 128


def test_a_study_without_a_display_size_takes_its_images_size_and_without_images_a_square():
    study = study_make()
    assert display_settings(study)["image_width"] is None
    assert display_css_px(study) == 256
    image_make(study, role=Image.Role.MASK, size=(640, 640))
    assert display_settings(study)["image_width"] is None  # masks do not count
    image_make(study, size=(400, 300))
    settings = display_settings(study)
    assert (settings["css_px"], settings["image_width"], settings["image_height"]) == (
        400,
        400,
        300,
    )


def test_the_study_page_states_the_display_size(client):
    owner = user_make()
    study = study_make(owner=owner, display_width=64, display_height=48)
    client.force_login(owner)
    html = client.get(f"/studies/{study.public_id}/").content.decode()
    assert "256 × 192 CSS pixels; the images are 64 × 48, enlarged" in html
    assert display_shown(study) in html
    study.display_css_px = 32
    assert display_shown(study).startswith("32 × 24 CSS pixels; the images are 64 × 48, reduced")


# --- The device check's fields ---------------------------------------------------------------


def fields(**overrides) -> dict[str, str]:
    """A device that passes every check, as static/js/device_check.js sends it."""
    values = {
        "device_fine_pointer": "1",
        "device_hover": "1",
        "device_window": "1280x800",
        "device_needed": "288x464",
        "device_dpr": "1",
        "device_refresh_ms": "16.67",
        "device_refresh_steady": "0.975",
    }
    values.update(overrides)
    assert set(values) == set(DEVICE_FIELDS)
    return values


def problems_of(**overrides) -> list:
    return device_problems(device_report_read(fields(**overrides)))


def test_no_fields_means_no_check_ran_and_a_passing_device_has_no_problem():
    assert device_report_read({"consent": "on"}) is None
    assert problems_of() == []


def test_a_touch_screen_fails_the_pointer_check_and_cannot_check_again():
    (problem,) = problems_of(device_fine_pointer="0", device_hover="0")
    assert problem.check == "pointer" and not problem.retry
    assert "This device has a touch screen only" in problem.message
    assert "mouse or trackpad, and a keyboard" in problem.message
    (problem,) = problems_of(device_hover="0")
    assert "a pointer that cannot hover" in problem.message


def test_a_small_window_is_told_what_it_measured_and_what_the_images_need():
    (problem,) = problems_of(device_window="1280x700", device_needed="288x820")
    assert problem.check == "window" and problem.retry
    assert problem.message.startswith(
        "Your window is 700 px tall; the images need 820 px: make the window larger"
    )
    (problem,) = problems_of(device_window="900x700", device_needed="1056x820")
    assert "900 px wide; the images need 1056 px and 700 px tall; the images need 820 px" in (
        problem.message
    )


@pytest.mark.parametrize(
    ("refresh_ms", "steady", "says"),
    [
        ("", "0", "drew too few frames to measure"),
        ("50", "1", "refreshes 20 times a second (Hz); the study needs between 24 and 360"),
        ("2.5", "1", "refreshes 400 times a second"),
        ("16.67", "0.5", "50% of them came at its usual rate of 60 Hz"),
    ],
)
def test_a_refresh_rate_that_is_not_measurable_out_of_range_or_unsteady_fails(
    refresh_ms, steady, says
):
    (problem,) = problems_of(device_refresh_ms=refresh_ms, device_refresh_steady=steady)
    assert problem.check == "refresh" and problem.retry
    assert says in problem.message


def test_the_bounds_of_the_refresh_rate_pass():
    assert problems_of(device_refresh_ms=str(1000 / 24)) == []
    assert problems_of(device_refresh_ms=str(1000 / 360), device_refresh_steady="0.667") == []


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"device_window": "big"}, "device_window must be WIDTHxHEIGHT in pixels, not 'big'"),
        ({"device_hover": "yes"}, "device_hover must be 0 or 1, not 'yes'"),
        ({"device_dpr": "nan"}, "device_dpr must be a number from 0.1 to 20"),
        ({"device_refresh_steady": "2"}, "device_refresh_steady must be a number from 0 to 1"),
    ],
)
def test_a_malformed_field_is_said_in_words(overrides, error):
    with pytest.raises(DeviceReportInvalid, match=error):
        device_report_read(fields(**overrides))
    partial = fields()
    del partial["device_needed"]
    with pytest.raises(DeviceReportInvalid, match="device_needed must be WIDTHxHEIGHT"):
        device_report_read(partial)


# --- The pages -------------------------------------------------------------------------------


@pytest.fixture
def study():
    return study_make(status=Study.Status.LIVE, code_device="DEV42")


PROLIFIC = {"PROLIFIC_PID": "5f1a", "STUDY_ID": "s1", "SESSION_ID": "x9"}
SMALL_WINDOW = {"device_window": "1280x700", "device_needed": "288x820"}
TOUCH = {"device_fine_pointer": "0", "device_hover": "0"}


def test_the_landing_page_gives_the_device_check_its_requirements_and_the_device_page(
    client, study
):
    html = client.get(f"/s/{study.public_id}/", PROLIFIC).content.decode()
    assert '<script id="device-check" type="application/json">' in html
    assert '"css_px": 256' in html and '"refresh_hz_min": 24' in html
    assert f'"device_url": "/s/{study.public_id}/device?PROLIFIC_PID=5f1a' in html
    assert 'id="start" disabled>Start</button>' in html


def test_a_start_the_device_check_failed_gets_the_device_page_and_creates_nothing(client, study):
    data = {"consent": "on", **PROLIFIC, **fields(**SMALL_WINDOW)}
    response = client.post(f"/s/{study.public_id}/start", data)
    assert response.status_code == 409
    html = response.content.decode()
    assert "Your window is 700 px tall; the images need 820 px" in html
    assert "Check again" in html
    assert RaterSession.objects.count() == 0


def test_a_start_without_the_device_fields_is_accepted(client, study):
    # The check runs in the browser; a script that sends nothing (or lies) is not stopped.
    response = client.post(f"/s/{study.public_id}/start", {"consent": "on"})
    assert response.status_code == 302 and response["Location"].endswith("/task")
    assert RaterSession.objects.count() == 1


def test_a_start_whose_device_passed_is_accepted(client, study):
    response = client.post(f"/s/{study.public_id}/start", {"consent": "on", **fields()})
    assert response.status_code == 302 and RaterSession.objects.count() == 1


def test_a_start_with_malformed_device_fields_is_refused_in_words(client, study):
    data = {"consent": "on", **fields(device_window="huge")}
    response = client.post(f"/s/{study.public_id}/start", data)
    assert response.status_code == 400
    assert "device_window must be WIDTHxHEIGHT in pixels" in response.content.decode()
    assert RaterSession.objects.count() == 0


def device_url(study, **params) -> str:
    return f"/s/{study.public_id}/device?{urlencode(params)}"


def test_a_prolific_participant_with_a_small_window_gets_the_device_code_and_can_check_again(
    client, study
):
    response = client.get(device_url(study, **PROLIFIC, **fields(**SMALL_WINDOW)))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your window is too small for the images" in html
    assert f'href="/s/{study.public_id}/?PROLIFIC_PID=5f1a&amp;STUDY_ID=s1' in html
    assert '<code class="completion-code" id="completion-code">DEV42</code>' in html
    assert "submissions/complete?cc=DEV42" in html
    # Not sent back at once: checking again may help.
    assert '"redirect_url": ""' in html
    assert RaterSession.objects.count() == 0


def test_a_prolific_participant_on_a_touch_screen_is_sent_back_with_the_device_code(client, study):
    html = client.get(device_url(study, **PROLIFIC, **fields(**TOUCH))).content.decode()
    assert "A computer with a mouse and a keyboard is needed" in html
    assert 'id="check-again"' not in html
    assert '"redirect_url": "https://app.prolific.com/submissions/complete?cc=DEV42"' in html


def test_an_mturk_worker_is_asked_to_return_the_hit_and_nothing_is_posted(client, study):
    html = client.get(device_url(study, **MTURK_WORKER, **fields(**TOUCH))).content.decode()
    assert "return the HIT" in html
    assert "<form" not in html and "externalSubmit" not in html
    assert "DEV42" not in html


def test_a_link_rater_gets_the_message_alone(client, study):
    html = client.get(device_url(study, **fields(**TOUCH, device_refresh_ms=""))).content.decode()
    assert "This device cannot take the study" in html  # two problems
    assert 'data-check="pointer"' in html and 'data-check="refresh"' in html
    assert "DEV42" not in html and "Prolific" not in html and "HIT" not in html
    assert f'href="/s/{study.public_id}/"' in html  # check again: the refresh may be measured


def test_the_device_page_of_a_device_that_passes_goes_back_to_the_landing_page(client, study):
    response = client.get(device_url(study, **PROLIFIC, **fields()))
    assert response.status_code == 302
    assert (
        response["Location"] == f"/s/{study.public_id}/?PROLIFIC_PID=5f1a&STUDY_ID=s1&SESSION_ID=x9"
    )
    assert client.get(device_url(study))["Location"] == f"/s/{study.public_id}/"


def test_the_device_page_refuses_malformed_fields_in_words(client, study):
    response = client.get(device_url(study, **fields(device_refresh_ms="fast")))
    assert response.status_code == 400
    assert "device_refresh_ms must be a number" in response.content.decode()


def test_prolific_gets_the_device_code_as_incompatible_device():
    assert ("code_device", "INCOMPATIBLE_DEVICE") in CODE_TYPES
