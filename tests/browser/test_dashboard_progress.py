"""The researcher's live progress in a browser: they log in, watch the counters of the study
page rise while simulated raters answer (no reload), and download the trials CSV, which has
one row per answered trial."""

import csv
import re
import threading

import pytest
from django.db import connection

from experiments.models import Answer, RaterSession
from experiments.simulation.client import simulation_run
from experiments.simulation.plan import plan_make
from tests.factories import user_make
from tests.raters import live_study_make

pytestmark = [pytest.mark.browser]

PASSWORD = "pw-for-tests-1"  # tests.factories.user_make's
RATERS = 3


def simulate_in_thread(study, base_url: str) -> tuple[threading.Thread, list]:
    """Simulated raters answer over the live server from a thread of their own: Playwright
    keeps an event loop marked as running in the test's thread."""
    outcome: list = []

    def run():
        try:
            plan = plan_make(
                study,
                base_url=base_url,
                raters=RATERS,
                concurrency=RATERS,
                # Slow enough that the page shows several states on the way.
                think_ms=120,
                pace=None,
                qualification_accuracy=1.0,
            )
            outcome.append(simulation_run(plan=plan))
        except Exception as error:  # reported in the test's thread
            outcome.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="simulated-raters")
    thread.start()
    return thread, outcome


def counter(page, name: str) -> int | None:
    text = page.text_content(f'#progress-panel dl [data-progress="{name}"]').strip()
    return int(text) if text.isdigit() else None


def log_in_to_study_page(page, base_url: str, study) -> None:
    study_path = f"/studies/{study.public_id}/"
    page.goto(f"{base_url}/accounts/login/?next={study_path}")
    page.fill("input[name=username]", study.owner.username)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{study_path}")


def small_study():
    return live_study_make(
        owner=user_make("ada"),
        qualification_trials=4,
        time_blocks=2,
        time_trials_per_block=6,
        real=40,
        fakes_per_model=40,
    )


def test_the_researcher_watches_progress_rise_live_and_downloads_the_trials_csv(
    live_server_url, page
):
    study = small_study()
    log_in_to_study_page(page, live_server_url, study)
    page.wait_for_selector('#progress-live[data-live-state="live"]')
    assert counter(page, "answers") == 0 and counter(page, "completed") == 0
    # Set on this document only: still there at the end means the page never reloaded.
    page.evaluate("window.hypeSameDocument = true")

    thread, outcome = simulate_in_thread(study, live_server_url)
    seen = []
    while thread.is_alive():
        value = counter(page, "answers")
        if value is not None and (not seen or value != seen[-1]):
            seen.append(value)
        page.wait_for_timeout(100)
    thread.join()
    report = outcome[0]
    assert not isinstance(report, Exception), report
    assert [r.outcome for r in report.raters] == ["completed"] * RATERS

    stored = Answer.objects.filter(trial__session__study=study).count()
    assert stored == RATERS * (4 + 2 * 6)
    # Every state the page showed was a rise, through several values, up to the last answer.
    page.wait_for_function(
        f"document.getElementById('progress-answers').textContent.trim() === '{stored}'"
    )
    page.wait_for_function(
        f"document.getElementById('progress-completed').textContent.trim() === '{RATERS}'"
    )
    assert seen == sorted(seen) and len(seen) >= 3, seen
    assert seen[0] < stored
    assert page.evaluate("window.hypeSameDocument") is True
    assert RaterSession.objects.filter(study=study, status="completed").count() == RATERS

    with page.expect_download() as download_info:
        page.click('a[href$="/export/trials.csv"]')
    path = download_info.value.path()
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == stored
    assert {row["rater"] for row in rows} == set(
        RaterSession.objects.filter(study=study).values_list("public_id", flat=True)
    )


def test_after_a_dropped_connection_the_panel_says_so_reconnects_and_catches_up(
    live_server_url, page
):
    study = small_study()
    # Between the page and the server, so the test can cut the connection.
    connections = []

    def relay(ws):
        ws.connect_to_server()
        connections.append(ws)

    page.route_web_socket(re.compile(r".*/progress/$"), relay)
    log_in_to_study_page(page, live_server_url, study)
    live = page.locator("#progress-live")
    page.wait_for_selector('#progress-live[data-live-state="live"]')
    assert live.inner_text() == "live"

    connections[0].close(code=1011, reason="test")
    page.wait_for_selector('#progress-live[data-live-state="reconnecting"]')
    assert live.inner_text() == "reconnecting…"
    thread, outcome = simulate_in_thread(study, live_server_url)
    thread.join()
    assert not isinstance(outcome[0], Exception), outcome[0]

    page.wait_for_selector('#progress-live[data-live-state="live"]', timeout=15_000)
    assert len(connections) >= 2
    stored = Answer.objects.filter(trial__session__study=study).count()
    page.wait_for_function(
        f"document.getElementById('progress-answers').textContent.trim() === '{stored}'"
    )
