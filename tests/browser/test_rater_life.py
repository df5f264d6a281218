"""The pages of a rater's life in Chromium, at 1280 wide: the researcher's groups page and the
study page's group section; a rater turned away because their id started in another browser,
because they took part in a related study, and a rater back after the idle limit."""

from pathlib import Path

import pytest

from experiments.models import RaterSession, Study, StudyGroup
from tests.browser.test_dashboard_pages import log_in
from tests.factories import session_make, user_make
from tests.raters import live_study_make, time_passes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots")
PID = "5f1e2d3c4b5a69788796a5b4"


def small(owner, name, **fields):
    return live_study_make(
        owner=owner,
        name=name,
        method=Study.Method.INF,
        qualification_trials=4,
        inf_trials=6,
        real=30,
        fakes_per_model=30,
        **fields,
    )


def consent(page, base_url, study, query=""):
    page.goto(f"{base_url}/s/{study.public_id}/{query}")
    page.check("input[name=consent]")
    page.click("button[type=submit].primary")


def test_the_groups_page_and_the_study_pages_group_section(live_server_url, page):
    SHOTS.mkdir(exist_ok=True)
    ada = user_make("ada")
    faces = small(ada, "FFHQ faces, HYPE time")
    bedrooms = small(ada, "LSUN bedrooms")
    pool = StudyGroup.objects.create(
        owner=ada, name="2026 retainer", kind=StudyGroup.Kind.POOL, qualification_days=14
    )
    StudyGroup.objects.create(owner=ada, name="NeurIPS paper")
    Study.objects.filter(pk__in=[faces.pk, bedrooms.pk]).update(group=pool)
    for n in range(4):
        session_make(faces, external_id=f"w{n}", qualified_at=faces.created_at)

    log_in(page, live_server_url, "ada", next_path="/groups/")
    assert page.inner_text(f"#pool-size-{pool.pk}") == "4"
    assert "FFHQ faces" in page.inner_text(f"#group-{pool.pk}")
    page.fill("#id_name", "Ablations")
    page.screenshot(path=str(SHOTS / "groups.png"), full_page=True)
    page.click("#new-group button[type=submit]")
    page.wait_for_url("**/groups/#group-*")
    assert StudyGroup.objects.filter(owner=ada, name="Ablations").exists()

    page.goto(f"{live_server_url}/studies/{bedrooms.public_id}/")
    line = page.inner_text("#group-line")
    assert "2026 retainer" in line and "4 raters in the pool" in line
    page.locator("#group").screenshot(path=str(SHOTS / "study-group.png"))
    page.select_option("#group-form select", label="NeurIPS paper (exclusive)")
    page.click("#group-form button")
    page.wait_for_url("**#group")
    assert "exclusive" in page.inner_text("#group-line")


def test_a_rater_turned_away_and_a_rater_back_too_late(live_server_url, chromium):
    SHOTS.mkdir(exist_ok=True)
    owner = user_make()
    group = StudyGroup.objects.create(owner=owner, name="Paper")
    first, second = small(owner, "First"), small(owner, "Second")
    Study.objects.filter(pk__in=[first.pk, second.pk]).update(group=group)
    prolific = f"?PROLIFIC_PID={PID}&STUDY_ID=abc&SESSION_ID=s1"

    def fresh_page():
        context = chromium.new_context(viewport={"width": 1280, "height": 800})
        return context, context.new_page()

    context, page = fresh_page()
    consent(page, live_server_url, first, prolific)
    page.wait_for_url("**/task")
    # Someone else with the same PROLIFIC_PID but not its session id.
    other, intruder = fresh_page()
    intruder.goto(f"{live_server_url}/s/{first.public_id}/?PROLIFIC_PID={PID}")
    text = intruder.inner_text("main")
    assert "already started this study in another browser" in text
    assert intruder.locator("input[name=consent]").count() == 0
    intruder.screenshot(path=str(SHOTS / "rater-started-elsewhere.png"))
    # The same participant in a related study of the exclusive group.
    intruder.goto(f"{live_server_url}/s/{second.public_id}/{prolific}")
    text = intruder.inner_text("main")
    assert "already taken part in a related study" in text and "return your submission" in text
    intruder.screenshot(path=str(SHOTS / "rater-related-study.png"))
    other.close()

    # The first rater walks away; after the idle limit the landing page says what happened.
    time_passes(first, minutes=first.idle_minutes + 1)
    page.goto(f"{live_server_url}/s/{first.public_id}/{prolific}")
    text = page.inner_text("main")
    assert "Your session has ended" in text and "no answer for 30 minutes" in text
    assert "return your submission on Prolific" in text
    page.screenshot(path=str(SHOTS / "rater-abandoned.png"))
    assert RaterSession.objects.get(study=first).status == RaterSession.Status.ABANDONED
    context.close()
