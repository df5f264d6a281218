"""A study's payments page, its downloads and the cost on the study page: the owner and staff
see them, a colleague with read access gets 403 (worker ids are personal data), an outsider
404 and an anonymous visitor the login page; the amounts are the hand-worked ones."""

import re

import pytest

from experiments.models import Payment, RaterSession
from experiments.services.exports.payments import PAYMENT_DOWNLOAD_KINDS
from tests.experiments.services.test_payments import (
    MTURK_4,
    PROLIFIC_1,
    PROLIFIC_2,
    hand_worked_study,
    pay_record,
    rater_make,
)
from tests.factories import image_make, session_make, study_make, user_make

pytestmark = pytest.mark.django_db

Status = RaterSession.Status


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
def staff():
    return user_make("sam", is_staff=True)


@pytest.fixture
def study(owner, colleague):
    study = hand_worked_study(owner)
    study.viewers.add(colleague)
    return study


def page_url(study):
    return f"/studies/{study.public_id}/payments/"


def download_url(study, kind):
    return f"/studies/{study.public_id}/payments/{kind}"


def all_urls(study):
    return [page_url(study), *(download_url(study, kind) for kind in PAYMENT_DOWNLOAD_KINDS)]


def page_of(client, user, path):
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200, path
    return re.sub(r"\s+", " ", response.content.decode())


def row_of(page, worker):
    match = re.search(
        rf"<tr data-session=\"[^\"]+\">(?:(?!</tr>).)*?{re.escape(worker)}.*?</tr>", page
    )
    assert match, worker
    return re.sub(r"<[^>]+>", "|", match.group(0))


def cells(row):
    return [c.strip() for c in row.split("|") if c.strip()]


# --- Who sees what ---------------------------------------------------------------------------


def test_the_owner_and_staff_see_the_page_and_every_download(client, owner, staff, study):
    for user in (owner, staff):
        client.force_login(user)
        for url in all_urls(study):
            assert client.get(url).status_code == 200, (user.username, url)


def test_a_colleague_with_read_access_is_refused(client, colleague, study):
    client.force_login(colleague)
    for url in all_urls(study):
        response = client.get(url)
        assert response.status_code == 403, url
        assert PROLIFIC_1 not in response.content.decode()


def test_an_outsider_gets_404_even_for_an_unknown_download(client, outsider, study):
    client.force_login(outsider)
    for url in [*all_urls(study), download_url(study, "nothing.csv")]:
        assert client.get(url).status_code == 404, url


def test_an_anonymous_visitor_is_sent_to_log_in(client, study):
    for url in all_urls(study):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={url}"


def test_the_page_and_downloads_only_take_gets(client, owner, study):
    client.force_login(owner)
    for url in all_urls(study):
        assert client.post(url).status_code == 405, url


def test_an_unknown_download_is_not_found_for_the_owner(client, owner, study):
    client.force_login(owner)
    assert client.get(download_url(study, "trials.csv")).status_code == 404


# --- The page --------------------------------------------------------------------------------


def test_each_rater_shows_the_hand_worked_amounts(client, owner, study):
    page = page_of(client, owner, page_url(study))
    code = RaterSession.objects.get(external_id=PROLIFIC_1).completion_code
    # Worker id; platform, session; status; code; answers; correct task answers; base, bonus
    # and total due; where the base pay and the bonus stand.
    assert cells(row_of(page, PROLIFIC_1)) == [
        PROLIFIC_1,
        "Prolific, sess-p1",
        "Completed",
        code,
        "60",
        "37",
        "1.50",
        "0.74",
        "2.24",
        "not recorded",
        "not recorded",
    ]
    failed = cells(row_of(page, PROLIFIC_2))
    assert failed[2] == "Failed qualification" and failed[4:] == [
        "10",
        "0",
        "0.00",
        "0.00",
        "0.00",
        "—",
        "—",
    ]
    in_task = cells(row_of(page, "A1MTURKWORKER3"))
    assert in_task[1:3] == ["MTurk, ASSIGN3", "In task"]
    assert in_task[5:9] == ["12", "0.00", "0.00", "0.00"]
    link = cells(row_of(page, "link-rater-5"))
    assert link[1] == "Study link" and link[8] == "2.48"


def test_the_totals_and_what_the_amounts_mean(client, owner, study):
    page = page_of(client, owner, page_url(study))
    totals = re.search(r'<tr id="payments-totals">(.*?)</tr>', page).group(1)
    assert cells(re.sub(r"<[^>]+>", "|", totals)) == [
        "Total: 5 raters",
        "215",
        "133",
        "4.50",
        "2.42",
        "6.92",
    ]
    meaning = re.search(r'<p id="pay-meaning">(.*?)</p>', page).group(1)
    assert "(1.50 GBP) is due to each rater who completed" in meaning
    assert "the platform pays it when you approve" in meaning
    assert "0.02 GBP per correct answer in the task blocks" in meaning
    assert "completed raters only" in meaning
    assert "Platform fees are not included" in meaning
    assert '<dd id="pay-due">6.92 GBP</dd>' in page


