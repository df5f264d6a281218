"""Raters from Prolific and MTurk in Chromium, against local stand-ins for the platforms' pages:
a Prolific participant lands on the completion URL with the study's code for their outcome,
only once every answer is stored; an MTurk worker takes the task inside a worker site's frame,
which sees a preview first and receives the finished assignment."""

import time
import urllib.parse

import pytest
from playwright.sync_api import Error as PlaywrightError

from experiments.models import Answer, RaterSession, Study
from experiments.rating.sessions import trial_current
from tests.browser.stand_ins import stand_in_serving
from tests.factories import session_make
from tests.raters import live_study_make

pytestmark = [pytest.mark.browser]

PROLIFIC = {"PROLIFIC_PID": "5f1e2d3c4b5a69788796a5b4", "STUDY_ID": "65aa11", "SESSION_ID": "s0042"}
# Where the page stands: still on the task, or gone (to the finish page, or the platform).
STATE = """() => {
  if (!location.pathname.endsWith('/task')) return 'left';
  const panel = document.getElementById('panel');
  const button = document.getElementById('panel-button');
  if (panel && !panel.hidden && button && !button.hidden) return 'panel';
  const real = document.getElementById('answer-real');
  if (real && !real.disabled) return 'answer';
  return false;
}"""


def small_inf_study(**fields) -> Study:
    return live_study_make(
        method=Study.Method.INF,
        qualification_trials=4,
        inf_trials=6,
        real=20,
        fakes_per_model=20,
        feedback=Study.Feedback.NONE,
        **fields,
    )


def answers_of(study: Study) -> int:
    return Answer.objects.filter(trial__session__study=study).count()


def rate(frame, page, session: RaterSession, decide) -> None:
    """Answer with the keyboard in `frame` (the page's own, or MTurk's iframe) until the task
    page is left; decide(trial) -> says_real."""
    while True:
        try:
            state = frame.wait_for_function(STATE, timeout=20_000).json_value()
        except PlaywrightError:
            return  # the frame navigated away while we looked: the task is over
        if state == "left":
            return
        if state == "panel":
            page.keyboard.press("Space")
            continue
        trial = trial_current(session)
        before = Answer.objects.filter(trial__session=session).count()
        page.keyboard.press("j" if decide(trial) else "f")
        deadline = time.monotonic() + 10
        while Answer.objects.filter(trial__session=session).count() == before:
            assert time.monotonic() < deadline, "the answer never reached the database"
            time.sleep(0.02)


def right(trial) -> bool:
    return trial.is_real


def wrong(trial) -> bool:
    return not trial.is_real


def prolific_link(live_server_url: str, study: Study) -> str:
    return f"{live_server_url}/s/{study.public_id}/?{urllib.parse.urlencode(PROLIFIC)}"


def consent(frame) -> None:
    frame.check("input[name=consent]")
    frame.click("button.primary[type=submit]")
    frame.wait_for_url("**/task")


@pytest.mark.parametrize(
    ("decide", "outcome", "code_field"),
    [(right, "completed", "code_completed"), (wrong, "screened out", "code_screened_out")],
)
def test_a_prolific_participant_lands_on_prolific_with_the_code_of_their_outcome(
    live_server_url, page, settings, decide, outcome, code_field
):
    study = small_inf_study()
    with stand_in_serving(on_request=lambda: answers_of(study)) as prolific:
        settings.HYPE_PROLIFIC_COMPLETE_URL = f"{prolific.url}/submissions/complete"
        page.goto(prolific_link(live_server_url, study))
        consent(page)
        session = RaterSession.objects.get()
        assert (session.source, session.external_id) == ("prolific", PROLIFIC["PROLIFIC_PID"])
        assert (session.platform_study_id, session.platform_session_id) == ("65aa11", "s0042")
        rate(page, page, session, decide)
        assert prolific.arrived.wait(15), f"never sent to Prolific ({outcome})"
    (received,) = prolific.received
    assert received.path == "/submissions/complete"
    assert received.query == {"cc": [getattr(study, code_field)]}
    session.refresh_from_db()
    # When the browser reached Prolific, every answer of the session was stored.
    stored = Answer.objects.filter(trial__session=session).count()
    assert received.seen == stored
    if outcome == "completed":
        assert stored == study.trials_per_rater
    else:
        assert session.status == RaterSession.Status.FAILED_QUALIFICATION
        assert stored == study.qualification_trials


def test_a_prolific_participant_who_arrives_when_the_study_is_full_gets_the_full_code(
    live_server_url, page, settings
):
    study = small_inf_study(raters_per_model=1)
    for model in study.models.all():
        session_make(study, model=model, status=RaterSession.Status.COMPLETED)
    with stand_in_serving() as prolific:
        settings.HYPE_PROLIFIC_COMPLETE_URL = f"{prolific.url}/submissions/complete"
        page.goto(prolific_link(live_server_url, study))
        assert prolific.arrived.wait(10)
        assert study.code_full in page.inner_text("body") or page.url.startswith(prolific.url)
    assert prolific.received[0].query == {"cc": [study.code_full]}
    assert RaterSession.objects.count() == 2  # the two who filled it, nobody new


