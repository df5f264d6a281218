"""The researcher's New study page and the background import it starts: a study from zips or
from image files, the import's page with its summary, audit and every refused file, its
progress, what bad input gets (the problems, and nothing created), and who sees an import.

The import runs in a thread with its own database connection, so these tests commit
(transactional database) and wait for the thread."""

import logging
import re
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from experiments.models import GenerativeModel, Image, Study, StudyImport
from experiments.services.imports import jobs, uploads
from experiments.services.imports.uploads import FORM_PARAMETERS
from tests.factories import study_make, user_make
from tests.pictures import SMALL, pictures, stored_files, zipped

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/studies/new/"


def form_data(*, real, models, **overrides) -> dict:
    """The form as a browser posts it: the defaults, SMALL, and one row per (name, files)."""
    data = {"name": "Faces", "method": "inf", "masks": 20, "real": real}
    for name in FORM_PARAMETERS:
        value = SMALL.get(name, Study._meta.get_field(name).get_default())
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else value  # an empty box
    data |= {
        "model-TOTAL_FORMS": len(models),
        "model-INITIAL_FORMS": 0,
        "model-MIN_NUM_FORMS": 0,
        "model-MAX_NUM_FORMS": 50,
    }
    for index, (name, files) in enumerate(models):
        data[f"model-{index}-name"] = name
        data[f"model-{index}-images"] = files
    data.update(overrides)
    return data


def files(pictures_by_name: dict[str, bytes]) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(name, data) for name, data in pictures_by_name.items()]


def finished(job: StudyImport) -> StudyImport:
    """The import once its thread is over."""
    for thread in threading.enumerate():
        if thread.name == f"hype-import-{job.public_id}":
            thread.join(60)
            assert not thread.is_alive(), "the import did not finish"
    job.refresh_from_db()
    return job


def scratch_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("hype-import-*"))


@pytest.fixture
def ada(client):
    user = user_make("ada")
    client.force_login(user)
    return user


