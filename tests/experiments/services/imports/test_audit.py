"""The leak audit: it passes a study whose files differ only in their pictures, fails one whose
real and fake files differ in format, size, mode, metadata or name, and warns when stored file
sizes tell them apart; it compares the reals with each model's fakes separately."""

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from experiments.models import Image
from experiments.services.imports.audit import study_audit
from experiments.services.imports.study import study_create
from tests.factories import image_make, study_make, user_make
from tests.pictures import (
    SMALL,
    crafted,
    encoded,
    fake_folder,
    flat,
    noisy,
    picture,
    plain_real_folder,
    stored,
)

pytestmark = pytest.mark.django_db


def verdicts(report) -> dict[str, str]:
    return {check.name: check.verdict for check in report.checks}


def test_an_imported_study_passes_and_the_summary_lists_every_check(tmp_path):
    report = study_create(
        owner=user_make(),
        name="Clean",
        method="time",
        real_dir=plain_real_folder(tmp_path, count=6),
        # Fakes from JPEGs too: re-encoded JPEG pictures (smoothed by JPEG) make smaller PNGs
        # than noisy originals, and the file-size check would rightly warn.
        model_dirs={"m": fake_folder(tmp_path, "m", count=6, fmt="JPEG", seed=50)},
        params=SMALL,
        masks=4,
        rng=np.random.default_rng(0),
    )
    audit = study_audit(study=report.study)
    assert audit.reasons == [] and audit.verdict == "pass"
    # Stored as served: uncompressed, one length for the study (32 x 32 x 3 + 32 + 5 + 63).
    assert {image.file.size for image in report.study.images.exclude(role="mask")} == {3172}
    summary = audit.summary()
    assert summary.startswith(
        f'Leak audit of study "Clean" (public id {report.study.public_id}): PASS'
    )
    assert "12 images (6 real, 6 fake) and 4 masks, reopened from storage." in summary
    for line in (
        "[pass] format: every image is PNG",
        "[pass] dimensions: every image is 32x32",
        "[pass] mode: every image is RGB",
        "[pass] metadata: no stored file carries metadata",
        "[pass] file names: every file is named after its random public id, all .png",
        "[pass] masks: 4 masks, same format, size and mode as the images",
        "[pass] file sizes: every image is stored as served, uncompressed, 3,172 bytes: sizes "
        "say nothing",
    ):
        assert line in summary


def test_real_jpegs_with_exif_next_to_png_fakes_fail_on_format_and_metadata():
    exif = PILImage.Exif()
    exif[0x010F] = "Canon"
    study = crafted(
        real=[encoded(picture(seed=i), "JPEG", exif=exif.tobytes()) for i in range(4)],
        fake=[encoded(picture(seed=10 + i)) for i in range(4)],
        real_name="upload.jpg",
    )
    audit = study_audit(study=study)
    assert audit.verdict == "fail"
    assert (
        "format: real images: JPEG (4); fakes: PNG (4); this alone tells them apart"
        in audit.reasons
    )
    assert "metadata: 4 stored files still carry metadata: 4 real (dpi 4, exif 4)" in audit.reasons
    assert any(r.startswith("file names: the file name extensions differ") for r in audit.reasons)
    assert "Leak audit of study" in audit.summary() and ": FAIL" in audit.summary()


def test_different_sizes_for_real_and_fake_fail_on_dimensions():
    study = crafted(
        real=[encoded(picture((64, 48), seed=i)) for i in range(3)],
        fake=[encoded(picture(seed=10 + i)) for i in range(3)],
    )
    audit = study_audit(study=study)
    assert verdicts(audit)["dimensions"] == "fail"
    assert (
        "dimensions: real images: 64x48 (3); fakes: 32x32 (3); this alone tells them apart"
        in audit.reasons
    )


def test_a_colour_mode_that_differs_fails_on_mode():
    study = crafted(
        real=[encoded(picture(seed=i).convert("RGBA")) for i in range(3)],
        fake=[encoded(picture(seed=10 + i)) for i in range(3)],
    )
    assert verdicts(study_audit(study=study))["mode"] == "fail"


