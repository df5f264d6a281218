"""A rater's browser survives the network: a dropped socket, a server that refuses for a
while, and a second tab. Every answer reaches the database exactly once."""

import pytest

from experiments.models import Answer
from tests.raters import live_study_make

pytestmark = [pytest.mark.browser]


def start(page, url: str, study) -> None:
    page.goto(f"{url}/s/{study.public_id}/")
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    page.wait_for_url("**/task")
    page.wait_for_selector("#panel:not([hidden]) >> text=Block 1 of 1")
    page.keyboard.press("Space")


def prompt_open(page) -> None:
    page.wait_for_selector("#prompt.is-open", timeout=15_000)


def progress_reaches(page, done: int) -> None:
    page.wait_for_function(
        f"document.querySelector('#progress-count').textContent.startsWith('{done} /')",
        timeout=20_000,
    )


def answers(study) -> int:
    return Answer.objects.filter(trial__session__study=study).count()


def test_an_answer_given_while_the_server_is_unreachable_arrives_once_it_is_back(
    live_server_url, page
):
    study = live_study_make(
        qualification_trials=0,
        time_blocks=1,
        time_trials_per_block=6,
        countdown_step_ms=100,
        real=10,
        fakes_per_model=10,
    )
    routes = []
    refuse = {"on": False}

    def route(ws):
        if refuse["on"]:
            ws.close(code=1011)
            return
        ws.connect_to_server()
        routes.append(ws)

    page.route_web_socket("**/ws/rate/**", route)
    start(page, live_server_url, study)
    prompt_open(page)
    refuse["on"] = True
    routes[-1].close(code=4000)  # the connection drops and the server refuses for a while
    page.keyboard.press("f")
    page.wait_for_selector("#connection:not([hidden])")
    assert "Reconnecting" in page.inner_text("#connection")
    page.wait_for_timeout(800)
    assert answers(study) == 0
    refuse["on"] = False
    progress_reaches(page, 1)
    assert answers(study) == 1
    prompt_open(page)
    page.keyboard.press("j")
    progress_reaches(page, 2)
    assert answers(study) == 2


def test_a_second_tab_takes_the_session_over_and_the_first_can_take_it_back(live_server_url, page):
    study = live_study_make(
        qualification_trials=0,
        time_blocks=1,
        time_trials_per_block=6,
        countdown_step_ms=100,
        real=10,
        fakes_per_model=10,
    )
    start(page, live_server_url, study)
    prompt_open(page)
    page.keyboard.press("f")
    progress_reaches(page, 1)

    other = page.context.new_page()
    other.goto(page.url)
    page.wait_for_selector("#panel:not([hidden]) >> text=another window", timeout=10_000)
    other.wait_for_selector("#panel:not([hidden]), #prompt.is-open", timeout=15_000)
    page.click("#panel-button")  # "Continue here"
    other.wait_for_selector("#panel:not([hidden]) >> text=another window", timeout=10_000)
    if page.is_visible("#panel:not([hidden])"):
        page.keyboard.press("Space")
    prompt_open(page)
    page.keyboard.press("j")
    progress_reaches(page, 2)
    assert answers(study) == 2
