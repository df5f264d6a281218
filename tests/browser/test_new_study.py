"""A researcher creates a study in the browser: fills in the New study form (a zip for one
model, image files for another, added with "Add another model"), watches the import's progress
bar move, reads the summary with every refused file, sets the study's texts and pay, and sees
what a failed import says. Screenshots go to /tmp/shots/ so that people can look at the pages."""

import io
import time
import zipfile
from pathlib import Path

import pytest

from experiments.models import Image, Study, StudyImport
from experiments.services.imports import uploads
from tests.factories import user_make
from tests.pictures import SMALL, pictures

pytestmark = [pytest.mark.browser]

PASSWORD = "pw-for-tests-1"  # tests.factories.user_make's
SHOTS = Path("/tmp/shots")
# Long enough for the page's once-a-second polls to see the bar move several times.
STEP_S = 0.03


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload(name: str, data: bytes) -> dict:
    kind = "application/zip" if name.endswith(".zip") else "image/png"
    return {"name": name, "mimeType": kind, "buffer": data}


def log_in(page, base_url: str, user, path: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={path}")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{path}")


def fill_study(page, name: str) -> None:
    page.fill("#id_name", name)
    page.select_option("#id_method", "inf")
    for parameter, value in SMALL.items():
        page.fill(f"#id_{parameter}", str(value))


@pytest.fixture
def slow_import(monkeypatch):
    """Every image stored takes STEP_S longer: the import runs in this process's thread."""
    create = uploads.study_create

    def slowly(**kwargs):
        progress = kwargs["progress"]

        def step(done, total):
            time.sleep(STEP_S)
            progress(done, total)

        return create(**{**kwargs, "progress": step})

    monkeypatch.setattr(uploads, "study_create", slowly)


def test_a_researcher_creates_a_study_watches_its_import_and_sets_its_texts(
    live_server_url, page, slow_import
):
    SHOTS.mkdir(exist_ok=True)
    ada = user_make("ada")
    log_in(page, live_server_url, ada, "/")
    page.get_by_role("link", name="New study").click()
    page.wait_for_url("**/studies/new/")

    fill_study(page, "FFHQ faces")
    real = {
        **pictures(150, seed=0),
        "notes.txt": b"not a picture",
        "empty.png": b"",
        "zz-copy.png": pictures(1, seed=0)["img000.png"],
    }
    page.set_input_files("#id_real", [upload("real.zip", zip_bytes(real))])
    page.set_input_files(
        "#id_model-0-images", [upload("stylegan.zip", zip_bytes(pictures(100, seed=1000)))]
    )
    # The second row exists without JavaScript; the button adds a third, left empty.
    page.fill("#id_model-1-name", "progan")
    page.set_input_files(
        "#id_model-1-images",
        [upload(name, data) for name, data in pictures(30, seed=2000).items()],
    )
    page.get_by_role("button", name="Add another model").click()
    assert page.locator("[data-model-row]").count() == 3
    assert page.input_value("input[name=model-TOTAL_FORMS]") == "3"
    page.screenshot(path=str(SHOTS / "new-study-form.png"), full_page=True)

    page.get_by_role("button", name="Create the study").click()
    page.wait_for_url("**/studies/imports/*/")
    bar = page.locator("#import-bar")
    seen: list[int] = []
    shot = False
    deadline = time.monotonic() + 60
    while not page.locator("#import-summary").is_visible():
        assert time.monotonic() < deadline, f"the import did not finish; the bar showed {seen}"
        if bar.count():
            value = bar.get_attribute("aria-valuenow")
            total = bar.get_attribute("aria-valuemax")
            if value is not None and (not seen or seen[-1] != int(value)):
                seen.append(int(value))
            if not shot and value and 0 < int(value) < int(total):
                page.screenshot(path=str(SHOTS / "new-study-progress.png"), full_page=True)
                shot = True
        time.sleep(0.05)
    # Every file whose header reads, the copy too (it is refused once normalised); no masks.
    total = 151 + 100 + 30
    moving = [value for value in seen if 0 < value < total]
    assert len(moving) >= 2, f"the bar moved fewer than twice before the summary: {seen}"
    assert moving == sorted(moving)

    job = StudyImport.objects.get()
    assert job.status == StudyImport.Status.DONE and job.total == total
    study = Study.objects.get()
    assert set(study.models.values_list("name", flat=True)) == {"stylegan", "progan"}
    assert Image.objects.filter(study=study, model__name="progan").count() == 30
    summary = page.text_content("#import-summary")
    assert "Model stylegan: 100 fakes for the task" in summary
    rows = page.locator("#refused-files tbody tr")
    assert rows.count() == 3
    refused = {rows.nth(i).locator("td").nth(0).text_content() for i in range(3)}
    assert refused == {"real.zip/notes.txt", "real.zip/empty.png", "real.zip/zz-copy.png"}
    assert "Leak audit:" in page.text_content("#audit")
    page.screenshot(path=str(SHOTS / "new-study-summary.png"), full_page=True)

    # The texts and pay, from the summary's link: a bad amount first.
    page.get_by_role("link", name="texts and pay").click()
    page.wait_for_url(f"**/studies/{study.public_id}/texts")
    assert "No consent text of the study's own is stored" in page.text_content("#texts-read")
    page.screenshot(path=str(SHOTS / "study-texts.png"), full_page=True)
    page.fill("#id_pay_base", "1.505")
    page.fill("#id_pay_per_correct", "0.02")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("#problems")
    assert "more than two decimals" in page.text_content("[for=id_pay_base] ~ .form-error")
    page.screenshot(path=str(SHOTS / "study-texts-problems.png"), full_page=True)
    page.fill("#id_pay_base", "1.50")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("text=Saved: raters now see these texts and this pay.")
    study.refresh_from_db()
    assert (study.pay_base_cents, study.pay_per_correct_cents) == (150, 2)

    # A failed import: its problems, one per line, and the way back.
    page.goto(f"{live_server_url}/studies/new/")
    fill_study(page, "Too few")
    page.set_input_files("#id_real", [upload("real.zip", zip_bytes(pictures(4, seed=0)))])
    page.set_input_files(
        "#id_model-0-images", [upload("stylegan.zip", zip_bytes(pictures(1, seed=9)))]
    )
    page.get_by_role("button", name="Create the study").click()
    page.wait_for_selector("#import-problems")
    problems = page.locator("#problems li")
    assert problems.count() == 1
    assert "stylegan.zip: 1 usable images, but one rater needs 3" in problems.text_content()
    assert Study.objects.count() == 1
    page.screenshot(path=str(SHOTS / "new-study-failed.png"), full_page=True)
    page.get_by_role("link", name="Back to the form").click()
    page.wait_for_url("**/studies/new/")
