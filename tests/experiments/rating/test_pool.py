"""The qualified pool (the paper's retainer): a rater who passed the qualification in one study
of a pool group skips it in the group's later studies for the group's number of days, and
takes it again after that. The dashboard shows how many raters the pool keeps."""

import csv
import io

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.utils import timezone

from experiments.models import Block, RaterSession, Study, StudyGroup
from experiments.rating.groups import pool_id, pool_kept, pool_size
from tests.factories import user_make
from tests.raters import RaterSocket, answer_for, is_real_of, live_study_make, time_passes

pytestmark = pytest.mark.django_db(transaction=True)

PID = "5f1e2d3c4b5a69788796a5b4"
DAYS = 7


def pool_studies(owner, count: int) -> list[Study]:
    group = StudyGroup.objects.create(
        owner=owner, name="Retainer", kind=StudyGroup.Kind.POOL, qualification_days=DAYS
    )
    studies = []
    for n in range(count):
        study = live_study_make(
            owner=owner,
            name=f"Study {n}",
            method=Study.Method.INF,
            qualification_trials=4,
            inf_trials=6,
            real=30,
            fakes_per_model=30,
        )
        study.group = group
        study.save(update_fields=["group"])
        studies.append(study)
    return studies


async def first_messages(
    study: Study, *, session_id: str
) -> tuple[Client, RaterSocket, dict, dict]:
    """A Prolific participant opens the study (a fresh browser each time) and says hello."""
    client = Client()
    params = {"PROLIFIC_PID": PID, "STUDY_ID": study.public_id[:10], "SESSION_ID": session_id}
    response = await sync_to_async(client.post)(
        f"/s/{study.public_id}/start", {"consent": "on", **params}
    )
    assert response.status_code == 302, response.content[:300]
    socket = RaterSocket(study, client)
    assert (await socket.open())[0]
    hello = await socket.hello()
    trial = await socket.until("trial")
    return client, socket, hello, trial


async def pass_qualification(socket: RaterSocket, trial: dict) -> dict:
    while trial["type"] == "trial" and trial["phase"] == "qualification":
        await socket.send({"type": "presented", "trial": trial["trial"]})
        is_real = await is_real_of(trial["trial"])
        await socket.send(answer_for(trial, says_real=is_real))  # every answer right
        await socket.until("ack")
        trial = await socket.until("trial", "finished")
    return trial


def landing_says_kept(study: Study) -> bool:
    """The landing page, opened by the Prolific participant in a fresh browser, says they go
    straight to the main task (and then does not offer the practice round)."""
    params = {"PROLIFIC_PID": PID, "STUDY_ID": study.public_id[:10], "SESSION_ID": "s-x"}
    page = Client().get(f"/s/{study.public_id}/", params).content.decode()
    kept = 'id="qualification-kept"' in page
    assert kept != ("practice round</strong> of" in page)
    return kept


def the_researcher_sees_where_it_was_kept_from(owner, study, earlier, earlier_study) -> None:
    """The raters page, the rater's page and raters.csv name the session it was kept from."""
    client = Client()
    client.force_login(owner)
    page = client.get(f"/studies/{study.public_id}/raters/").content.decode()
    assert f"kept from rater {earlier.public_id} in {earlier_study.name}" in page
    kept = RaterSession.objects.get(study=study)
    page = client.get(f"/studies/{study.public_id}/raters/{kept.public_id}/").content.decode()
    assert f"kept from rater {earlier.public_id} in {earlier_study.name}" in page
    rows = list(
        csv.DictReader(
            io.StringIO(
                b"".join(
                    client.get(f"/studies/{study.public_id}/export/raters.csv").streaming_content
                ).decode()
            )
        )
    )
    assert (rows[0]["qualification_kept_from_study"], rows[0]["qualification_kept_from_rater"]) == (
        earlier_study.public_id,
        earlier.public_id,
    )
    assert rows[0]["qualification_passed"] == ""  # not taken in this study


def all_time_passes(studies, *, days: float) -> None:
    for study in studies:
        time_passes(study, minutes=days * 24 * 60)


