"""Brute force against researcher logins: after ten failed logins from one address, the login
page and /api/token/ refuse that address for a while, even the right password, with a page
that says so; other addresses are not affected; /api/token/ is also throttled per address."""

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import user_make

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"  # tests.factories.user_make's
ATTACKER = "203.0.113.7"
RESEARCHER = "198.51.100.20"


def log_in(password: str, *, address: str, username: str = "ada"):
    return Client(REMOTE_ADDR=address).post(
        "/accounts/login/", {"username": username, "password": password}
    )


def token(password: str, *, address: str, username: str = "ada"):
    return Client(REMOTE_ADDR=address).post(
        "/api/token/", {"username": username, "password": password}
    )


def test_ten_wrong_passwords_lock_the_address_out_even_for_the_right_one():
    user_make("ada")
    assert settings.AXES_FAILURE_LIMIT == 10
    for n in range(9):
        assert log_in(f"guess-{n}", address=ATTACKER).status_code == 200  # the form again
    locked = log_in("guess-9", address=ATTACKER)
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page and "Try again in 15 minutes" in page
    # The right password from that address is refused too, for now.
    assert log_in(PASSWORD, address=ATTACKER).status_code == 429
    # Trying other usernames does not help.
    assert log_in("guess", address=ATTACKER, username="bob").status_code == 429
    # Another address is not affected.
    assert log_in(PASSWORD, address=RESEARCHER).status_code == 302


def test_a_right_password_before_the_limit_starts_the_count_again():
    user_make("ada")
    for n in range(9):
        log_in(f"typo-{n}", address=RESEARCHER)
    assert log_in(PASSWORD, address=RESEARCHER).status_code == 302
    for n in range(9):
        assert log_in(f"typo-{n}", address=RESEARCHER).status_code == 200
    assert log_in(PASSWORD, address=RESEARCHER).status_code == 302


def test_the_api_token_is_refused_after_ten_wrong_passwords_from_one_address():
    ada = user_make("ada")
    for n in range(10):
        assert token(f"guess-{n}", address=ATTACKER).status_code in (400, 429)
    refused = token(PASSWORD, address=ATTACKER)
    assert refused.status_code in (400, 429)
    assert "token" not in refused.json()
    assert not Token.objects.filter(user=ada).exists()
    # From another address the researcher gets their token.
    assert token(PASSWORD, address=RESEARCHER).json()["token"]


def test_the_api_token_takes_at_most_twenty_requests_an_hour_from_one_address():
    user_make("ada")
    for _ in range(20):
        assert token(PASSWORD, address=RESEARCHER).status_code == 200
    throttled = token(PASSWORD, address=RESEARCHER)
    assert throttled.status_code == 429
    assert (
        "throttled" in throttled.json()["detail"].lower()
        or "expected available" in (throttled.json()["detail"])
    )
    assert token(PASSWORD, address="198.51.100.21").status_code == 200


def test_a_made_up_forwarded_for_header_does_not_escape_the_token_throttle():
    user_make("ada")
    for n in range(20):
        Client(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").post(
            "/api/token/", {"username": "ada", "password": PASSWORD}
        )
    response = Client(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR="10.9.9.9").post(
        "/api/token/", {"username": "ada", "password": PASSWORD}
    )
    assert response.status_code == 429
