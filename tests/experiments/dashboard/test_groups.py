"""The groups page and the study page's group control: a researcher makes groups, changes them,
and puts their own studies in them; bad input is refused with a reason and changes nothing."""

import pytest

from experiments.models import Study, StudyGroup
from tests.factories import study_make, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(client):
    user = user_make("owner")
    client.force_login(user)
    return user


def test_a_researcher_makes_a_group_and_changes_it(client, owner):
    response = client.post(
        "/groups/",
        {
            "action": "create",
            "name": " Faces 2026 ",
            "kind": "exclusive",
            "qualification_days": "30",
        },
    )
    group = StudyGroup.objects.get()
    assert response["Location"] == f"/groups/#group-{group.pk}"
    assert (group.name, group.kind, group.owner) == ("Faces 2026", "exclusive", owner)
    client.post(
        "/groups/",
        {"action": "update", "group": group.pk, "kind": "pool", "qualification_days": "14"},
    )
    group.refresh_from_db()
    assert (group.kind, group.qualification_days) == ("pool", 14)
    page = client.get("/groups/").content.decode()
    assert "Faces 2026" in page and "Qualified pool" in page


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"name": "", "kind": "exclusive", "qualification_days": "30"}, "name:"),
        ({"name": "G", "kind": "nonsense", "qualification_days": "30"}, "kind:"),
        ({"name": "G", "kind": "pool", "qualification_days": "0"}, "qualification_days:"),
        ({"name": "G", "kind": "pool", "qualification_days": "soon"}, "qualification_days:"),
    ],
)
def test_a_bad_group_is_refused_with_its_reason(client, owner, form, says):
    response = client.post("/groups/", {"action": "create", **form})
    assert response.status_code == 400 and says in response.content.decode()
    assert not StudyGroup.objects.exists()


def test_a_name_is_used_once_per_researcher(client, owner):
    StudyGroup.objects.create(owner=owner, name="G")
    response = client.post(
        "/groups/",
        {"action": "create", "name": "G", "kind": "exclusive", "qualification_days": "3"},
    )
    assert response.status_code == 400 and "already have a group" in response.content.decode()
    # Another researcher may use the same name.
    StudyGroup.objects.create(owner=user_make(), name="G")


def test_nobody_changes_or_sees_another_researchers_group(client, owner):
    theirs = StudyGroup.objects.create(owner=user_make(), name="Theirs")
    response = client.post(
        "/groups/",
        {"action": "update", "group": theirs.pk, "kind": "pool", "qualification_days": "9"},
    )
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.kind == "exclusive"
    assert "Theirs" not in client.get("/groups/").content.decode()


def test_the_owner_puts_a_study_in_one_of_their_groups_and_takes_it_out(client, owner):
    study = study_make(owner=owner)
    group = StudyGroup.objects.create(owner=owner, name="Mine")
    page = client.get(f"/studies/{study.public_id}/").content.decode()
    assert 'id="group-form"' in page and "In no group of studies" in page
    client.post(f"/studies/{study.public_id}/group", {"group": group.pk})
    study.refresh_from_db()
    assert study.group == group
    page = client.get(f"/studies/{study.public_id}/").content.decode()
    assert "In the group" in page and "Mine" in page and "exclusive" in page
    client.post(f"/studies/{study.public_id}/group", {"group": ""})
    study.refresh_from_db()
    assert study.group is None


def test_a_study_cannot_join_someone_elses_group(client, owner):
    study = study_make(owner=owner)
    theirs = StudyGroup.objects.create(owner=user_make(), name="Theirs")
    response = client.post(f"/studies/{study.public_id}/group", {"group": theirs.pk}, follow=True)
    assert "No such group" in response.content.decode()
    assert Study.objects.get(pk=study.pk).group is None
    response = client.post(f"/studies/{study.public_id}/group", {"group": "x'; drop"}, follow=True)
    assert "No such group" in response.content.decode()
