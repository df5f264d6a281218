"""A study's texts and pay: the service that checks and stores them (exact cents from decimal
amounts, the completion codes, nothing changed on any problem) and the page that shows and
changes them, for the owner, a colleague with read access, an outsider and staff."""

from decimal import Decimal

import pytest
from django.forms.models import model_to_dict

from experiments.models import Study
from experiments.services.problems import InputProblems
from experiments.services.study_texts import (
    DEFAULT_CONSENT,
    TEXT_FIELDS,
    amount_cents,
    minutes_estimated,
    study_texts_update,
)
from tests.factories import study_make, user_make

pytestmark = pytest.mark.django_db

CODES = {
    "code_completed": "C1A2B3",
    "code_screened_out": "SCREEN01",
    "code_no_consent": "NOCONSENT",
    "code_full": "FULL99",
    "code_device": "DEVICE7",
}


def valid(**overrides) -> dict:
    """Every field of the texts form, as a browser posts it."""
    return {
        "instructions": "Look closely.",
        "consent_text": "",
        "estimated_minutes": "",
        "contact": "ada@example.org",
        "currency": "GBP",
        "pay_base": "1.50",
        "pay_per_correct": "0.02",
        **CODES,
        **overrides,
    }


@pytest.fixture
def owner():
    return user_make("ada")


@pytest.fixture
def study(owner):
    return study_make(owner=owner, name="FFHQ faces")


def stored(study) -> dict:
    return model_to_dict(Study.objects.get(pk=study.pk))


# --- The service -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        ("0.02", 2),
        ("1.5", 150),
        ("1.50", 150),
        ("1.500", 150),
        (" 12 ", 1200),
        ("0", 0),
        ("", 0),
        ("0.1", 10),
        ("10000", 1_000_000),
        (Decimal("2.24"), 224),
        (3, 300),
    ],
)
def test_amounts_become_exact_cents(amount, cents):
    assert amount_cents(amount) == cents


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("1.505", "more than two decimals"),
        ("0.001", "more than two decimals"),
        ("-1", "negative"),
        ("-0.50", "negative"),
        ("1,50", "after a point"),
        ("abc", "not an amount"),
        ("1e2", "not an amount"),
        ("NaN", "not an amount"),
        ("Infinity", "not an amount"),
        ("1 000", "not an amount"),
        ("$1", "not an amount"),
        ("10000.01", "more than 10000.00"),
    ],
)
def test_amounts_that_are_not_whole_cents_are_refused(amount, says):
    with pytest.raises(ValueError, match=says):
        amount_cents(amount)


def test_the_service_stores_every_field(study):
    study_texts_update(
        study=study,
        **valid(
            instructions="  Look closely.\n",
            consent_text="I agree.",
            estimated_minutes="12",
            currency="gbp",
        ),
    )
    study.refresh_from_db()
    assert study.instructions == "Look closely."
    assert study.consent_text == "I agree."
    assert study.estimated_minutes == 12
    assert study.contact == "ada@example.org"
    assert (study.currency, study.pay_base_cents, study.pay_per_correct_cents) == ("GBP", 150, 2)
    assert {name: getattr(study, name) for name in CODES} == CODES


def test_empty_means_the_default_consent_and_the_estimated_duration(study):
    study_texts_update(study=study, consent_text="Mine.", estimated_minutes="9")
    study_texts_update(study=study, consent_text="   ", estimated_minutes="")
    study.refresh_from_db()
    assert (study.consent_text, study.estimated_minutes) == ("", None)


def test_fields_left_out_keep_their_value(study):
    study_texts_update(study=study, pay_base="2")
    before = stored(study)
    study_texts_update(study=study, contact="grace@example.org")
    after = stored(study)
    assert after.pop("contact") == "grace@example.org"
    before.pop("contact")
    assert after == before
    assert after["pay_base_cents"] == 200


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"pay_base": "1.505"}, "pay_base: 1.505 has more than two decimals"),
        ({"pay_per_correct": "-1"}, "pay_per_correct: -1 is negative"),
        ({"currency": "US"}, "currency: 'US' must be a three-letter ISO 4217 code"),
        ({"currency": "US$"}, "currency: 'US$' must be a three-letter"),
        ({"estimated_minutes": "0"}, "estimated_minutes: '0' must be a whole number"),
        ({"estimated_minutes": "2.5"}, "estimated_minutes: '2.5' must be a whole number"),
        ({"code_completed": ""}, "code_completed: a completion code is needed"),
        ({"code_full": "ABC-123"}, "code_full: 'ABC-123' must be 1 to 32 letters or digits"),
        ({"code_full": "A" * 33}, f"code_full: {'A' * 33!r} must be 1 to 32 letters"),
        ({"code_full": "C1A2B3"}, "code_full: the same code as code_completed (C1A2B3)"),
        ({"code_no_consent": "c1a2b3"}, "code_no_consent: the same code as code_completed"),
        ({"code_device": "FULL99"}, "code_device: the same code as code_full (FULL99)"),
        ({"code_device": ""}, "code_device: a completion code is needed"),
        ({"contact": "x" * 301}, "contact: 301 characters, more than 300"),
        ({"instructions": "x" * 20_001}, "instructions: 20,001 characters, more than 20,000"),
        ({"pay_cents": "1"}, "unknown field(s): pay_cents"),
    ],
)
def test_a_problem_changes_nothing(study, changes, problem):
    before = stored(study)
    with pytest.raises(InputProblems) as raised:
        study_texts_update(study=study, **valid(**changes))
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems
    assert len(raised.value.problems) == 1, raised.value.problems
    assert stored(study) == before
    assert study.code_completed == before["code_completed"]  # not even the object in hand


