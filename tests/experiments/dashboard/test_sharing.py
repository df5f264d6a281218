"""Sharing a study read-only with named colleagues: the owner (or staff) adds and removes
them by username; colleagues see the study but change nothing; outsiders learn nothing."""

import pytest
from django.contrib.auth import get_user_model

from experiments.models import Study
from tests.factories import study_make, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return user_make("ada")


@pytest.fixture
def study(owner):
    return study_make(owner=owner, name="FFHQ faces")


def share(client, study, username, action="add"):
    return client.post(
        f"/studies/{study.public_id}/sharing", {"action": action, "username": username}
    )


def viewers(study):
    return sorted(study.viewers.values_list("username", flat=True))


def told(client, study):
    """The page the researcher is sent back to, with the message about what happened."""
    return client.get(f"/studies/{study.public_id}/").content.decode()


def test_the_owner_shares_with_a_colleague_who_then_sees_the_study(client, owner, study):
    grace = user_make("grace")
    client.force_login(owner)
    response = share(client, study, "grace")
    assert response.status_code == 302
    assert response["Location"] == f"/studies/{study.public_id}/#sharing"
    assert viewers(study) == ["grace"]
    assert "grace can now see this study, read-only." in told(client, study)
    client.force_login(grace)
    assert client.get(f"/studies/{study.public_id}/").status_code == 200
    assert "FFHQ faces" in client.get("/").content.decode()


def test_the_sharing_panel_lists_the_colleagues(client, owner, study):
    study.viewers.add(user_make("grace"), user_make("alan"))
    client.force_login(owner)
    page = told(client, study)
    panel = page[page.index('id="sharing"') :]
    assert panel.index("alan") < panel.index("grace")
    assert panel.count('value="remove"') == 2


def test_surrounding_spaces_in_the_username_are_ignored(client, owner, study):
    user_make("grace")
    client.force_login(owner)
    share(client, study, "  grace ")
    assert viewers(study) == ["grace"]


def test_an_unknown_username_gets_a_clear_error_and_changes_nothing(client, owner, study):
    client.force_login(owner)
    share(client, study, "nobody")
    assert viewers(study) == []
    assert "There is no researcher with the username “nobody”." in told(client, study)


def test_a_deactivated_account_counts_as_unknown(client, owner, study):
    user_make("gone", is_active=False)
    client.force_login(owner)
    share(client, study, "gone")
    assert viewers(study) == []


def test_an_empty_username_is_refused(client, owner, study):
    client.force_login(owner)
    share(client, study, "")
    assert viewers(study) == []
    assert "Enter a colleague&#x27;s username." in told(client, study)


def test_the_owner_cannot_share_with_themselves(client, owner, study):
    client.force_login(owner)
    share(client, study, "ada")
    assert viewers(study) == []
    assert "You can see this study already" in told(client, study)


def test_staff_cannot_add_the_owner_as_a_colleague(client, study):
    client.force_login(user_make("root", is_staff=True))
    share(client, study, "ada")
    assert viewers(study) == []
    assert "ada owns this study already." in told(client, study)


def test_sharing_twice_keeps_one_colleague(client, owner, study):
    user_make("grace")
    client.force_login(owner)
    share(client, study, "grace")
    share(client, study, "grace")
    assert viewers(study) == ["grace"]
    assert "grace can see this study already." in told(client, study)


def test_the_owner_removes_a_colleague_who_then_gets_not_found(client, owner, study):
    grace = user_make("grace")
    study.viewers.add(grace)
    client.force_login(owner)
    share(client, study, "grace", action="remove")
    assert viewers(study) == []
    assert "grace no longer sees this study." in told(client, study)
    client.force_login(grace)
    assert client.get(f"/studies/{study.public_id}/").status_code == 404


def test_removing_someone_who_was_not_a_colleague_changes_nothing(client, owner, study):
    study.viewers.add(user_make("grace"))
    user_make("alan")
    client.force_login(owner)
    share(client, study, "alan", action="remove")
    assert viewers(study) == ["grace"]
    assert "“alan” is not among the colleagues of this study." in told(client, study)


def test_an_unknown_action_is_a_bad_request(client, owner, study):
    user_make("grace")
    client.force_login(owner)
    assert share(client, study, "grace", action="promote").status_code == 400
    assert viewers(study) == []


def test_sharing_cannot_be_done_with_a_get(client, owner, study):
    user_make("grace")
    client.force_login(owner)
    path = f"/studies/{study.public_id}/sharing?action=add&username=grace"
    assert client.get(path).status_code == 405
    assert viewers(study) == []


def test_staff_can_share_anyones_study(client, study):
    user_make("grace")
    client.force_login(user_make("root", is_staff=True))
    share(client, study, "grace")
    assert viewers(study) == ["grace"]


def test_a_colleague_cannot_share_further_or_remove_anyone(client, study):
    grace, alan = user_make("grace"), user_make("alan")
    study.viewers.add(grace)
    client.force_login(grace)
    assert share(client, study, "alan").status_code == 403
    assert share(client, study, "grace", action="remove").status_code == 403
    assert viewers(study) == ["grace"]
    assert not alan.shared_studies.exists()


def test_an_outsider_gets_not_found_and_changes_nothing(client, study):
    client.force_login(user_make("mallory"))
    assert share(client, study, "mallory").status_code == 404
    assert viewers(study) == []


def test_an_anonymous_visitor_is_sent_to_log_in(client, study):
    user_make("grace")
    response = share(client, study, "grace")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert viewers(study) == []


def test_sharing_one_study_shows_the_colleague_nothing_else(client, owner, study):
    other = study_make(owner=owner, name="Unshared study")
    grace = user_make("grace")
    study.viewers.add(grace)
    client.force_login(grace)
    assert client.get(f"/studies/{other.public_id}/").status_code == 404
    page = client.get("/").content.decode()
    assert "FFHQ faces" in page and "Unshared study" not in page


def test_every_persona_on_every_study_page(client, owner, study):
    """Owner and staff change; a colleague reads and gets 403 on changes; an outsider 404s."""
    colleague, outsider = user_make("grace"), user_make("mallory")
    staff = user_make("root", is_staff=True)
    study.viewers.add(colleague)
    base = f"/studies/{study.public_id}/"
    expected = {
        owner: (200, 302, 302),
        staff: (200, 302, 302),
        colleague: (200, 403, 403),
        outsider: (404, 404, 404),
    }
    for user, (view, status, sharing) in expected.items():
        client.force_login(user)
        assert client.get(base).status_code == view, user
        assert client.post(base + "status", {"action": "open"}).status_code == status, user
        Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
        got = client.post(base + "sharing", {"action": "add", "username": "nobody"})
        assert got.status_code == sharing, user
    assert get_user_model().objects.filter(shared_studies=study).count() == 1
