"""Importing a study from folders: every stored image looks alike on disk whatever it came from
(format, size, mode, name, no metadata), Image.changes says what was done, masks are made.

The picture builders here are shared with the other import tests.
"""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from experiments.models import GenerativeModel, Image, Study
from experiments.services.imports.audit import study_audit
from experiments.services.imports.study import ImportReport, study_create
from tests.factories import user_make
from tests.pictures import SMALL, fake_folder, mixed_real_folder, picture, plain_real_folder, save

pytestmark = pytest.mark.django_db


# --- Pictures -------------------------------------------------------------------------------


def reopen(image: Image) -> PILImage.Image:
    with image.file.open("rb") as handle:
        picture = PILImage.open(io.BytesIO(handle.read()))
        picture.load()
    return picture


def import_mixed(tmp_path: Path, **overrides) -> ImportReport:
    arguments = {
        "owner": user_make(),
        "name": "Faces",
        "method": Study.Method.INF,
        "real_dir": mixed_real_folder(tmp_path),
        "model_dirs": {
            "stylegan": fake_folder(tmp_path, "stylegan", count=5),
            "progan": fake_folder(tmp_path, "progan", fmt="JPEG", seed=200),
        },
        "params": SMALL,
        "rng": np.random.default_rng(0),
    }
    return study_create(**{**arguments, **overrides})


# --- The tests ------------------------------------------------------------------------------


def test_every_stored_image_has_one_format_size_and_mode_whatever_it_was(tmp_path):
    report = import_mixed(tmp_path)
    images = list(Image.objects.filter(study=report.study))
    assert len(images) == 10 + 5 + 4 and report.skipped == []
    looks = set()
    for image in images:
        stored = reopen(image)
        looks.add((stored.format, stored.size, stored.mode))
        assert (image.width, image.height) == stored.size
    assert looks == {("PNG", (32, 32), "RGB")}
    assert report.display_size == (32, 32)
    assert (report.study.display_width, report.study.display_height) == (32, 32)


def test_no_metadata_survives_in_any_stored_file(tmp_path):
    report = import_mixed(tmp_path)
    for image in Image.objects.filter(study=report.study):
        stored = reopen(image)
        assert stored.info == {}, image.original_name
        assert dict(stored.getexif()) == {}
        assert stored.text == {}
        raw = Path(image.file.path).read_bytes()
        chunks = {
            raw[i + 4 : i + 8] for i in range(8, len(raw) - 8) if raw[i + 4 : i + 8].isalpha()
        }
        assert not {b"tEXt", b"iTXt", b"zTXt", b"iCCP", b"eXIf", b"pHYs"} & chunks


def test_a_stored_name_reveals_neither_the_original_name_the_model_nor_the_format(tmp_path):
    report = import_mixed(tmp_path)
    for image in Image.objects.filter(study=report.study):
        # Nothing but two random ids and the one extension every image of the study shares.
        # (Searching the name for "real" or "jpg" would be flaky: random ids contain them.)
        assert image.file.name == f"studies/{report.study.public_id}/{image.public_id}.png"


def test_the_researchers_file_names_are_kept_for_the_researcher(tmp_path):
    report = import_mixed(tmp_path)
    names = set(Image.objects.filter(study=report.study).values_list("original_name", flat=True))
    assert {"ffhq_00042.jpg", "seed0000.png", "seed0003.jpg"} <= names


