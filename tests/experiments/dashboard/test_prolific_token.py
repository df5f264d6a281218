"""A researcher stores, replaces and removes their Prolific API token; the page never shows
it back in full, and each researcher only ever sees their own."""

import pytest

from experiments.models import PlatformToken
from tests.factories import user_make

pytestmark = pytest.mark.django_db

URL = "/accounts/prolific-token/"
TOKEN = "pRoLiFiC-secret-token-0123456789-wxyz"


def test_an_anonymous_visitor_is_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_researcher_stores_a_token_that_is_never_shown_back_in_full(client):
    ada = user_make("ada")
    client.force_login(ada)
    assert "No token is stored" in client.get(URL).content.decode()
    response = client.post(URL, {"token": f"  {TOKEN}\n"}, follow=True)
    page = response.content.decode()
    assert "…wxyz" in page and TOKEN not in page and TOKEN[:-4] not in page
    assert PlatformToken.objects.get(owner=ada).token == TOKEN
    client.post(URL, {"token": "another-token-abcd"})
    assert PlatformToken.objects.get(owner=ada).token == "another-token-abcd"
    client.post(URL, {"action": "remove"})
    assert not PlatformToken.objects.filter(owner=ada).exists()


def test_each_researcher_sees_only_whether_they_have_a_token(client):
    ada, grace = user_make("ada"), user_make("grace")
    PlatformToken.objects.create(owner=ada, platform="prolific", token=TOKEN)
    client.force_login(grace)
    page = client.get(URL).content.decode()
    assert "No token is stored" in page and "wxyz" not in page
    client.post(URL, {"action": "remove"})
    assert PlatformToken.objects.filter(owner=ada).exists()


@pytest.mark.parametrize("token", ["", "   ", "has spaces inside", "x" * 501, "tök"])
def test_something_that_is_not_a_token_is_refused_and_nothing_stored(client, token):
    client.force_login(user_make("ada"))
    response = client.post(URL, {"token": token})
    assert response.status_code == 400
    assert b"form-error" in response.content
    assert not PlatformToken.objects.exists()
