"""A rater in Debian's Chromium: from the study link, through the practice round and the
task, to the completion code, pressing F and J. The stored timings must match the frames."""

import time

import numpy as np
import pytest

from experiments.models import Answer, RaterSession, Study
from experiments.rating.sessions import trial_current
from tests.raters import live_study_make

pytestmark = [pytest.mark.browser]

STATE = """() => {
  if (location.pathname.endsWith('/done')) return 'done';
  const panel = document.getElementById('panel');
  const button = document.getElementById('panel-button');
  if (panel && !panel.hidden && button && !button.hidden) return 'panel';
  const real = document.getElementById('answer-real');
  if (real && !real.disabled) return 'answer';
  return false;
}"""


def answered(session: RaterSession) -> int:
    return Answer.objects.filter(trial__session=session).count()


def wait_for_answers(session: RaterSession, count: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while answered(session) < count:
        assert time.monotonic() < deadline, f"answer {count} never reached the database"
        time.sleep(0.02)


def consent(page, url: str) -> RaterSession:
    page.goto(url)
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    page.wait_for_url("**/task")
    return RaterSession.objects.get()


def rate(page, session: RaterSession, decide, *, reload_after: int | None = None) -> str:
    """Answer with the keyboard until the finish page; decide(trial) -> says_real."""
    while True:
        state = page.wait_for_function(STATE, timeout=20_000).json_value()
        if state == "done":
            return page.inner_text("main")
        if state == "panel":
            page.keyboard.press("Space")
            page.wait_for_function("() => document.getElementById('panel').hidden", timeout=5_000)
            continue
        trial = trial_current(session)
        before = answered(session)
        page.keyboard.press("j" if decide(trial) else "f")
        wait_for_answers(session, before + 1)
        if reload_after is not None and before + 1 == reload_after:
            page.reload()


def test_a_rater_completes_a_short_hype_time_study_and_every_display_lasts_its_frames(
    live_server_url, page
):
    # A coarse staircase (one answer per step, 70 ms each way) so that 60 timed trials visit
    # exposures across the whole 100-1000 ms range.
    study = live_study_make(
        qualification_trials=4,
        time_blocks=1,
        time_trials_per_block=60,
        real=80,
        fakes_per_model=70,
        countdown_step_ms=100,
        feedback=Study.Feedback.NONE,
        staircase_run_length=1,
        staircase_step_down_ms=70,
        staircase_step_up_ms=70,
    )
    session = consent(page, f"{live_server_url}/s/{study.public_id}/")

    def decide(trial):
        if not trial.block.timed:
            return trial.is_real  # pass the practice round
        # Right on the way down to the floor, wrong on the way up to the ceiling.
        going_down = (trial.position // 14) % 2 == 0
        return trial.is_real if going_down else not trial.is_real

    text = rate(page, session, decide)
    session.refresh_from_db()
    assert session.status == RaterSession.Status.COMPLETED
    assert session.completion_code in text
    assert session.refresh_ms and 5 < session.refresh_ms < 50

    timed = list(
        Answer.objects.filter(trial__session=session, trial__block__timed=True)
        .select_related("trial")
        .order_by("trial__index")
    )
    assert len(timed) == 60
    requested = np.array([a.trial.requested_ms for a in timed], dtype=float)
    shown = np.array([a.shown_ms for a in timed], dtype=float)
    frames = np.array([a.trial.frames for a in timed], dtype=float)
    refresh = np.array([a.refresh_ms for a in timed], dtype=float)
    assert len(set(requested)) >= 10 and requested.min() <= 150 and requested.max() >= 900
    # Each display lasted its number of frames, within one refresh interval...
    assert np.all(np.abs(shown - frames * refresh) <= refresh), list(
        zip(shown, frames * refresh, strict=True)
    )
    # ...and so tracks the requested exposure to within half a frame plus that refresh.
    assert np.all(np.abs(shown - requested) <= 1.5 * refresh)
    assert np.corrcoef(shown, requested)[0, 1] > 0.995
    masks = np.array([a.mask_ms for a in timed], dtype=float)
    mask_frames = study.mask_count * round(study.mask_ms / session.refresh_ms)
    assert np.all(np.abs(masks - mask_frames * refresh) <= refresh)
    assert not any("timing_off" in a.flags for a in timed)


def test_a_rater_completes_a_hype_inf_study_and_a_reload_loses_nothing(live_server_url, page):
    study = live_study_make(
        method=Study.Method.INF,
        qualification_trials=4,
        inf_trials=12,
        real=20,
        fakes_per_model=20,
    )
    session = consent(page, f"{live_server_url}/s/{study.public_id}/")
    text = rate(page, session, lambda trial: trial.is_real, reload_after=9)
    session.refresh_from_db()
    assert session.status == RaterSession.Status.COMPLETED
    assert session.completion_code in text
    answers = Answer.objects.filter(trial__session=session)
    assert answers.count() == session.trials.count() == 16
    assert all(a.shown_ms is None for a in answers)
    assert "Thank you" in text