def test_every_problem_is_reported_at_once(study):
    with pytest.raises(InputProblems) as raised:
        study_texts_update(
            study=study,
            **valid(
                pay_base="1.505", pay_per_correct="-1", currency="", code_full="", instructions="ok"
            ),
        )
    assert [p.split(":")[0] for p in raised.value.problems] == [
        "currency",
        "pay_base",
        "pay_per_correct",
        "code_full",
    ]
    assert study.instructions == ""


def test_a_new_code_may_not_repeat_a_stored_one(study):
    with pytest.raises(InputProblems, match="the same code as code_completed"):
        study_texts_update(study=study, code_full=study.code_completed)


# --- The page --------------------------------------------------------------------------


def url(study):
    return f"/studies/{study.public_id}/texts"


def test_the_owner_sees_the_form_with_the_studys_values(client, owner, study):
    study_texts_update(study=study, pay_base="1.5", pay_per_correct="0.02", contact="ada@x.org")
    client.force_login(owner)
    response = client.get(url(study))
    assert response.status_code == 200
    html = response.content.decode()
    for name in TEXT_FIELDS:
        assert f'name="{name}"' in html, name
    assert 'name="pay_base" inputmode="decimal" value="1.50"' in html
    assert 'value="0.02"' in html and 'value="ada@x.org"' in html
    assert f'value="{study.code_completed}"' in html
    assert "must match the one set on Prolific" in html
    assert "Raters are told now: 1.50 USD, plus 0.02 USD for each correct answer." in html
    assert "they may change at any time" in html
    assert 'id="read-only"' not in html and "disabled" not in html


def test_an_empty_consent_shows_the_default_raters_will_see(client, owner, study):
    client.force_login(owner)
    html = client.get(url(study)).content.decode()
    assert '<textarea id="id_consent_text" name="consent_text"' in html
    assert 'aria-describedby="consent-help"></textarea>' in html  # the field itself is empty
    assert "No consent text of the study's own is stored" in html
    assert (
        f'<blockquote class="consent-default" id="consent-default">{DEFAULT_CONSENT}'
        in html.replace("&#x27;", "'")
    )
    study_texts_update(study=study, consent_text="I agree to this.")
    html = client.get(url(study)).content.decode()
    assert ">I agree to this.</textarea>" in html
    assert 'id="consent-default"' not in html


def test_an_empty_duration_shows_the_estimate(client, owner, study):
    client.force_login(owner)
    html = client.get(url(study)).content.decode()
    minutes = minutes_estimated(study)
    assert f'placeholder="{minutes}"' in html
    assert f"Empty: raters are told\n          about {minutes} minutes" in html


def test_the_owner_saves_the_texts(client, owner, study):
    client.force_login(owner)
    response = client.post(url(study), valid(estimated_minutes="25"))
    assert response.status_code == 302 and response["Location"] == url(study)
    study.refresh_from_db()
    assert (study.pay_base_cents, study.pay_per_correct_cents, study.currency) == (150, 2, "GBP")
    assert study.estimated_minutes == 25 and study.code_full == "FULL99"
    assert study.code_device == "DEVICE7"
    assert (
        "Saved: raters now see these texts and this pay." in client.get(url(study)).content.decode()
    )


def test_bad_input_gets_the_problems_next_to_the_fields_and_changes_nothing(client, owner, study):
    client.force_login(owner)
    before = stored(study)
    response = client.post(url(study), valid(pay_base="1.505", code_full="C1A2B3"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was saved: 2 problems, marked below." in html
    pay = html.split('for="id_pay_base"', 1)[1].split("</div>", 1)[0]
    assert "1.505 has more than two decimals" in pay
    full = html.split('for="id_code_full"', 1)[1].split("</div>", 1)[0]
    assert "the same code as code_completed (C1A2B3)" in full
    # What was typed stays in the form.
    assert 'value="1.505"' in html and 'value="GBP"' in html
    assert stored(study) == before


def test_a_colleague_sees_the_texts_read_only_and_cannot_change_them(client, study):
    colleague = user_make("grace")
    study.viewers.add(colleague)
    client.force_login(colleague)
    response = client.get(url(study))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="read-only"' in html and "<fieldset disabled>" in html
    assert ">Save</button>" not in html
    before = stored(study)
    assert client.post(url(study), valid()).status_code == 403
    assert stored(study) == before


def test_an_outsider_gets_404_and_an_anonymous_visitor_is_sent_to_log_in(client, study):
    before = stored(study)
    client.force_login(user_make("outsider"))
    assert client.get(url(study)).status_code == 404
    assert client.post(url(study), valid()).status_code == 404
    client.logout()
    response = client.post(url(study), valid())
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url(study)}"
    assert stored(study) == before


def test_staff_change_any_studys_texts(client, study):
    client.force_login(user_make("staff", is_staff=True))
    assert client.post(url(study), valid()).status_code == 302
    study.refresh_from_db()
    assert study.pay_base_cents == 150


def test_the_study_page_links_to_the_texts_for_those_who_can_change_them(client, owner, study):
    client.force_login(owner)
    html = client.get(f"/studies/{study.public_id}/").content.decode()
    data = html.split('<section id="data">', 1)[1].split("</section>", 1)[0]
    assert f'href="{url(study)}"' in data
    colleague = user_make("grace")
    study.viewers.add(colleague)
    client.force_login(colleague)
    assert f'href="{url(study)}"' not in client.get(f"/studies/{study.public_id}/").content.decode()
