"""The admin's "Import a study from zip files" page: a staff researcher uploads zips and gets
the study and its summary; a bad zip shows what is wrong and creates nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from experiments.models import GenerativeModel, Image, Study
from experiments.services.imports.uploads import FORM_PARAMETERS
from tests.factories import user_make
from tests.pictures import SMALL, pictures, stored_files, zipped

pytestmark = pytest.mark.django_db

URL = "/admin/experiments/study/import/"


def form_data(**overrides) -> dict:
    """Every field of the form as a browser would post it: the study's defaults, SMALL."""
    data = {"name": "Zipped", "method": "inf", "status": "draft", "masks": 20}
    for name in FORM_PARAMETERS:
        default = Study._meta.get_field(name).get_default()
        value = SMALL.get(name, default)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else value  # an empty box
    data.update(overrides)
    return data


@pytest.fixture
def researcher(client):
    client.force_login(user_make(is_staff=True, is_superuser=True))
    return client


def test_the_study_list_links_to_the_import_page(researcher):
    page = researcher.get(reverse("admin:experiments_study_changelist"))
    assert reverse("admin:experiments_study_import") == URL
    assert f'href="{URL}"' in page.content.decode()
    assert "Import a study from zip files" in page.content.decode()


def test_the_import_page_shows_its_form(researcher):
    page = researcher.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    for field in ("real_zip", "model_zips", "qualification_zip", "time_trials_per_block"):
        assert f'name="{field}"' in html


def test_a_researcher_imports_a_study_from_zips_and_sees_the_summary(researcher):
    real = {**pictures(4, seed=0, fmt="JPEG"), "notes.txt": b"not a picture"}
    response = researcher.post(
        URL,
        form_data(
            real_zip=zipped(real, "real.zip"),
            model_zips=[
                zipped(pictures(4, seed=100), "stylegan.zip"),
                zipped(pictures(3, seed=200, folder="progan_out/"), "progan.zip"),
            ],
        ),
    )
    html = response.content.decode()
    assert response.status_code == 200, html
    study = Study.objects.get()
    assert (study.name, study.method, study.qualification_trials) == ("Zipped", "inf", 2)
    assert set(study.models.values_list("name", flat=True)) == {"stylegan", "progan"}
    assert Image.objects.filter(study=study, is_real=True).count() == 4
    assert Image.objects.filter(study=study, model__name="progan").count() == 3
    assert "The study was created" in html
    assert "Model stylegan: 4 fakes for the task" in html
    # Problems name the zip, not the server's temporary folder.
    assert "real.zip/notes.txt: not an image" in html
    assert "hype-import-" not in html
    assert "Leak audit:" in html
    assert reverse("admin:experiments_study_change", args=[study.pk]) in html


def test_qualification_fakes_come_in_one_folder_per_model(researcher):
    qualification = {
        **pictures(1, seed=300, folder="stylegan/"),
        **pictures(1, seed=400, folder="progan/"),
    }
    response = researcher.post(
        URL,
        form_data(
            real_zip=zipped(pictures(4, seed=0), "real.zip"),
            model_zips=[
                zipped(pictures(2, seed=100), "stylegan.zip"),
                zipped(pictures(2, seed=200), "progan.zip"),
            ],
            qualification_zip=zipped(qualification, "qualification.zip"),
        ),
    )
    assert response.status_code == 200, response.content.decode()
    reserved = Image.objects.filter(role=Image.Role.QUALIFICATION)
    assert reserved.filter(is_real=True).count() == 1
    assert reserved.filter(is_real=False).count() == 2


def test_a_file_that_is_not_a_zip_is_reported_and_creates_nothing(researcher):
    response = researcher.post(
        URL,
        form_data(
            real_zip=SimpleUploadedFile("real.zip", b"this is not a zip"),
            model_zips=[zipped(pictures(4, seed=100), "stylegan.zip")],
        ),
    )
    assert response.status_code == 400
    assert "real.zip: not a zip file" in response.content.decode()
    assert not Study.objects.exists() and not GenerativeModel.objects.exists()
    assert stored_files() == []


def test_a_model_zip_with_too_few_images_is_reported_and_creates_nothing(researcher):
    response = researcher.post(
        URL,
        form_data(
            real_zip=zipped(pictures(4, seed=0), "real.zip"),
            model_zips=[zipped(pictures(1, seed=100), "stylegan.zip")],
        ),
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "The import failed and created nothing" in html
    assert "stylegan.zip: 1 usable images, but one rater needs 3" in html
    assert not Study.objects.exists() and not Image.objects.exists()
    assert stored_files() == []


def test_a_zip_that_climbs_out_of_its_folder_is_refused(researcher):
    evil = {**pictures(4, seed=0), "../../evil.png": pictures(1, seed=9)["img000.png"]}
    response = researcher.post(
        URL,
        form_data(
            real_zip=zipped(evil, "real.zip"),
            model_zips=[zipped(pictures(4, seed=100), "stylegan.zip")],
        ),
    )
    assert response.status_code == 400
    assert (
        "real.zip: unsafe path &#x27;../../evil.png&#x27; in the zip" in response.content.decode()
    )
    assert not Study.objects.exists()


def test_two_zips_naming_the_same_model_are_refused(researcher):
    response = researcher.post(
        URL,
        form_data(
            real_zip=zipped(pictures(4, seed=0), "real.zip"),
            model_zips=[
                zipped(pictures(4, seed=100), "stylegan.zip"),
                zipped(pictures(4, seed=200), "stylegan.ZIP"),
            ],
        ),
    )
    assert response.status_code == 400
    assert "Two zips name the same model: stylegan." in response.content.decode()
    assert not Study.objects.exists()


def test_an_invalid_parameter_is_shown_on_the_form(researcher):
    response = researcher.post(
        URL,
        form_data(
            real_fraction=1.5,
            real_zip=zipped(pictures(4, seed=0), "real.zip"),
            model_zips=[zipped(pictures(4, seed=100), "stylegan.zip")],
        ),
    )
    assert response.status_code == 400
    assert "Ensure this value is less than or equal to 1.0." in response.content.decode()
    assert not Study.objects.exists()


def test_an_outsider_is_sent_to_the_login_page(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_staff_without_permission_to_add_studies_is_refused(client):
    client.force_login(user_make(is_staff=True))
    assert client.get(URL).status_code == 403
