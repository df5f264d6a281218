"""HYPE_time's psychometric fit on the study page and a rater's page in a browser, with
screenshots at /tmp/fit_study.png and /tmp/fit_rater.png so that people can look at them."""

from pathlib import Path

import pytest

from experiments.models import RaterSession, Study
from tests.browser.test_dashboard_pages import log_in
from tests.bulk import bulk_study_make
from tests.factories import user_make

pytestmark = [pytest.mark.browser]

STUDY_SHOT = Path("/tmp/fit_study.png")
RATER_SHOT = Path("/tmp/fit_rater.png")


def test_the_study_page_shows_the_fit_next_to_the_mode_and_names_the_headline_and_intervals(
    page, live_server_url
):
    owner = user_make("fitter")
    study = bulk_study_make(
        owner=owner, models=3, raters_per_model=6, trials_per_rater=300, blocks=2, seed=11
    )
    Study.objects.filter(pk=study.pk).update(
        name="Faces, fitted", time_score="fit", interval_method="bca"
    )
    log_in(page, live_server_url, "fitter", next_path=f"/studies/{study.public_id}/")
    page.locator("#results").wait_for()
    assert "modal" in page.locator("#results thead").inner_text()
    table = page.locator("#fit-results")
    header = table.locator("thead").inner_text()
    assert "fit\nthe headline" in header and "Censored low" in header
    assert table.locator("tbody tr").count() == 3
    note = page.locator("#time-score-note").inner_text()
    assert "Headline: the psychometric fit" in note
    assert "BCa bootstrap" in page.locator("#statistics").inner_text()
    page.locator("#results").evaluate("(el) => el.closest('section').scrollIntoView()")
    page.locator("#results").locator("xpath=ancestor::section[1]").screenshot(path=str(STUDY_SHOT))
    assert STUDY_SHOT.stat().st_size > 0

    rater = RaterSession.objects.filter(study=study).order_by("id").first()
    page.goto(f"{live_server_url}/studies/{study.public_id}/raters/{rater.public_id}/")
    fit = page.locator("#rater-fit")
    fit.wait_for()
    assert " ms" in fit.inner_text() or "censored" in fit.inner_text()
    assert "headline" in fit.inner_text()
    page.locator("#rater-facts").screenshot(path=str(RATER_SHOT))
    assert RATER_SHOT.stat().st_size > 0