def test_fakes_in_much_larger_files_warn_and_say_what_the_stored_files_give_away():
    study = crafted(
        real=[encoded(flat(i)) for i in range(12)], fake=[encoded(noisy(i)) for i in range(12)]
    )
    audit = study_audit(study=study)
    assert audit.size_auc == 1.0 and audit.size_accuracy == 1.0
    assert verdicts(audit)["file sizes"] == "warn"
    (check,) = [c for c in audit.checks if c.name == "file sizes"]
    assert check.message.startswith(
        "Stored file sizes would let someone guess real vs fake 100% of the time with one size "
        "threshold (50% is chance): fake files are 31.1 times larger: median fake 3.2 kB, real "
        "0.1 kB"
    )
    # Files stored some other way than by an import: raters still get one length (converted
    # when served), and the audit says so.
    assert "24 of 24 files are not stored in the form they are served in" in check.message


def test_file_sizes_drawn_alike_give_nothing_away():
    study = crafted(
        real=[encoded(picture(seed=i)) for i in range(12)],
        fake=[encoded(picture(seed=100 + i)) for i in range(12)],
    )
    audit = study_audit(study=study)
    (check,) = [c for c in audit.checks if c.name == "file sizes"]
    assert check.verdict == "pass"
    assert check.message.startswith("File sizes give nothing away (")
    assert "would let someone guess" not in check.message
    assert abs(audit.size_auc - 0.5) < 0.1
    assert audit.size_accuracy < 0.75


def two_model_study(*, real, models: dict[str, list[bytes]], names: dict[str, str] | None = None):
    """A study of the given encoded reals and each model's encoded fakes, stored as they are."""
    study = study_make(method="inf", models=tuple(models))
    names = names or {}
    for data in real:
        stored(study, data, name=names.get("real", "upload.png"))
    for model in study.models.all():
        for data in models[model.name]:
            stored(study, data, model=model, name=names.get(model.name, "upload.png"))
    return study


def test_one_models_files_twenty_times_smaller_than_the_reals_warn_when_pooled_fakes_look_fine():
    # One model's files are larger than the reals, the other's 20+ times smaller: pooled, the
    # fakes are larger than a real one half of the time, just as chance would have it.
    study = two_model_study(
        real=[encoded(picture(seed=i)) for i in range(12)],
        models={
            "noisy-gan": [encoded(noisy(i)) for i in range(6)],
            "tiny-gan": [encoded(flat(i)) for i in range(6)],
        },
    )
    audit = study_audit(study=study)
    assert audit.size_auc == 0.5  # what the pooled audit saw, and passed
    tiny = audit.size_by_model["tiny-gan"]
    assert tiny.median_real / tiny.median_fake > 20
    assert tiny.auc == 0.0 and tiny.accuracy == 1.0 and tiny.telling
    assert audit.size_by_model["noisy-gan"].auc == 1.0
    (check,) = [c for c in audit.checks if c.name == "file sizes"]
    assert check.verdict == "warn" and audit.verdict == "warn"
    assert "real vs tiny-gan 100% of the time with one size threshold" in check.message
    assert "fake files are 28.4 times smaller: median fake 0.1 kB, real 2.9 kB" in check.message
    assert "real vs noisy-gan 100% of the time" in check.message
    assert "all fakes pooled" not in check.message  # the pool alone would have said nothing
    assert any(reason.startswith("file sizes: Stored file sizes") for reason in audit.reasons)
    assert set(audit.as_dict()["size_by_model"]) == {"noisy-gan", "tiny-gan"}