def test_image_changes_record_what_normalisation_did(tmp_path):
    report = import_mixed(tmp_path)
    changes = {
        image.original_name: image.changes for image in Image.objects.filter(study=report.study)
    }
    exif_jpeg = changes["ffhq_00042.jpg"]
    assert exif_jpeg["orientation"] == 6
    assert exif_jpeg["format"] == "JPEG->PNG"
    assert {"exif", "gps", "jfif"} <= set(exif_jpeg["metadata_removed"])
    # 60x40 turned upright is 40x60: centre-cropped to a square, then shrunk to 32x32.
    assert exif_jpeg["cropped"] == [0, 10, 40, 50]
    assert exif_jpeg["resized"] == {"from": [40, 40], "to": [32, 32]}

    tagged_png = changes["ffhq_00043.png"]
    assert {"text:Software", "text:parameters", "icc_profile", "dpi"} <= set(
        tagged_png["metadata_removed"]
    )
    assert "sRGB" in tagged_png["colour_profile"]
    assert "format" not in tagged_png

    assert changes["ffhq_00045.png"]["mode"] == "I;16->RGB"
    assert changes["ffhq_00045.png"]["bit_depth"] == "16-bit values scaled to 8 bits"
    assert changes["ffhq_00047.jpg"]["mode"] == "CMYK->RGB"
    assert changes["ffhq_00048.png"]["mode"] == "RGBA->RGB"
    assert changes["ffhq_00048.png"]["transparency"] == "composited over grey (128, 128, 128)"
    assert changes["ffhq_00049.gif"]["format"] == "GIF->PNG"
    assert changes["ffhq_00049.gif"]["mode"] == "P->RGB"
    assert changes["ffhq_00044.webp"]["format"] == "WEBP->PNG"
    assert changes["ffhq_00050.tif"]["cropped"] == [15, 0, 65, 50]
    assert changes["ffhq_00051.bmp"] == {"format": "BMP->PNG", "metadata_removed": ["dpi"]}
    # A fake already at the display size, without metadata, is re-encoded and nothing else.
    assert changes["seed0000.png"] == {}


def test_the_exif_orientation_is_applied_before_cropping(tmp_path):
    # Stored sideways: red on the left, blue on the right. Orientation 6 means "rotate 90
    # degrees clockwise to view", which puts the left edge at the top.
    sideways = np.zeros((40, 60, 3), dtype=np.uint8)
    sideways[:, :30] = (220, 20, 20)
    sideways[:, 30:] = (20, 20, 220)
    exif = PILImage.Exif()
    exif[0x0112] = 6
    real = tmp_path / "real"
    save(PILImage.fromarray(sideways), real / "sideways.jpg", format="JPEG", exif=exif.tobytes())
    for i in range(3):
        save(picture(seed=i), real / f"r{i}.png")
    report = study_create(
        owner=user_make(),
        name="Upright",
        method="inf",
        real_dir=real,
        model_dirs={"m": fake_folder(tmp_path, "m")},
        params=SMALL,
    )
    image = Image.objects.get(study=report.study, original_name="sideways.jpg")
    upright = np.asarray(reopen(image)).astype(int)
    assert upright[2, 16, 0] > 150 and upright[2, 16, 2] < 80  # red at the top
    assert upright[29, 16, 2] > 150 and upright[29, 16, 0] < 80  # blue at the bottom


def test_sixteen_bit_values_are_scaled_not_clipped_to_white(tmp_path):
    report = import_mixed(tmp_path)
    gray = np.asarray(reopen(Image.objects.get(study=report.study, original_name="ffhq_00045.png")))
    # The 0-65535 ramp becomes a 0-255 ramp (mean about 128), not a white picture.
    assert 100 < gray.mean() < 156 and gray.min() < 20


def test_transparent_pixels_become_neutral_grey(tmp_path):
    report = import_mixed(tmp_path)
    rgba = np.asarray(reopen(Image.objects.get(study=report.study, original_name="ffhq_00048.png")))
    assert (rgba[:, :14] == 128).all()


def test_a_png_named_jpg_is_read_by_its_content(tmp_path):
    real = plain_real_folder(tmp_path)
    save(picture(seed=50), real / "actually_a_png.jpg", format="PNG")
    report = study_create(
        owner=user_make(),
        name="Content",
        method="inf",
        real_dir=real,
        model_dirs={"m": fake_folder(tmp_path, "m")},
        params=SMALL,
    )
    image = Image.objects.get(study=report.study, original_name="actually_a_png.jpg")
    assert "format" not in image.changes
    assert report.real == 5


