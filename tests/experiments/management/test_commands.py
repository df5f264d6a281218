"""Management commands used by `make demo`, and the health check it waits for."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def logs_in(client, username: str, password: str) -> bool:
    """Through the login page, as a browser does (and as the lockout counts it)."""
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return response.status_code == 302


def test_ensure_researcher_creates_an_account_that_can_log_in(client):
    call_command("ensure_researcher", username="ada", password="a-long-password", staff=True)
    assert logs_in(client, "ada", "a-long-password")
    assert get_user_model().objects.get(username="ada").is_staff


def test_ensure_researcher_run_twice_keeps_one_account_and_the_new_password(client):
    call_command("ensure_researcher", username="ada", password="first-password")
    call_command("ensure_researcher", username="ada", password="second-password")
    assert get_user_model().objects.filter(username="ada").count() == 1
    assert logs_in(client, "ada", "second-password")


def test_ensure_researcher_refuses_a_short_password():
    with pytest.raises(CommandError, match="at least 8 characters"):
        call_command("ensure_researcher", username="ada", password="short")
    assert not get_user_model().objects.filter(username="ada").exists()


def test_the_health_check_reports_the_database_it_answered_from(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_the_home_page_greets_a_visitor(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"HYPE" in response.content
