"""The image gallery of a study: how often each fake fooled raters, counted by hand on a
small study, the galleries of the most and least convincing fakes, and the image files
behind the study's permissions (owner and colleague yes, outsider 404, anonymous to log in)."""

import pytest

from experiments.models import Answer, Block, RaterSession
from tests.factories import block_make, image_make, session_make, study_make, trial_make, user_make

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


def rater(study, model, status, answers, *, kind=Block.Kind.TASK):
    """A rater whose one block holds `answers`: (image, says real)."""
    session = session_make(study, model=model, status=status)
    block = block_make(session, kind=kind)
    for index, (image, says_real) in enumerate(answers):
        trial = trial_make(block, image=image, index=index)
        Answer.objects.create(
            trial=trial,
            response="real" if says_real else "fake",
            correct=says_real == image.is_real,
            rt_ms=500,
        )
    return session


@pytest.fixture
def study(owner, colleague):
    study = study_make(owner=owner, models=("alpha", "beta"), name="Faces")
    study.viewers.add(colleague)
    alpha, beta = study.models.get(name="alpha"), study.models.get(name="beta")
    study.a1, study.a2, study.a3 = (image_make(study, model=alpha) for _ in range(3))
    study.b1 = image_make(study, model=beta)
    study.r1, study.r2 = image_make(study), image_make(study)
    a1, a2, a3, b1, r1, r2 = study.a1, study.a2, study.a3, study.b1, study.r1, study.r2
    done = Status.COMPLETED
    rater(study, alpha, done, [(a1, True), (a2, False), (r1, False), (r2, True)])
    rater(study, alpha, done, [(a1, True), (a2, True), (r1, True), (r2, True)])
    rater(study, alpha, Status.IN_TASK, [(a1, True), (a3, False)])
    # Not counted: a rater who abandoned, and the qualification.
    rater(study, alpha, Status.ABANDONED, [(a1, False), (a2, False), (r1, False)])
    qualifying = rater(
        study, beta, Status.IN_TASK, [(a1, False), (r1, False)], kind="qualification"
    )
    task = block_make(qualifying, index=1)
    trial = trial_make(task, image=b1, index=2, position=0)
    Answer.objects.create(trial=trial, response="real", correct=False, rt_ms=500)
    return study


def gallery_url(study, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/studies/{study.public_id}/images/" + (f"?{query}" if query else "")


def file_url(study, image):
    return f"/studies/{study.public_id}/images/{image.public_id}"


def by_model(response):
    return {entry["model"].name: entry for entry in response.context["models"]}


def counts(entry):
    return {t.image.public_id: (t.answered, t.wrong) for t in entry["table"]}


# --- Counting --------------------------------------------------------------------------------


def test_fooled_counts_come_from_task_answers_of_completed_and_in_task_raters(client, owner, study):
    client.force_login(owner)
    models = by_model(client.get(gallery_url(study)))
    assert counts(models["alpha"]) == {
        study.a1.public_id: (3, 3),
        study.a2.public_id: (2, 1),
        study.a3.public_id: (1, 0),
    }
    assert (models["alpha"]["answered"], models["alpha"]["fooled"]) == (6, 4)
    assert models["alpha"]["rate"] == "66.7%"
    assert counts(models["beta"]) == {study.b1.public_id: (1, 1)}


def test_real_images_called_fake_are_summarised(client, owner, study):
    client.force_login(owner)
    response = client.get(gallery_url(study))
    reals = response.context["reals"]
    assert (reals["answered"], reals["called_fake"], reals["rate"]) == (4, 1, "25.0%")
    html = response.content.decode()
    assert "Called fake in <strong>25.0%</strong> of 4 answers" in html


def test_the_page_says_which_answers_it_counts_and_the_ranking_minimum(client, owner, study):
    client.force_login(owner)
    html = client.get(gallery_url(study)).content.decode()
    assert "<strong>completed</strong>" in html and "<strong>in the task now</strong>" in html
    assert "qualification answers and raters who abandoned or were excluded are left out" in html
    assert 'answered at least <strong id="min-answers">5</strong> times' in html
    assert "No fake of this model has 5 answers yet." in html


def test_the_galleries_rank_only_fakes_with_enough_answers(client, owner, study):
    client.force_login(owner)
    response = client.get(gallery_url(study, min=2))
    alpha = by_model(response)["alpha"]
    galleries = {key: [t.image for t in tallies] for key, _, _, tallies in alpha["galleries"]}
    assert galleries["most"] == [study.a1, study.a2]
    assert galleries["least"] == []  # a3 has one answer; a1 and a2 are already shown
    html = response.content.decode()
    section = html[html.index('data-model="alpha"') : html.index('data-model="beta"')]
    gallery = section[section.index('class="gallery gallery-most"') :].split("</ol>")[0]
    assert gallery.index(study.a1.public_id) < gallery.index(study.a2.public_id)
    assert study.a3.public_id not in gallery
    assert "<strong>100%</strong> fooled" in gallery and "3 of 3" in gallery


def test_with_a_minimum_of_one_the_least_convincing_fake_is_shown(client, owner, study):
    client.force_login(owner)
    alpha = by_model(client.get(gallery_url(study, min=1)))["alpha"]
    galleries = {key: [t.image for t in tallies] for key, _, _, tallies in alpha["galleries"]}
    assert galleries["most"] == [study.a1, study.a2, study.a3]
    assert galleries["least"] == []
    reals = client.get(gallery_url(study, min=1)).context["reals"]
    assert [t.image for t in reals["most"]] == [study.r1, study.r2]


def test_a_nonsense_minimum_falls_back_to_the_default(client, owner, study):
    client.force_login(owner)
    assert client.get(gallery_url(study, min="lots")).context["min_answers"] == 5
    assert client.get(gallery_url(study, min="-3")).context["min_answers"] == 1


def test_images_are_shown_through_the_researchers_url_not_the_raters(client, owner, study):
    client.force_login(owner)
    html = client.get(gallery_url(study, min=1)).content.decode()
    assert f'src="{file_url(study, study.a1)}"' in html
    assert "/rate/image/" not in html and "/media/" not in html


# --- Who sees what ---------------------------------------------------------------------------


def test_the_owner_and_a_colleague_see_the_gallery_and_the_files(client, owner, colleague, study):
    for user in (owner, colleague):
        client.force_login(user)
        assert client.get(gallery_url(study)).status_code == 200
        response = client.get(file_url(study, study.a1))
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert response["Cache-Control"] == "private, max-age=3600"
        study.a1.file.open("rb")
        assert response.content == study.a1.file.read()
        study.a1.file.close()


def test_an_outsider_gets_404_on_the_gallery_and_every_file(client, outsider, study):
    client.force_login(outsider)
    assert client.get(gallery_url(study)).status_code == 404
    for image in (study.a1, study.r1):
        assert client.get(file_url(study, image)).status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(client, study):
    for url in (gallery_url(study), file_url(study, study.a1)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_an_image_of_another_study_is_not_served_under_this_one(client, owner, study):
    other = study_make(owner=owner, models=("m",))
    elsewhere = image_make(other, model=other.models.get())
    client.force_login(owner)
    assert client.get(file_url(study, elsewhere)).status_code == 404
    assert client.get(file_url(other, elsewhere)).status_code == 200


def test_the_colleague_cannot_change_anything_here(client, colleague, study):
    client.force_login(colleague)
    assert client.post(gallery_url(study)).status_code == 405
    assert client.post(file_url(study, study.a1)).status_code == 405