def test_the_display_size_defaults_to_the_most_common_size_of_the_fakes(tmp_path):
    fakes = fake_folder(tmp_path, "m", count=3, size=(40, 30))
    save(picture((64, 64), seed=9), fakes / "big.png")
    report = study_create(
        owner=user_make(),
        name="Sizes",
        method="inf",
        real_dir=plain_real_folder(tmp_path, size=(64, 64)),
        model_dirs={"m": fakes},
        params=SMALL,
    )
    assert report.display_size == (40, 30)
    assert "the most common size of the fakes: 3 of 4" in report.summary()
    assert {(i.width, i.height) for i in Image.objects.filter(study=report.study)} == {(40, 30)}


def test_a_given_display_size_wins_and_enlarging_is_flagged(tmp_path):
    report = study_create(
        owner=user_make(),
        name="Sizes",
        method="inf",
        real_dir=plain_real_folder(tmp_path, size=(24, 24)),
        model_dirs={"m": fake_folder(tmp_path, "m", size=(64, 64))},
        params=SMALL,
        display_size=(48, 48),
    )
    assert report.display_size == (48, 48)
    real = Image.objects.filter(study=report.study, is_real=True).first()
    assert real.changes["enlarged"] is True
    assert "4 real images were smaller than 48x48 and were enlarged" in report.summary()


def test_the_audit_passes_on_an_imported_study(tmp_path):
    report = import_mixed(tmp_path, method=Study.Method.TIME, masks=5)
    audit = study_audit(study=report.study)
    failing = [c for c in audit.checks if c.verdict == "fail"]
    assert failing == []
    assert {c.name: c.verdict for c in audit.checks}["metadata"] == "pass"


def test_the_report_counts_each_model_and_the_summary_says_so(tmp_path):
    report = import_mixed(tmp_path)
    assert report.real == 10
    assert report.fakes == {"stylegan": 5, "progan": 4}
    assert report.qualification == {}
    assert report.masks == 0
    summary = report.summary()
    assert 'Study "Faces" (HYPE_inf (no time limit), draft)' in summary
    assert "Real images: 10 for the task" in summary
    assert "Model stylegan: 5 fakes for the task" in summary
    assert "Model progan: 4 fakes for the task" in summary
    assert "Masks: none (HYPE_inf trials are untimed and show no mask)" in summary
    assert "Skipped: nothing" in summary
    assert GenerativeModel.objects.filter(study=report.study).count() == 2


def test_study_parameters_and_status_are_set_from_the_arguments(tmp_path):
    report = import_mixed(
        tmp_path,
        params={**SMALL, "raters_per_model": 12, "feedback": "qualification"},
        status="live",
    )
    study = Study.objects.get(pk=report.study.pk)
    assert (study.raters_per_model, study.feedback, study.status) == (12, "qualification", "live")
    assert (study.qualification_trials, study.inf_trials) == (2, 4)


def test_a_hype_time_import_stores_masks_of_the_studys_size_and_format(tmp_path):
    report = import_mixed(tmp_path, method=Study.Method.TIME, masks=6)
    masks = Image.objects.filter(study=report.study, role=Image.Role.MASK)
    assert report.masks == masks.count() == 6
    for mask in masks:
        assert (mask.is_real, mask.model, mask.original_name) == (False, None, "")
        assert Path(mask.file.name).name == f"{mask.public_id}.png"
        stored = reopen(mask)
        assert (stored.format, stored.size, stored.mode, stored.info) == (
            "PNG",
            (32, 32),
            "RGB",
            {},
        )
        assert mask.changes["mask"] == "phase-scrambled"
        assert Image.objects.filter(study=report.study, public_id=mask.changes["source"]).exists()
    assert "Masks: 6 (phase-scrambled from the study's own images)" in report.summary()


def test_a_hype_inf_import_stores_no_masks(tmp_path):
    report = import_mixed(tmp_path, method=Study.Method.INF, masks=20)
    assert report.masks == 0
    assert not Image.objects.filter(study=report.study, role=Image.Role.MASK).exists()