def submit(client, data) -> StudyImport:
    """Post the form, follow nothing, and return the finished import it started."""
    response = client.post(URL, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    job = StudyImport.objects.get()
    assert response["Location"] == f"/studies/imports/{job.public_id}/"
    return finished(job)


# --- The form --------------------------------------------------------------------------


def test_the_form_gives_every_parameter_with_its_default_and_help_grouped_as_the_admin(client, ada):
    page = client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    for field in ("name", "method", "real", "qualification_zip", "display_width", "masks"):
        assert f'name="{field}"' in html, field
    assert 'name="model-0-name"' in html and 'name="model-0-images"' in html
    assert 'name="model-TOTAL_FORMS"' in html and "__prefix__" in html  # the row to copy
    for name in FORM_PARAMETERS:
        default = Study._meta.get_field(name).get_default()
        (tag,) = re.findall(rf'<(?:input|select)[^>]* name="{name}"[^>]*>', html)
        assert f'aria-describedby="id_{name}_helptext"' in tag, name
        if isinstance(default, bool):
            assert (" checked" in tag) == default, name
        elif tag.startswith("<select"):
            assert f'<option value="{default}" selected>' in html, name
        elif default is None:  # a rule that is off: an empty box
            assert "value=" not in tag, name
        else:
            assert f'value="{default}"' in tag, name
        help_text = re.search(rf'<p class="help" id="id_{name}_helptext">([^<]+)</p>', html)
        assert help_text and "Default: " in help_text[1], name
        assert len(help_text[1]) > len("Default: ...") + 5, f"{name} says only its default"
    assert "Share correct needed to pass the qualification. Default: 0.65." in html
    assert '<option value="mean" selected>' in html
    groups = ["Images and raters", "HYPE_time", "HYPE_inf", "Statistics"]
    positions = [
        html.index(f"<h2>{'Protocol: ' if i == 0 else ''}{g}</h2>") for i, g in enumerate(groups)
    ]
    assert positions == sorted(positions)
    section = html[positions[1] : positions[2]]
    assert 'name="staircase_step_down_ms"' in section and 'name="inf_trials"' not in section
    assert "module" in html and "js/new_study_form.js" in html


def test_anonymous_visitors_are_sent_to_log_in(client):
    for url in (URL, "/studies/imports/abc/", "/studies/imports/abc/progress"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"/accounts/login/?next={url}"


def test_the_studies_list_links_to_the_new_study_page(client, ada):
    html = client.get("/").content.decode()
    assert f'href="{URL}"' in html and "New study" in html


# --- Importing -------------------------------------------------------------------------


def test_a_researcher_creates_a_study_from_zips_and_sees_every_refused_file(client, ada):
    before = scratch_folders()
    real = {
        **pictures(4, seed=0, fmt="JPEG"),
        "notes.txt": b"not a picture",
        "empty.png": b"",
        "same.png": pictures(1, seed=0, fmt="JPEG")["img000.jpeg"],
    }
    job = submit(
        client,
        form_data(
            real=[zipped(real, "real.zip")],
            models=[
                ("", [zipped(pictures(4, seed=100), "stylegan.zip")]),
                ("", [zipped(pictures(3, seed=200, folder="progan_out/"), "progan.zip")]),
            ],
        ),
    )
    assert job.status == StudyImport.Status.DONE, job.problems
    study = job.study
    assert (study.owner, study.name, study.status, study.method) == (ada, "Faces", "draft", "inf")
    assert study.qualification_trials == 2
    assert set(study.models.values_list("name", flat=True)) == {"stylegan", "progan"}
    assert Image.objects.filter(study=study, is_real=True).count() == 4
    # Every file with a readable header, the duplicate too; a HYPE_inf study has no masks.
    assert job.done == job.total == 12
    assert job.finished_at is not None

    page = client.get(f"/studies/imports/{job.public_id}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "“Faces” is imported" in html
    assert "Model stylegan: 4 fakes for the task" in html
    assert "Changed, real images (4 stored)" in html  # a note
    assert "Leak audit:" in html and 'class="audit-verdict audit-' in html
    assert f'href="/studies/{study.public_id}/"' in html
    assert f'href="/studies/{study.public_id}/texts"' in html
    refused = html[html.index('id="refused-files"') :]
    assert "Refused files (3)" in html
    for file, reason in [
        ("real.zip/notes.txt", "not an image"),
        ("real.zip/empty.png", "empty file (0 bytes)"),
        ("real.zip/same.png", "duplicate of real.zip/img000.jpeg"),
    ]:
        assert f'<td class="file">{file}</td><td>{reason}' in refused, file
    # The refused files are the table's, not repeated in the summary; no temporary path.
    assert html.count("real.zip/notes.txt") == 1
    assert "hype-import-" not in html and "/tmp" not in html
    assert scratch_folders() == before


def test_a_researcher_creates_a_study_from_many_image_files(client, ada):
    real = files({**pictures(4, seed=0, fmt="JPEG"), "notes.txt": b"not a picture"})
    job = submit(
        client,
        form_data(
            real=real,
            models=[("stylegan", files(pictures(4, seed=100))), ("", [])],
            method="time",
            masks=4,
        ),
    )
    assert job.status == StudyImport.Status.DONE, job.problems
    study = job.study
    assert list(study.models.values_list("name", flat=True)) == ["stylegan"]
    assert Image.objects.filter(study=study, is_real=True).count() == 4
    assert Image.objects.filter(study=study, model__name="stylegan").count() == 4
    assert Image.objects.filter(study=study, role=Image.Role.MASK).count() == 4
    assert job.total == 4 + 4 + 4
    assert sorted(
        Image.objects.filter(study=study, is_real=True).values_list("original_name", flat=True)
    ) == [f"img00{i}.jpeg" for i in range(4)]
    html = client.get(f"/studies/imports/{job.public_id}/").content.decode()
    assert '<td class="file">real images/notes.txt</td><td>not an image' in html


def test_a_model_zip_may_be_given_another_name(client, ada):
    job = submit(
        client,
        form_data(
            real=[zipped(pictures(4, seed=0), "real.zip")],
            models=[("StyleGAN2", [zipped(pictures(4, seed=100), "run-17.zip")])],
        ),
    )
    assert list(job.study.models.values_list("name", flat=True)) == ["StyleGAN2"]


def test_qualification_fakes_come_as_a_zip_with_one_folder_per_model(client, ada):
    job = submit(
        client,
        form_data(
            real=[zipped(pictures(4, seed=0), "real.zip")],
            models=[
                ("", [zipped(pictures(2, seed=100), "stylegan.zip")]),
                ("", [zipped(pictures(2, seed=200), "progan.zip")]),
            ],
            qualification_zip=zipped(
                {
                    **pictures(1, seed=300, folder="stylegan/"),
                    **pictures(1, seed=400, folder="progan/"),
                },
                "qualification.zip",
            ),
        ),
    )
    assert job.status == StudyImport.Status.DONE, job.problems
    reserved = Image.objects.filter(study=job.study, role=Image.Role.QUALIFICATION)
    assert (reserved.filter(is_real=True).count(), reserved.filter(is_real=False).count()) == (1, 2)


# --- Progress --------------------------------------------------------------------------


def test_progress_is_read_while_the_import_runs_and_its_json_holds_no_file_name(
    client, ada, monkeypatch
):
    seen = []
    create = uploads.study_create

    def watched(**kwargs):
        progress = kwargs["progress"]

        def watching(done, total):
            progress(done, total)
            if done in (1, 5):
                row = StudyImport.objects.get()
                seen.append(jobs.study_import_progress(job=row))

        return create(**{**kwargs, "progress": watching})

    monkeypatch.setattr(uploads, "study_create", watched)
    job = submit(
        client,
        form_data(
            real=[zipped(pictures(4, seed=0), "real.zip")],
            models=[("", [zipped(pictures(4, seed=100), "stylegan.zip")])],
        ),
    )
    assert seen == [
        {"status": "running", "done": 1, "total": 8, "percent": 12},
        {"status": "running", "done": 5, "total": 8, "percent": 62},
    ]
    response = client.get(f"/studies/imports/{job.public_id}/progress")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {"status": "done", "done": 8, "total": 8, "percent": 100}


def test_the_running_page_shows_the_bar_and_the_script_that_polls(client, ada):
    job = StudyImport.objects.create(owner=ada, name="Faces", done=30, total=120)
    html = client.get(f"/studies/imports/{job.public_id}/").content.decode()
    assert "Importing “Faces”" in html
    assert 'role="progressbar"' in html and 'aria-valuenow="30"' in html
    assert 'aria-valuemax="120"' in html and "width: 25%" in html
    assert "30 of 120 images and masks stored (25%)" in html
    assert 'id="import-progress-data"' in html and "js/import_progress.js" in html
    assert f"/studies/imports/{job.public_id}/progress" in html


def test_an_import_still_running_after_an_hour_is_shown_as_interrupted(client, ada):
    job = StudyImport.objects.create(owner=ada, name="Faces", done=3, total=10)
    StudyImport.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=2))
    html = client.get(f"/studies/imports/{job.public_id}/").content.decode()
    assert "was interrupted" in html and "Back to the form" in html
    assert "js/import_progress.js" not in html
    progress = client.get(f"/studies/imports/{job.public_id}/progress").json()
    assert progress["status"] == "interrupted"
    job.refresh_from_db()
    assert job.status == StudyImport.Status.RUNNING  # computed when shown, not stored
    assert "Interrupted" in client.get(URL).content.decode()  # in the recent imports


# --- Bad input: the problems, and nothing created ----------------------------------------


def nothing_created():
    assert not Study.objects.exists()
    assert not GenerativeModel.objects.exists() and not Image.objects.exists()
    assert stored_files() == []


def test_no_real_images_get_the_form_back_with_the_problem(client, ada):
    data = form_data(real=[], models=[("", [zipped(pictures(4, seed=100), "stylegan.zip")])])
    del data["real"]
    response = client.post(URL, data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Please correct the fields marked below." in html
    assert "This field is required." in html.split('data-field="real"', 1)[1].split("</div>", 1)[0]
    assert not StudyImport.objects.exists()
    nothing_created()


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"display_width": 64}, "display size: give both the width and the height, or neither"),
        (
            {"staircase_start_ms": 50},
            "staircase: it must start inside its bounds (floor &lt;= start &lt;= ceiling)",
        ),
        ({"masks": 2, "method": "time"}, "masks: 2 generated, but every HYPE_time trial shows"),
    ],
)
def test_parameters_that_cannot_work_get_the_form_back_and_start_nothing(
    client, ada, overrides, problem
):
    data = form_data(
        real=[zipped(pictures(4, seed=0), "real.zip")],
        models=[("", [zipped(pictures(4, seed=100), "stylegan.zip")])],
        **overrides,
    )
    response = client.post(URL, data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "The import was not started:" in html and problem in html
    assert not StudyImport.objects.exists()
    nothing_created()


@pytest.mark.parametrize(
    ("real", "models", "problem"),
    [
        (
            lambda: [zipped(pictures(4, seed=0), "real.zip"), *files(pictures(1, seed=9))],
            lambda: [("", [zipped(pictures(4, seed=100), "stylegan.zip")])],
            "real images: give one zip, or image files, not both",
        ),
        (
            lambda: [zipped(pictures(4, seed=0), "real.zip")],
            lambda: [("", files(pictures(4, seed=100)))],
            "model 1: give the model a name (its images are files)",
        ),
        (
            lambda: [zipped(pictures(4, seed=0), "real.zip")],
            lambda: [
                ("gan", files(pictures(4, seed=100))),
                ("", [zipped(pictures(4, seed=200), "gan.zip")]),
            ],
            "models: two models have the same name: gan",
        ),
        (
            lambda: [zipped(pictures(4, seed=0), "real.zip")],
            lambda: [("stylegan", [])],
            "model stylegan: no images given",
        ),
        (
            lambda: [zipped(pictures(4, seed=0), "real.zip")],
            lambda: [],
            "models: give at least one model",
        ),
    ],
)
def test_uploads_of_the_wrong_shape_get_the_form_back_and_start_nothing(
    client, ada, real, models, problem
):
    before = scratch_folders()
    response = client.post(URL, form_data(real=real(), models=models()))
    assert response.status_code == 400
    assert problem in response.content.decode()
    assert not StudyImport.objects.exists()
    nothing_created()
    assert scratch_folders() == before


def test_a_form_without_its_model_rows_management_data_is_refused(client, ada):
    data = form_data(real=[zipped(pictures(4, seed=0), "real.zip")], models=[])
    del data["model-TOTAL_FORMS"]
    response = client.post(URL, data)
    assert response.status_code == 400
    assert "ManagementForm data is missing" in response.content.decode()
    assert not StudyImport.objects.exists()
    nothing_created()


def test_a_model_zip_with_too_few_images_fails_the_import_and_creates_nothing(client, ada):
    before = scratch_folders()
    job = submit(
        client,
        form_data(
            real=[zipped(pictures(4, seed=0), "real.zip")],
            models=[("", [zipped(pictures(1, seed=100), "stylegan.zip")])],
        ),
    )
    assert job.status == StudyImport.Status.FAILED
    assert job.study is None and job.finished_at is not None
    assert job.problems == [
        "stylegan.zip: 1 usable images, but one rater needs 3: 2 for the task + its share of "
        "the qualification's fakes, 1"
    ]
    nothing_created()
    assert scratch_folders() == before
    html = client.get(f"/studies/imports/{job.public_id}/").content.decode()
    assert "The import of “Faces” failed" in html
    assert "<li>stylegan.zip: 1 usable images, but one rater needs 3" in html
    assert f'href="{URL}"' in html and "Back to the form" in html


def test_a_file_that_is_not_a_zip_fails_the_import_and_creates_nothing(client, ada):
    job = submit(
        client,
        form_data(
            real=[SimpleUploadedFile("real.zip", b"this is not a zip")],
            models=[("", [zipped(pictures(4, seed=100), "stylegan.zip")])],
        ),
    )
    assert job.status == StudyImport.Status.FAILED
    assert job.problems == ["real.zip: not a zip file"]
    nothing_created()
    html = client.get(f"/studies/imports/{job.public_id}/").content.decode()
    assert "<li>real.zip: not a zip file</li>" in html


def test_every_problem_of_a_failed_import_is_listed_one_per_line(client, ada):
    job = submit(
        client,
        form_data(
            real=[zipped(pictures(1, seed=0), "real.zip")],
            models=[
                ("", [zipped(pictures(1, seed=100), "stylegan.zip")]),
                ("progan", files(pictures(1, seed=200))),
            ],
        ),
    )
    assert job.status == StudyImport.Status.FAILED
    assert len(job.problems) == 3
    assert [p.split(":")[0] for p in job.problems] == ["real.zip", "stylegan.zip", "progan"]
    html = client.get(f"/studies/imports/{job.public_id}/").content.decode()
    assert html.count("<li>") >= 3
    for problem in job.problems:
        assert f"<li>{problem.replace(chr(39), '&#x27;')}</li>" in html


def test_an_unexpected_error_is_recorded_as_failed_and_logged(client, ada, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(uploads, "study_create", broken)
    before = scratch_folders()
    with caplog.at_level(logging.ERROR, logger="experiments.services.imports.jobs"):
        job = submit(
            client,
            form_data(
                real=[zipped(pictures(4, seed=0), "real.zip")],
                models=[("", [zipped(pictures(4, seed=100), "stylegan.zip")])],
            ),
        )
    assert job.status == StudyImport.Status.FAILED and job.finished_at is not None
    (problem,) = job.problems
    assert "unexpected error (RuntimeError: disk on fire): nothing was created" in problem
    assert "server's log" in problem
    (record,) = [r for r in caplog.records if r.name == "experiments.services.imports.jobs"]
    assert record.exc_info is not None and job.public_id in record.getMessage()
    assert scratch_folders() == before
    assert job.public_id not in jobs._running
    nothing_created()


# --- Who sees an import ----------------------------------------------------------------


def test_only_its_owner_and_staff_see_an_import(client, ada):
    job = StudyImport.objects.create(owner=ada, name="Faces")
    pages = [f"/studies/imports/{job.public_id}/", f"/studies/imports/{job.public_id}/progress"]
    for url in pages:
        assert client.get(url).status_code == 200, url
    # A colleague who sees every study of ada's sees none of her imports.
    colleague = user_make("grace")
    study_make(owner=ada).viewers.add(colleague)
    for user in (colleague, user_make("outsider")):
        client.force_login(user)
        for url in pages:
            assert client.get(url).status_code == 404, (user, url)
        assert job.name not in client.get(URL).content.decode()
    client.force_login(user_make("staff", is_staff=True))
    for url in pages:
        assert client.get(url).status_code == 200, url
    assert client.get("/studies/imports/no-such-import/").status_code == 404


def test_the_import_pages_take_no_post(client, ada):
    job = StudyImport.objects.create(owner=ada, name="Faces")
    assert client.post(f"/studies/imports/{job.public_id}/").status_code == 405
    assert client.post(f"/studies/imports/{job.public_id}/progress").status_code == 405


def test_the_form_lists_the_researchers_recent_imports(client, ada):
    done = StudyImport.objects.create(owner=ada, name="Done one", status="done")
    StudyImport.objects.create(owner=user_make("bob"), name="Bob's")
    html = client.get(URL).content.decode()
    assert f'href="/studies/imports/{done.public_id}/"' in html and "Done one" in html
    assert "Bob&#x27;s" not in html


def test_the_progress_writer_writes_the_latest_count_at_most_twice_a_second(ada):
    """PostgreSQL's path (SQLite keeps the count in memory while the import's transaction
    holds its one write lock): the row gets the latest count, not every count."""
    job = StudyImport.objects.create(owner=ada, name="Faces")

    def row_done(value, within=3.0):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.done == value:
                return True
            time.sleep(0.02)
        return False

    writer = jobs._ProgressWriter(job.pk)
    try:
        writer.offer(1, 50)
        assert row_done(1)
        for done in range(2, 51):
            writer.offer(done, 50)
        job.refresh_from_db()
        assert job.done == 1  # not yet: PROGRESS_WRITE_S since the last write
        assert row_done(50) and job.total == 50
        # A finished import's row is never written over.
        StudyImport.objects.filter(pk=job.pk).update(status="done")
        writer.offer(7, 50)
        assert not row_done(7, within=jobs.PROGRESS_WRITE_S * 2)
    finally:
        writer.stop()
    assert not writer.thread.is_alive()
