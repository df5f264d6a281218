"""Excluding a rater in Chromium, at 1280 wide, as the researcher does it: from the rater's page
with a reason, then the study page with and without exclusions and the raters page, then
undoing it."""

from pathlib import Path

import pytest

from experiments.models import RaterSession, Study
from tests.browser.test_dashboard_pages import log_in
from tests.factories import answered_session_make, study_make, user_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots")
REASON = "Answered every image wrong in 40 seconds."


def untimed(wrong: int) -> list[tuple[None, bool, bool]]:
    """Two fakes and two reals, the first `wrong` of them answered wrong."""
    truths = [False, False, True, True]
    return [(None, is_real, n >= wrong) for n, is_real in enumerate(truths)]


def test_a_researcher_excludes_a_rater_with_a_reason_sees_both_results_and_undoes_it(
    live_server_url, page
):
    SHOTS.mkdir(exist_ok=True)
    ada = user_make("ada")
    study = study_make(owner=ada, models=("stylegan",), method=Study.Method.INF, name="Faces")
    model = study.models.get()
    answered_session_make(study, model, [untimed(1)])
    answered_session_make(study, model, [untimed(3)])
    careless = answered_session_make(study, model, [untimed(4)])
    rater_url = f"/studies/{study.public_id}/raters/{careless.public_id}/"

    log_in(page, live_server_url, "ada", next_path=rater_url)
    page.fill("#exclude-reason", REASON)
    page.screenshot(path=str(SHOTS / "rater-exclude.png"), full_page=True)
    page.click("#exclude-form button[type=submit]")
    page.wait_for_selector("#undo-form")
    careless.refresh_from_db()
    assert (careless.status, careless.excluded_reason) == (RaterSession.Status.EXCLUDED, REASON)
    assert "Excluded from the scores by ada" in page.inner_text("#exclusion-state")
    assert page.inner_text("#exclusion-reason") == REASON
    page.screenshot(path=str(SHOTS / "rater-excluded.png"), full_page=True)

    page.goto(f"{live_server_url}/studies/{study.public_id}/")
    applied = page.inner_text("#results")
    assert "(1 excluded)" in applied and "50.0%" in applied
    assert "66.7%" in page.inner_text("#results-without-exclusions")
    page.locator("#results").screenshot(path=str(SHOTS / "study-results-excluded.png"))

    page.goto(f"{live_server_url}/studies/{study.public_id}/raters/")
    row = page.inner_text(f'tr[data-rater="{careless.public_id}"]')
    assert "Excluded" in row and f"by ada: {REASON}" in row
    page.screenshot(path=str(SHOTS / "raters-excluded.png"), full_page=True)

    page.goto(f"{live_server_url}{rater_url}")
    page.click("#undo-form button[type=submit]")
    page.wait_for_selector("#exclude-form")
    careless.refresh_from_db()
    assert careless.status == RaterSession.Status.COMPLETED
    page.goto(f"{live_server_url}/studies/{study.public_id}/")
    assert page.locator("#results-without-exclusions").count() == 0
    assert "66.7%" in page.inner_text("#results")
