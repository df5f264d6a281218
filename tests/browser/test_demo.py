"""The demo in a browser: a rater opens the demo's link and answers trials, and the
researcher logs in and sees both demo models scored, the pixel-noise sampler clearly lower."""

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from experiments.models import Answer, RaterSession, Study
from experiments.services.scores import study_results

pytestmark = [pytest.mark.browser, pytest.mark.embedded]

PASSWORD = "hype-demo-password"


def load_demo() -> str:
    # In a thread of its own: Playwright keeps an event loop marked as running in this one,
    # and load_demo runs its simulated raters with asyncio.
    out, failures = StringIO(), []

    def run():
        try:
            call_command(
                "ensure_researcher",
                username="researcher",
                password=PASSWORD,
                staff=True,
                stdout=StringIO(),
            )
            call_command("load_demo", images=80, raters=2, stdout=out)
        except Exception as error:  # reported below, in the test's thread
            failures.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(300)
    assert not thread.is_alive() and not failures, failures
    return out.getvalue()


def test_a_rater_takes_the_demo_and_the_researcher_sees_both_models_scored(live_server_url, page):
    output = load_demo()
    study = Study.objects.get(method=Study.Method.INF)
    assert f"/s/{study.public_id}/" in output

    page.goto(f"{live_server_url}/s/{study.public_id}/")
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    page.wait_for_url("**/task")
    page.wait_for_selector("#panel:not([hidden]) >> text=Practice round")
    page.click("#panel-button")
    rater = RaterSession.objects.filter(study=study, external_id__startswith="link-").get()
    for n in range(1, 4):
        page.wait_for_selector("#prompt.is-open", timeout=15_000)
        page.screenshot(path=f"/tmp/shots/demo-trial-{n}.png")
        page.keyboard.press("j" if n % 2 else "f")
        page.wait_for_function(
            f"document.querySelector('#progress-count').textContent.startsWith('{n} /')"
        )
    assert Answer.objects.filter(trial__session=rater).count() == 3

    page.goto(f"{live_server_url}/accounts/login/?next=/studies/{study.public_id}/")
    page.fill("input[name=username]", "researcher")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/studies/{study.public_id}/")
    page.screenshot(path="/tmp/shots/demo-results.png", full_page=True)
    table = page.inner_text("#results")
    scores = {m.name: m.score for m in study_results(study).models}
    for name, score in scores.items():
        assert name in table and f"{100 * score.estimate:.1f}%" in table
    assert scores["pixel-noise"].high < scores["gmm-sampler"].low