def test_qualification_fakes_and_as_many_reals_are_kept_out_of_the_task(tmp_path):
    qualification = tmp_path / "qualification"
    fake_folder(qualification, "stylegan", count=2, seed=300)
    fake_folder(qualification, "progan", count=1, seed=400)
    report = import_mixed(
        tmp_path, qualification_fakes_dir=qualification, params={**SMALL, "qualification_trials": 4}
    )
    # A qualification of 4 shows 2 reals and 2 fakes, one from each of the two models.
    assert report.qualification == {"real": 2, "stylegan": 2, "progan": 1}
    assert report.real == 8
    assert report.fakes == {"stylegan": 5, "progan": 4}
    reserved = Image.objects.filter(study=report.study, role=Image.Role.QUALIFICATION)
    assert reserved.filter(is_real=True).count() == 2
    assert set(reserved.filter(is_real=False).values_list("original_name", flat=True)) == {
        "stylegan/seed0000.png",
        "stylegan/seed0001.png",
        "progan/seed0000.png",
    }
    assert "Real images: 8 for the task, 2 reserved for the qualification" in report.summary()


def test_files_one_subfolder_down_are_tagged_and_deeper_ones_ignored_and_reported(tmp_path):
    real = plain_real_folder(tmp_path)
    save(picture(seed=70), real / "more" / "tagged.png")
    save(picture(seed=71), real / "more" / "deeper" / "x.png")
    report = study_create(
        owner=user_make(),
        name="Flat",
        method="inf",
        real_dir=real,
        model_dirs={"m": fake_folder(tmp_path, "m")},
        params=SMALL,
    )
    assert (
        str(real / "more" / "deeper"),
        "a sub-folder of a sub-folder (1 files) ignored: only one level of sub-folders is read, "
        "as the tag of its images",
    ) in report.skipped
    assert report.real == 5
    tagged = Image.objects.get(study=report.study, original_name="more/tagged.png")
    assert list(tagged.tags.values_list("name", flat=True)) == ["more"]


def test_progress_is_reported_up_to_the_total(tmp_path):
    calls = []
    import_mixed(
        tmp_path,
        method=Study.Method.TIME,
        masks=4,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (10 + 5 + 4 + 4, 10 + 5 + 4 + 4)
    assert [done for done, _ in calls] == list(range(1, len(calls) + 1))


def test_the_same_seed_reserves_the_same_qualification_reals(tmp_path):
    def reserved(run: int, seed: int = 7) -> set[str]:
        qualification = tmp_path / f"q{run}"
        fake_folder(qualification, "m", count=1, seed=500)
        report = study_create(
            owner=user_make(),
            name="Seeded",
            method="inf",
            real_dir=plain_real_folder(tmp_path / f"r{run}", count=8),
            model_dirs={"m": fake_folder(tmp_path / f"f{run}", "m")},
            qualification_fakes_dir=qualification,
            params=SMALL,
            rng=np.random.default_rng(seed),
        )
        return set(
            Image.objects.filter(
                study=report.study, role="qualification", is_real=True
            ).values_list("original_name", flat=True)
        )

    # A qualification of 2 shows one real image: one of the 8 is kept out of the task.
    first = reserved(1)
    assert len(first) == 1
    assert reserved(2) == first
    # The seed, not the folder, decides which one.
    assert len(set().union(*(reserved(3 + seed, seed=seed) for seed in range(4)))) > 1


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (True, "every_trial"),
        (False, "none"),
        ("true", "every_trial"),
        ("qualification", "qualification"),
    ],
)
def test_an_older_parameter_files_feedback_true_or_false_still_means_every_trial_or_none(
    given, stored
):
    from experiments.services.imports.parameters import study_build

    owner = user_make()
    study, problems = study_build(
        owner=owner,
        name="Faces",
        method="time",
        status="draft",
        params={"feedback": given},
        display_size=None,
        masks=20,
    )
    assert problems == [] and study.feedback == stored


def test_a_feedback_value_that_is_neither_is_a_problem():
    from experiments.services.imports.parameters import study_build

    _, problems = study_build(
        owner=user_make(),
        name="Faces",
        method="time",
        status="draft",
        params={"feedback": "sometimes"},
        display_size=None,
        masks=20,
    )
    assert any(p.startswith("feedback:") for p in problems)
