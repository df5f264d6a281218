"""Every researcher URL of a study, found by walking the URL map (so a new page cannot skip the
check), for the three personas: the owner sees it, a colleague with read access sees it but
cannot change anything (and does not see the owner-only pages with the workers' ids), an
outsider gets 404 everywhere, and an anonymous visitor is sent to log in. (The API has its own
schema-driven table in test_api.py; the progress websocket is in test_progress.py.)"""

import pytest
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse

from experiments.models import Image, Study
from experiments.services.exports.downloads import EXPORT_KINDS
from experiments.services.exports.payments import PAYMENT_DOWNLOAD_KINDS
from tests.factories import answered_session_make, study_make, user_make

pytestmark = pytest.mark.django_db

# The views that change a study, and a POST that would change it if it were allowed.
CHANGES = {
    "experiments:study_status": {"action": "close"},
    "experiments:study_sharing": {"action": "add", "username": "someone-else"},
    "experiments:study_group": {"group": ""},
    # Excluding a rater from the scores, and the study's exclusion rules.
    "experiments:study_rater_exclusion": {"action": "exclude", "reason": "Not yours to say."},
    "experiments:study_exclusion_rules": {"exclude_fast_streak": "5"},
}
# Pages that show a form on GET and change the study on POST.
FORMS = {
    "experiments:study_texts": {
        "instructions": "Changed by someone who may not.",
        "consent_text": "",
        "estimated_minutes": "",
        "contact": "",
        "currency": "USD",
        "pay_base": "0",
        "pay_per_correct": "0",
        "code_completed": "AAA1",
        "code_screened_out": "BBB2",
        "code_no_consent": "CCC3",
        "code_full": "DDD4",
        "code_device": "EEE5",
    }
}
# Pages for the owner (and staff) only: they show the workers' platform ids.
OWNER_ONLY = {"experiments:study_payments", "experiments:study_payments_download"}


def study_routes() -> list[str]:
    """The name of every route whose path starts with studies/<str:study>/."""
    names = []

    def walk(patterns, prefix, namespace):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern), entry.namespace or namespace)
            elif isinstance(entry, URLPattern) and entry.name:
                route = prefix + str(entry.pattern)
                if route.startswith("studies/<str:study>/"):
                    names.append(f"{namespace}:{entry.name}")

    walk(get_resolver().url_patterns, "", None)
    return sorted(set(names))


@pytest.fixture
def world():
    owner, colleague, outsider = user_make("owner"), user_make("colleague"), user_make("outsider")
    user_make("someone-else")
    study = study_make(owner=owner, models=("a", "b"), status=Study.Status.LIVE)
    study.viewers.add(colleague)
    session = answered_session_make(study, study.models.get(name="a"), [[(500, False, True)]])
    image = Image.objects.filter(study=study, is_real=False).first()
    return {
        "study": study,
        "owner": owner,
        "colleague": colleague,
        "outsider": outsider,
        "args": {"study": study.public_id, "rater": session.public_id, "image": image.public_id},
    }


def urls_of(world) -> list[tuple[str, str]]:
    """(route name, URL) for every study route, filled in for the fixture's study: the
    first set of arguments that reverses, and every export kind."""
    study, rater, image = (world["args"][k] for k in ("study", "rater", "image"))
    candidates = [{"study": study}, {"study": study, "rater": rater}]
    candidates += [{"study": study, "image": image}]
    exports = [{"study": study, "kind": kind} for kind in EXPORT_KINDS]
    downloads = [{"study": study, "kind": kind} for kind in PAYMENT_DOWNLOAD_KINDS]
    urls = []
    for name in study_routes():
        found = []
        kinds = downloads if name == "experiments:study_payments_download" else exports
        for kwargs in candidates + kinds:
            try:
                found.append((name, reverse(name, kwargs=kwargs)))
            except NoReverseMatch:
                continue
        assert found, f"no arguments reverse {name}: add them to urls_of"
        urls += found
    return urls


