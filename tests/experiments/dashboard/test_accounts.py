"""Researcher accounts: logging in and out through the site's own pages, changing the
password, and the navigation each kind of visitor sees."""

import pytest
from django.contrib.auth import get_user_model

from tests.factories import user_make

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"  # tests.factories.user_make's


def logged_in_user(client):
    return client.get("/").wsgi_request.user


def test_the_login_page_asks_for_a_username_and_password(client):
    page = client.get("/accounts/login/").content.decode()
    assert "<h1>Log in</h1>" in page
    assert 'name="username"' in page and 'name="password"' in page
    assert "csrfmiddlewaretoken" in page


def test_a_researcher_logs_in_and_lands_on_their_studies(client):
    user_make("ada")
    response = client.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert logged_in_user(client).get_username() == "ada"


def test_logging_in_goes_on_to_the_page_that_asked_for_it(client):
    user_make("ada")
    response = client.post(
        "/accounts/login/", {"username": "ada", "password": PASSWORD, "next": "/studies/x/"}
    )
    assert response["Location"] == "/studies/x/"


def test_logging_in_never_goes_on_to_another_site(client):
    user_make("ada")
    response = client.post(
        "/accounts/login/",
        {"username": "ada", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/"


def test_a_wrong_password_is_refused_with_a_clear_error(client):
    user_make("ada")
    response = client.post("/accounts/login/", {"username": "ada", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert not logged_in_user(client).is_authenticated


def test_the_login_page_says_why_it_was_shown(client):
    page = client.get("/accounts/login/?next=/studies/x/").content.decode()
    assert "Log in to see that page." in page
    assert 'name="next" value="/studies/x/"' in page


def test_logging_out_is_a_post_and_returns_to_the_login_page(client):
    client.force_login(user_make("ada"))
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert not logged_in_user(client).is_authenticated


def test_a_get_does_not_log_out(client):
    client.force_login(user_make("ada"))
    assert client.get("/accounts/logout/").status_code == 405
    assert logged_in_user(client).is_authenticated


def test_changing_the_password_needs_a_login(client):
    response = client.get("/accounts/password/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/password/"


def test_a_researcher_changes_their_password(client):
    client.force_login(user_make("ada"))
    page = client.get("/accounts/password/").content.decode()
    assert "Change your password" in page and 'name="old_password"' in page
    response = client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-passphrase",
            "new_password2": "a-new-long-passphrase",
        },
    )
    assert response["Location"] == "/accounts/password/done/"
    assert "Password changed" in client.get("/accounts/password/done/").content.decode()
    assert logged_in_user(client).is_authenticated  # the session survives the change
    ada = get_user_model().objects.get(username="ada")
    assert ada.check_password("a-new-long-passphrase") and not ada.check_password(PASSWORD)


def test_a_wrong_current_password_changes_nothing(client):
    client.force_login(user_make("ada"))
    response = client.post(
        "/accounts/password/",
        {
            "old_password": "not-it",
            "new_password1": "a-new-long-passphrase",
            "new_password2": "a-new-long-passphrase",
        },
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    assert get_user_model().objects.get(username="ada").check_password(PASSWORD)


def test_mismatched_new_passwords_change_nothing(client):
    client.force_login(user_make("ada"))
    response = client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-passphrase",
            "new_password2": "another-long-passphrase",
        },
    )
    assert "The two password fields" in response.content.decode()
    assert get_user_model().objects.get(username="ada").check_password(PASSWORD)


def test_a_researcher_sees_their_name_studies_password_and_log_out(client):
    client.force_login(user_make("ada"))
    page = client.get("/").content.decode()
    nav = page[page.index("<nav") : page.index("</nav>")]
    assert "ada" in nav and 'href="/"' in nav and 'href="/accounts/password/"' in nav
    assert 'method="post" action="/accounts/logout/"' in nav
    assert "Admin" not in nav and "Log in" not in nav


def test_staff_also_see_the_admin(client):
    client.force_login(user_make("root", is_staff=True))
    page = client.get("/").content.decode()
    assert 'href="/admin/"' in page[page.index("<nav") : page.index("</nav>")]


def test_a_visitor_sees_only_log_in(client):
    page = client.get("/").content.decode()
    nav = page[page.index("<nav") : page.index("</nav>")]
    assert 'href="/accounts/login/"' in nav
    assert "Log out" not in nav and "Change password" not in nav