def test_the_page_says_what_has_been_paid(client, owner, study):
    pay_record(study, PROLIFIC_1, Payment.Kind.BASE, Payment.Status.PAID, 150)
    pay_record(study, PROLIFIC_1, Payment.Kind.BONUS, Payment.Status.SENT, 74)
    pay_record(study, MTURK_4, Payment.Kind.BASE, Payment.Status.PREPARED, 150)
    pay_record(study, MTURK_4, Payment.Kind.BONUS, Payment.Status.PAID, 60)
    page = page_of(client, owner, page_url(study))
    assert cells(row_of(page, PROLIFIC_1))[-3:] == ["paid", "sent", "outcome unknown"]
    assert cells(row_of(page, MTURK_4))[-4:] == [
        "prepared",
        "not sent yet",
        "paid",
        "recorded as 0.60 GBP",
    ]
    # Paid: 1.50 + 0.60 as recorded; not paid: 6.92 less the two amounts due that are paid
    # (1.50 and 0.70). The 0.10 between them is the payment that is not what is due.
    assert '<dd id="pay-paid">2.10 GBP</dd>' in page
    assert '<dd id="pay-unpaid">4.72 GBP</dd>' in page
    assert 'id="pay-differing"' in page


def test_the_page_links_each_download_with_what_it_holds(client, owner, study):
    page = page_of(client, owner, page_url(study))
    for kind, holds in (
        ("approvals.csv", "4 rows, 3.00 GBP"),
        ("prolific-bonuses.csv", "1 row, 0.74 GBP"),
        ("mturk-bonuses.csv", "1 row, 0.70 GBP"),
    ):
        link = re.search(rf'<li><a href="{re.escape(download_url(study, kind))}".*?</li>', page)
        assert link and holds in link.group(0), kind


def test_a_worker_id_is_escaped_on_the_page(client, owner):
    study = study_make(owner=owner, pay_base_cents=150, pay_per_correct_cents=2)
    session_make(study, external_id="<script>alert(1)</script>", source="prolific")
    page = page_of(client, owner, page_url(study))
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- The downloads ---------------------------------------------------------------------------


def test_each_download_is_an_attachment_with_the_services_lines(client, owner, study):
    client.force_login(owner)
    expected = {
        "approvals.csv": 5,  # a header and the four crowd raters
        "prolific-bonuses.csv": 1,
        "mturk-bonuses.csv": 2,
    }
    for kind, lines in expected.items():
        response = client.get(download_url(study, kind))
        assert response["Content-Disposition"] == (f'attachment; filename="hype-faces-pay-{kind}"')
        assert response["Cache-Control"] == "private, no-store"
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert len(response.content.decode().splitlines()) == lines, kind
    prolific = client.get(download_url(study, "prolific-bonuses.csv")).content
    assert prolific == f"{PROLIFIC_1},0.74\n".encode()


def test_a_paid_bonus_is_not_in_the_download(client, owner, study):
    pay_record(study, PROLIFIC_1, Payment.Kind.BONUS, Payment.Status.PAID, 74)
    client.force_login(owner)
    assert client.get(download_url(study, "prolific-bonuses.csv")).content == b""


def test_a_formula_worker_id_is_neutralised_in_the_download(client, owner):
    study = study_make(owner=owner, pay_base_cents=150, pay_per_correct_cents=2)
    pool = [image_make(study) for _ in range(2)]
    rater_make(
        study,
        pool,
        source="prolific",
        worker="=1+1",
        status=Status.COMPLETED,
        qualification=None,
        task=[(2, 0)],
    )
    client.force_login(owner)
    assert client.get(download_url(study, "prolific-bonuses.csv")).content == b"'=1+1,0.04\n"


# --- The cost on the study page ------------------------------------------------------------


def cost_block(page):
    match = re.search(r'<section id="cost">(.*?)</section>', page)
    return match and re.sub(r"<[^>]+>", "", match.group(1))


def test_the_owner_sees_the_cost_so_far_and_at_the_target(client, owner, study):
    pay_record(study, PROLIFIC_1, Payment.Kind.BASE, Payment.Status.PAID, 150)
    page = page_of(client, owner, f"/studies/{study.public_id}/")
    block = cost_block(page)
    assert "So far: 6.92 GBP due to 3 completed raters (4.50 base + 2.42 bonus)" in block
    assert "of which 1.50 GBP is recorded as paid" in block
    assert "At the target of 60 completed raters (2 models × 30):" in block
    assert "about 138.40 GBP (90.00 base + 48.40 bonus, at the mean bonus of the 3" in block
    assert "platform fees are not included" in block
    # The cost block comes right after the data section, and links to the payments page.
    assert page.index('<section id="data">') < page.index('<section id="cost">')
    assert f'href="{page_url(study)}"' in page


def test_staff_see_the_cost_and_a_colleague_does_not(client, staff, colleague, study):
    assert cost_block(page_of(client, staff, f"/studies/{study.public_id}/"))
    page = page_of(client, colleague, f"/studies/{study.public_id}/")
    assert cost_block(page) is None
    assert page_url(study) not in page


def test_before_anyone_completes_the_bonus_is_not_projected(client, owner):
    study = study_make(
        owner=owner,
        models=("A", "B"),
        currency="USD",
        pay_base_cents=150,
        pay_per_correct_cents=2,
        raters_per_model=30,
    )
    session_make(study, status=Status.IN_TASK)
    block = cost_block(page_of(client, owner, f"/studies/{study.public_id}/"))
    assert "So far: 0.00 USD due to 0 completed raters" in block
    assert "90.00 USD base pay, plus the bonuses: they cannot be projected" in block