def test_the_walk_finds_every_researcher_page_of_a_study(world):
    names = set(study_routes())
    assert names >= {
        "experiments:study_detail",
        "experiments:study_status",
        "experiments:study_sharing",
        "experiments:study_raters",
        "experiments:study_rater",
        "experiments:study_images",
        "experiments:study_image_file",
        "experiments:study_export",
    }
    assert set(CHANGES) | set(FORMS) | OWNER_ONLY <= names


def test_an_outsider_gets_404_on_every_study_url_whatever_the_method(client, world):
    client.force_login(world["outsider"])
    for name, url in urls_of(world):
        # A wrong method is refused (405) before the study is looked up, so it says nothing
        # about whether the study exists; the right method gets 404.
        if name in CHANGES:
            assert client.get(url).status_code == 405, url
            assert client.post(url, CHANGES[name]).status_code == 404, url
        elif name in FORMS:
            assert client.get(url).status_code == 404, url
            assert client.post(url, FORMS[name]).status_code == 404, url
        else:
            assert client.get(url).status_code == 404, url
            assert client.post(url).status_code == 405, url
    world["study"].refresh_from_db()
    assert world["study"].status == Study.Status.LIVE


def test_an_anonymous_visitor_is_sent_to_log_in_from_every_study_url(client, world):
    for name, url in urls_of(world):
        # Each with the method its view takes, so a 405 for the wrong method cannot stand
        # in for the login redirect, and a POST that would change the study is tried too.
        response = client.post(url, CHANGES[name]) if name in CHANGES else client.get(url)
        if name in FORMS:
            posted = client.post(url, FORMS[name])
            assert posted.status_code == 302, url
            assert posted["Location"] == f"/accounts/login/?next={url}", url
        # Sent to log in, and brought back to the page afterwards.
        assert response.status_code == 302, url
        assert response["Location"] == f"/accounts/login/?next={url}", url
    world["study"].refresh_from_db()
    assert world["study"].status == Study.Status.LIVE
    assert not world["study"].viewers.filter(username="someone-else").exists()


def test_the_owner_and_a_colleague_can_read_every_study_url(client, world):
    for persona in ("owner", "colleague"):
        client.force_login(world[persona])
        for name, url in urls_of(world):
            if name in CHANGES or (persona == "colleague" and name in OWNER_ONLY):
                continue
            assert client.get(url).status_code == 200, (persona, url)


def test_a_colleague_is_refused_the_owner_only_pages(client, world):
    client.force_login(world["colleague"])
    for name, url in urls_of(world):
        if name in OWNER_ONLY:
            response = client.get(url)
            assert response.status_code == 403, url
            assert (
                world["study"].rater_sessions.first().external_id not in response.content.decode()
            )


def change_url(world, name: str) -> str:
    """The URL of a view that changes the study, or one of its raters."""
    study, rater = world["args"]["study"], world["args"]["rater"]
    try:
        return reverse(name, kwargs={"study": study})
    except NoReverseMatch:
        return reverse(name, kwargs={"study": study, "rater": rater})


def test_a_colleague_cannot_change_anything(client, world):
    client.force_login(world["colleague"])
    for name, data in {**CHANGES, **FORMS}.items():
        url = change_url(world, name)
        assert client.post(url, data).status_code == 403, url
    study = world["study"]
    study.refresh_from_db()
    assert study.status == Study.Status.LIVE
    assert study.instructions == ""
    assert list(study.viewers.values_list("username", flat=True)) == ["colleague"]
    assert study.exclude_fast_streak is None
    assert not study.rater_sessions.filter(status="excluded").exists()
    # The owner can: the same requests change the study.
    client.force_login(world["owner"])
    for name, data in {**CHANGES, **FORMS}.items():
        client.post(change_url(world, name), data)
    study.refresh_from_db()
    assert study.status == Study.Status.CLOSED
    assert study.instructions == "Changed by someone who may not."
    assert set(study.viewers.values_list("username", flat=True)) == {"colleague", "someone-else"}
    assert study.exclude_fast_streak == 5
    excluded = study.rater_sessions.get(public_id=world["args"]["rater"])
    assert (excluded.status, excluded.excluded_reason) == ("excluded", "Not yours to say.")
