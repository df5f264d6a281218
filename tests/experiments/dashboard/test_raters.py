"""The raters' pages of a study: the owner and a colleague with read access see them, an
outsider gets 404 and an anonymous visitor the login page; they show each rater's score,
qualification, flags and display, the staircase trace, and never the rater's worker id."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments.models import Answer, Block, RaterSession, Study
from hype.science.thresholds import rater_time_score
from tests.factories import answered_session_make, session_make, study_make, user_make

pytestmark = pytest.mark.django_db

Status = RaterSession.Status
WORKER_ID = "5f1e0c0ffee0PROLIFIC"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
# Two task blocks: (requested ms, is real, correct).
BLOCK_1 = [(500, True, True), (500, False, True), (500, True, True), (470, False, False)]
BLOCK_2 = [(500, True, True), (500, True, False), (510, False, True), (510, True, True)]


@pytest.fixture
def owner():
    return user_make("ada")


@pytest.fixture
def colleague():
    return user_make("ben")


@pytest.fixture
def outsider():
    return user_make("eve")


@pytest.fixture
def study(owner, colleague):
    study = study_make(owner=owner, models=("stylegan", "progan"), name="FFHQ faces")
    study.viewers.add(colleague)
    return study


@pytest.fixture
def done(study):
    """A rater who finished, with a measured display and a few flagged answers."""
    session = answered_session_make(study, study.models.get(name="stylegan"), [BLOCK_1, BLOCK_2])
    RaterSession.objects.filter(pk=session.pk).update(
        external_id=WORKER_ID,
        source=RaterSession.Source.PROLIFIC,
        refresh_ms=1000 / 60,
        screen_width=1920,
        screen_height=1080,
        device_pixel_ratio=2.0,
        user_agent=CHROME,
        qualification_correct=88,
        qualification_total=100,
    )
    answers = Answer.objects.filter(trial__session=session)
    answers.filter(trial__index__in=[1, 2]).update(flags=["timing_off"], refresh_ms=1000 / 60)
    answers.filter(trial__index=5).update(flags=["page_hidden", "timing_off"], page_hidden=True)
    session.refresh_from_db()
    return session


@pytest.fixture
def failed(study):
    return session_make(
        study,
        model=None,
        status=Status.FAILED_QUALIFICATION,
        qualification_correct=40,
        qualification_total=100,
    )


def list_url(study):
    return f"/studies/{study.public_id}/raters/"


def rater_url(study, session):
    return f"/studies/{study.public_id}/raters/{session.public_id}/"


def trace_data(html: str) -> dict:
    match = re.search(r'<script id="trace-data" type="application/json">(.*?)</script>', html)
    assert match, "the page hands the trace to the chart"
    return json.loads(match.group(1))


# --- Who sees what ---------------------------------------------------------------------------


def test_the_owner_and_a_colleague_see_the_list_and_a_raters_page(
    client, owner, colleague, study, done
):
    for user in (owner, colleague):
        client.force_login(user)
        assert client.get(list_url(study)).status_code == 200
        assert client.get(rater_url(study, done)).status_code == 200


def test_an_outsider_gets_404_on_every_raters_page(client, outsider, study, done):
    client.force_login(outsider)
    assert client.get(list_url(study)).status_code == 404
    assert client.get(rater_url(study, done)).status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(client, study, done):
    for url in (list_url(study), rater_url(study, done)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_a_rater_of_another_study_is_not_found_even_for_the_owner_of_both(client, owner, study):
    other = study_make(owner=owner, models=("m",))
    stranger = session_make(other)
    client.force_login(owner)
    assert client.get(rater_url(study, stranger)).status_code == 404
    assert client.get(rater_url(other, stranger)).status_code == 200
    assert client.get(f"/studies/{study.public_id}/raters/no-such-rater/").status_code == 404


def test_the_colleague_cannot_change_anything_through_these_pages(client, colleague, study, done):
    client.force_login(colleague)
    for url in (list_url(study), rater_url(study, done)):
        assert client.post(url, {"status": "excluded"}).status_code == 405
    done.refresh_from_db()
    assert done.status == Status.COMPLETED


def test_the_workers_external_id_is_never_shown(client, owner, study, done, failed):
    client.force_login(owner)
    for url in (list_url(study), rater_url(study, done)):
        assert WORKER_ID not in client.get(url).content.decode()


# --- The list --------------------------------------------------------------------------------


def test_the_list_shows_each_raters_model_status_qualification_score_and_flags(
    client, owner, study, done, failed
):
    client.force_login(owner)
    html = client.get(list_url(study)).content.decode()
    assert done.public_id in html and failed.public_id in html
    assert rater_url(study, done) in html
    row = html[html.index(f'data-rater="{done.public_id}"') :].split("</tr>")[0]
    score = rater_time_score([[500, 500, 500, 470], [500, 500, 510, 510]])
    assert f"{score:.1f} ms" in row
    assert "stylegan" in row and "Completed" in row and "Prolific" in row
    assert ">passed 88/100<" in row
    assert 'title="16.7 ms (60 Hz)">60 Hz<' in row
    assert "<strong>3</strong> / 8" in row and "(1 hidden)" in row
    failed_row = html[html.index(f'data-rater="{failed.public_id}"') :].split("</tr>")[0]
    assert ">failed 40/100<" in failed_row and "Failed qualification" in failed_row


def test_the_list_takes_as_many_queries_for_many_raters_as_for_one(client, owner, study, done):
    client.force_login(owner)
    with CaptureQueriesContext(connection) as one:
        client.get(list_url(study))
    model = study.models.get(name="progan")
    for _ in range(5):
        answered_session_make(study, model, [BLOCK_1])
    with CaptureQueriesContext(connection) as six:
        client.get(list_url(study))
    assert len(one) == len(six)


# --- One rater -------------------------------------------------------------------------------


def test_a_raters_page_hands_the_staircase_trace_of_each_block_to_the_chart(
    client, owner, study, done
):
    client.force_login(owner)
    html = client.get(rater_url(study, done)).content.decode()
    data = trace_data(html)
    assert (data["floor"], data["ceiling"]) == (100, 1000)
    first, second = data["blocks"]
    assert first["title"] == "Task block 1"
    assert first["trace"] == [[1, 500, True], [2, 500, True], [3, 500, True], [4, 470, False]]
    assert first["threshold"] == 500.0
    assert second["trace"] == [[1, 500, True], [2, 500, False], [3, 510, True], [4, 510, True]]
    assert second["threshold"] == 505.0  # a tie: the mean of the tied values
    for block in data["blocks"]:
        assert f'<canvas id="{block["id"]}"' in html
    assert "vendor/chart.js-4.6.1.min.js" in html and "js/staircase_trace.js" in html


def test_a_raters_page_shows_qualification_flags_and_display(client, owner, study, done):
    client.force_login(owner)
    html = client.get(rater_url(study, done)).content.decode()
    assert "passed 88/100 (88%)" in html
    score = rater_time_score([[500, 500, 500, 470], [500, 500, 510, 510]])
    assert f'id="rater-score">{score:.1f} ms' in html
    assert "<strong>3</strong> of 8 answered trials flagged" in html
    assert "lost visibility during <strong>1</strong> of them" in html
    assert '<code>timing_off</code></td><td class="num">3</td>' in html
    assert '<code>page_hidden</code></td><td class="num">1</td>' in html
    assert "16.7 ms (60 Hz)" in html
    assert "1920 × 1080 at 2× pixel ratio" in html
    assert "Chrome 126 on Linux" in html


def test_a_rater_who_failed_the_qualification_has_no_trace_and_says_why(
    client, owner, study, failed
):
    client.force_login(owner)
    html = client.get(rater_url(study, failed)).content.decode()
    assert "failed 40/100 (40%)" in html
    assert "did not pass the qualification" in html
    assert "trace-data" not in html and "chart.js" not in html


def test_a_hype_inf_rater_gets_an_accuracy_summary_instead_of_a_trace(client, owner):
    study = study_make(owner=owner, method=Study.Method.INF, models=("m",))
    untimed = [(None, True, True), (None, True, False), (None, False, True), (None, False, False)]
    session = answered_session_make(study, study.models.get(), [untimed])
    client.force_login(owner)
    html = client.get(rater_url(study, session)).content.decode()
    assert "<h2>Accuracy</h2>" in html and "trace-data" not in html
    assert 'id="rater-score">50.0%' in html
    assert "50% (1/2)" in html  # fakes called real, and reals called fake
    assert "None of the 4 answered trials is flagged" in html
    list_html = client.get(list_url(study)).content.decode()
    assert "Error rate" in list_html and "50.0%" in list_html


# --- Flags and exclusions --------------------------------------------------------------------


def exclusion_url(study, session):
    return f"/studies/{study.public_id}/raters/{session.public_id}/exclusion"


def test_the_list_sums_up_each_raters_flags(client, owner, study, done):
    client.force_login(owner)
    html = client.get(list_url(study)).content.decode()
    row = html[html.index(f'data-rater="{done.public_id}"') :].split("</tr>")[0]
    assert "timing_off 3 · page_hidden 1" in row


def test_the_owner_excludes_a_rater_with_a_reason_and_sees_it_everywhere(
    client, owner, study, done
):
    client.force_login(owner)
    response = client.post(
        exclusion_url(study, done), {"action": "exclude", "reason": "Two raters, one keyboard."}
    )
    assert response.status_code == 302
    assert response["Location"] == rater_url(study, done) + "#exclusion"
    done.refresh_from_db()
    assert (done.status, done.excluded_by, done.excluded_reason) == (
        Status.EXCLUDED,
        "ada",
        "Two raters, one keyboard.",
    )
    page = client.get(rater_url(study, done)).content.decode()
    assert "Excluded from the scores" in page and "Two raters, one keyboard." in page
    assert 'id="undo-form"' in page and 'id="exclude-form"' not in page
    row = client.get(list_url(study)).content.decode()
    row = row[row.index(f'data-rater="{done.public_id}"') :].split("</tr>")[0]
    assert "Excluded" in row and "by ada: Two raters, one keyboard." in row
    # Undone: counted again, and the page says it was undone.
    client.post(exclusion_url(study, done), {"action": "undo"})
    done.refresh_from_db()
    assert done.status == Status.COMPLETED and done.exclusion_undone_at is not None
    page = client.get(rater_url(study, done)).content.decode()
    assert "was undone on" in page and 'id="exclude-form"' in page


def test_excluding_without_a_reason_says_so_and_changes_nothing(client, owner, study, done):
    client.force_login(owner)
    response = client.post(
        exclusion_url(study, done), {"action": "exclude", "reason": "  "}, follow=True
    )
    assert "Give a reason for excluding this rater" in response.content.decode()
    done.refresh_from_db()
    assert done.status == Status.COMPLETED


def test_a_colleague_sees_the_exclusion_but_no_form_and_cannot_post(
    client, owner, colleague, study, done
):
    client.force_login(colleague)
    page = client.get(rater_url(study, done)).content.decode()
    assert 'id="exclusion"' in page and 'id="exclude-form"' not in page
    assert 'id="rules-form"' not in client.get(list_url(study)).content.decode()
    assert (
        client.post(exclusion_url(study, done), {"action": "exclude", "reason": "x"}).status_code
        == 403
    )
    done.refresh_from_db()
    assert done.status == Status.COMPLETED


def test_a_bad_exclusion_action_is_a_bad_request(client, owner, study, done):
    client.force_login(owner)
    assert client.post(exclusion_url(study, done), {"action": "delete"}).status_code == 400


def test_the_rules_form_saves_the_rules_applies_them_and_says_how_many_were_excluded(
    client, owner, study, done
):
    # done's answers: 3 of 8 with timing_off (in timed blocks), 1 hidden.
    Block.objects.filter(session=done).update(timed=True)
    client.force_login(owner)
    page = client.get(list_url(study)).content.decode()
    assert 'id="rules-form"' in page and "None: no rater is excluded automatically" in page
    response = client.post(
        f"/studies/{study.public_id}/raters/rules",
        {"exclude_timing_share": "0.25", "exclude_same_key_streak": ""},
        follow=True,
    )
    html = response.content.decode()
    assert "1 newly excluded" in html and "(1 checked)" in html
    study.refresh_from_db()
    assert (study.exclude_timing_share, study.exclude_same_key_streak) == (0.25, None)
    done.refresh_from_db()
    assert done.status == Status.EXCLUDED and done.excluded_by == "rule"
    assert "timing off in more than 25% of timed answers" in html
    # The study page states the rule and shows both results.
    study_page = client.get(f"/studies/{study.public_id}/").content.decode()
    assert 'id="exclusion-rules"' in study_page and "timing off in more than 25%" in study_page


def test_a_bad_rule_is_refused_with_what_is_wrong(client, owner, study, done):
    client.force_login(owner)
    response = client.post(
        f"/studies/{study.public_id}/raters/rules", {"exclude_hidden_share": "2"}, follow=True
    )
    assert "The rules were not changed." in response.content.decode()
    study.refresh_from_db()
    assert study.exclude_hidden_share is None