def test_one_models_jpegs_among_png_reals_and_pngs_fail_naming_that_model():
    study = two_model_study(
        real=[encoded(picture(seed=i)) for i in range(4)],
        models={
            "gan-a": [encoded(picture(seed=10 + i)) for i in range(4)],
            "gan-b": [encoded(picture(seed=20 + i), "JPEG") for i in range(4)],
        },
        names={"gan-b": "upload.jpg"},
    )
    audit = study_audit(study=study)
    assert (
        "format: real images: PNG (4); fakes of gan-b: JPEG (4); this alone tells them apart"
        in audit.reasons
    )
    assert "gan-a" not in next(r for r in audit.reasons if r.startswith("format"))
    names = next(r for r in audit.reasons if r.startswith("file names"))
    assert "fake of gan-b .jpg (4)" in names and "fake of gan-a .png (4)" in names


def test_metadata_in_one_models_files_is_counted_for_that_model():
    info = PILImage.Exif()
    info[0x0131] = "generator 1.0"
    study = two_model_study(
        real=[encoded(picture(seed=i)) for i in range(3)],
        models={
            "gan-a": [encoded(picture(seed=10 + i)) for i in range(3)],
            "gan-b": [encoded(picture(seed=20 + i), exif=info.tobytes()) for i in range(3)],
        },
    )
    audit = study_audit(study=study)
    assert "metadata: 3 stored files still carry metadata: 3 fake of gan-b (exif 3)" in (
        audit.reasons
    )


def test_a_file_stored_some_other_way_next_to_imported_ones_is_counted(tmp_path):
    report = study_create(
        owner=user_make(),
        name="Mostly clean",
        method="inf",
        real_dir=plain_real_folder(tmp_path, count=6),
        model_dirs={"m": fake_folder(tmp_path, "m", count=6, fmt="JPEG", seed=50)},
        params=SMALL,
        rng=np.random.default_rng(0),
    )
    image_make(report.study, data=encoded(picture(seed=99)), size=(32, 32))
    (check,) = [c for c in study_audit(study=report.study).checks if c.name == "file sizes"]
    assert "1 of 13 files are not stored in the form they are served in" in check.message


def test_a_file_named_after_the_researchers_file_fails_on_file_names():
    study = study_make()
    for i in range(3):
        image = stored(study, encoded(picture(seed=i)))
        stored(study, encoded(picture(seed=10 + i)), model=study.models.get())
        # What a naive import would do: keep the researcher's name.
        old = image.file.name
        image.file.save(f"ffhq_{i:05d}.png", ContentFile(image.file.read()), save=True)
        image.file.storage.delete(old)
    audit = study_audit(study=study)
    assert verdicts(audit)["file names"] == "fail"
    assert "3 stored files are not named after their random public id" in "".join(audit.reasons)


def test_a_stored_file_that_is_missing_fails_the_audit():
    study = crafted(
        real=[encoded(picture(seed=i)) for i in range(3)],
        fake=[encoded(picture(seed=10 + i)) for i in range(3)],
    )
    lost = Image.objects.filter(study=study).first()
    lost.file.storage.delete(lost.file.name)
    audit = study_audit(study=study)
    assert verdicts(audit)["readable"] == "fail"
    assert f"1 stored files cannot be opened, e.g. {lost.public_id}" in audit.reasons[0]


def test_a_hype_time_study_without_masks_gets_a_warning():
    study = crafted(
        real=[encoded(picture(seed=i)) for i in range(3)],
        fake=[encoded(picture(seed=10 + i)) for i in range(3)],
        method="time",
    )
    audit = study_audit(study=study)
    assert audit.verdict == "warn"
    assert audit.reasons == ["masks: no masks: HYPE_time trials will show no backward mask"]


def test_a_study_without_fakes_fails():
    study = crafted(real=[encoded(picture(seed=1))], fake=[])
    audit = study_audit(study=study)
    assert audit.reasons == ["images: the study has 1 real and 0 fake images; it needs both"]


def test_the_study_page_gets_plain_values():
    study = crafted(
        real=[encoded(flat(i)) for i in range(12)], fake=[encoded(noisy(i)) for i in range(12)]
    )
    values = study_audit(study=study).as_dict()
    assert values["verdict"] == "warn" and values["size_auc"] == 1.0
    assert values["size_by_model"]["model-a"]["accuracy"] == 1.0
    assert {c["name"] for c in values["checks"]} >= {"format", "metadata", "file sizes"}