async def test_a_rater_who_passed_in_a_skips_it_in_b_within_the_window_and_takes_it_after():
    owner = await sync_to_async(user_make)()
    a, b, c = await sync_to_async(pool_studies)(owner, 3)

    _, socket, hello, trial = await first_messages(a, session_id="s-a")
    assert hello["phase"] == "qualification" and trial["phase"] == "qualification"
    trial = await pass_qualification(socket, trial)
    assert trial["phase"] == "task"
    await socket.close()
    passed = await sync_to_async(RaterSession.objects.get)(study=a)
    assert passed.qualified_at is not None
    assert await sync_to_async(pool_size)(a.group) == 1

    # Three days later, in study B: straight to the task, with the task's length only, as the
    # landing page says.
    await sync_to_async(all_time_passes)([a, b, c], days=3)
    assert await sync_to_async(landing_says_kept)(b)
    _, socket, hello, trial = await first_messages(b, session_id="s-b")
    await socket.close()
    assert (hello["phase"], trial["phase"]) == ("task", "task")
    assert hello["total"] == b.inf_trials
    kept = await sync_to_async(
        lambda: RaterSession.objects.select_related("qualification_from").get(study=b)
    )()
    assert kept.qualification_from_id == passed.pk and kept.status == RaterSession.Status.IN_TASK
    assert not await sync_to_async(
        Block.objects.filter(session=kept, kind=Block.Kind.QUALIFICATION).exists
    )()
    assert kept.qualified_at is None  # keeping a qualification does not extend it
    assert await sync_to_async(pool_size)(a.group) == 1
    await sync_to_async(the_researcher_sees_where_it_was_kept_from)(owner, b, passed, a)

    # Eight days after passing, in study C: the qualification again.
    await sync_to_async(all_time_passes)([a, b, c], days=5)
    assert await sync_to_async(pool_size)(a.group) == 0
    assert not await sync_to_async(landing_says_kept)(c)
    _, socket, hello, trial = await first_messages(c, session_id="s-c")
    await socket.close()
    assert (hello["phase"], trial["phase"]) == ("qualification", "qualification")
    assert hello["total"] == c.qualification_trials + c.inf_trials


async def test_a_failed_qualification_is_not_kept_in_the_pool():
    owner = await sync_to_async(user_make)()
    a, b = await sync_to_async(pool_studies)(owner, 2)
    _, socket, _, trial = await first_messages(a, session_id="s-a")
    while trial["type"] == "trial":  # every answer wrong
        await socket.send({"type": "presented", "trial": trial["trial"]})
        is_real = await is_real_of(trial["trial"])
        await socket.send(answer_for(trial, says_real=not is_real))
        await socket.until("ack")
        trial = await socket.until("trial", "finished")
    assert trial == {**trial, "type": "finished", "outcome": "failed_qualification"}
    await socket.close()
    _, socket, _, trial = await first_messages(b, session_id="s-b")
    await socket.close()
    assert trial["phase"] == "qualification"


def test_the_study_page_and_the_groups_page_show_the_pools_size(client):
    owner = user_make()
    a, b = pool_studies(owner, 2)
    for n in range(3):
        RaterSession.objects.create(
            study=a, model=a.models.first(), external_id=f"p{n}", qualified_at=timezone.now()
        )
    # The same rater passing again elsewhere in the pool is still one rater.
    RaterSession.objects.create(
        study=b, model=b.models.first(), external_id="p0", qualified_at=timezone.now()
    )
    client.force_login(owner)
    page = client.get(f"/studies/{b.public_id}/").content.decode()
    assert 'id="pool-size">3<' in page and "qualified pool" in page
    groups = client.get("/groups/").content.decode()
    assert f'id="pool-size-{a.group_id}">3<' in groups
    assert "Study 0" in groups and "Study 1" in groups


def test_a_link_rater_is_known_to_the_pool_by_their_browser_not_by_an_id_typed_in():
    owner = user_make()
    a, b = pool_studies(owner, 2)
    passed = RaterSession.objects.create(
        study=a,
        external_id="alice",
        source=RaterSession.Source.LINK,
        browser_id="browser-of-alice",
        qualified_at=timezone.now(),
    )
    assert pool_kept(b, external_id="", browser="browser-of-alice") == passed
    # Someone else typing "alice" into the link's form is not Alice.
    assert pool_id(source=RaterSession.Source.LINK, external_id="alice") == ""
    assert pool_kept(b, external_id="", browser="another-browser") is None
    # A Prolific id is the platform's own: it counts from any browser.
    assert pool_id(source=RaterSession.Source.PROLIFIC, external_id=PID) == PID