def test_a_prolific_participant_who_declines_goes_back_with_the_no_consent_code(
    live_server_url, page, settings
):
    study = small_inf_study()
    with stand_in_serving() as prolific:
        settings.HYPE_PROLIFIC_COMPLETE_URL = f"{prolific.url}/submissions/complete"
        page.goto(prolific_link(live_server_url, study))
        page.click("button[name=decline]")
        assert prolific.arrived.wait(10)
    assert prolific.received[0].query == {"cc": [study.code_no_consent]}
    assert RaterSession.objects.count() == 0


def mturk_link(live_server_url: str, study: Study, **params) -> str:
    return f"{live_server_url}/s/{study.public_id}/?{urllib.parse.urlencode(params)}"


def hit_frame(page):
    page.wait_for_selector("#hit")
    return page.frame_locator("#hit"), next(f for f in page.frames if f != page.main_frame)


def test_mturks_preview_in_its_frame_shows_the_task_without_a_start_button_and_makes_no_session(
    live_server_url, page, settings
):
    study = small_inf_study()
    with stand_in_serving() as mturk:
        settings.HYPE_MTURK_WORKER_SITES = [mturk.url]
        src = mturk_link(
            live_server_url, study, assignmentId="ASSIGNMENT_ID_NOT_AVAILABLE", hitId="3HIT"
        )
        page.goto(mturk.frame_url(src))
        frame, _ = hit_frame(page)
        frame.locator("#preview").wait_for()
        assert "Accept the HIT to start" in frame.locator("#preview").inner_text()
        assert frame.locator("button").count() == 0 and frame.locator("form").count() == 0
        frame.locator(".example img").wait_for()
        page.screenshot(path="/tmp/hype-mturk-preview.png")
    assert RaterSession.objects.count() == 0


def test_an_mturk_worker_completes_the_task_in_the_frame_which_then_posts_the_assignment(
    live_server_url, page, settings
):
    study = small_inf_study()
    with stand_in_serving(on_request=lambda: answers_of(study)) as mturk:
        settings.HYPE_MTURK_WORKER_SITES = [mturk.url]
        src = mturk_link(
            live_server_url,
            study,
            workerId="A1WORKER",
            assignmentId="3ASSIGNMENT",
            hitId="3HIT",
            turkSubmitTo=mturk.url,
        )
        page.goto(mturk.frame_url(src))
        locator, frame = hit_frame(page)
        locator.locator("input[name=consent]").check()
        locator.locator("button.primary[type=submit]").click()
        frame.wait_for_url("**/task")
        locator.locator("body").click()  # the keys go to the focused frame
        session = RaterSession.objects.get()
        assert (session.source, session.external_id) == ("mturk", "A1WORKER")
        assert (session.platform_session_id, session.submit_to) == ("3ASSIGNMENT", mturk.url)
        rate(frame, page, session, right)
        assert mturk.arrived.wait(15), "the frame never posted the assignment"
    (received,) = mturk.received
    session.refresh_from_db()
    assert (received.method, received.path) == ("POST", "/mturk/externalSubmit")
    assert received.form["assignmentId"] == ["3ASSIGNMENT"]
    assert received.form["completion_code"] == [session.completion_code]
    assert received.seen == study.trials_per_rater == answers_of(study)


def test_a_turk_submit_to_on_another_host_is_refused_with_a_clear_page(
    live_server_url, page, settings
):
    study = small_inf_study()
    with stand_in_serving() as mturk:
        settings.HYPE_MTURK_WORKER_SITES = [mturk.url]
        src = mturk_link(
            live_server_url,
            study,
            workerId="A1WORKER",
            assignmentId="3ASSIGNMENT",
            hitId="3HIT",
            turkSubmitTo="http://attacker.example",
        )
        page.goto(mturk.frame_url(src))
        frame, _ = hit_frame(page)
        assert "not one of MTurk's worker sites" in frame.locator("#refused").inner_text()
    assert RaterSession.objects.count() == 0


def test_only_the_worker_sites_may_frame_the_rater_pages(live_server_url, page, settings):
    study = small_inf_study()
    with stand_in_serving() as mturk, stand_in_serving() as other:
        settings.HYPE_MTURK_WORKER_SITES = [mturk.url]
        link = f"{live_server_url}/s/{study.public_id}/"
        page.goto(other.frame_url(link))
        page.wait_for_selector("#hit")
        time.sleep(1)  # give a refused frame the time a page would need to show
        framed = next(f for f in page.frames if f != page.main_frame)
        blocked = "Real or fake?" not in (framed.content() or "")
        assert blocked, "another origin could frame the rater page"
        page.goto(mturk.frame_url(link))
        frame, _ = hit_frame(page)
        assert "Real or fake?" in frame.locator("h1").inner_text()
