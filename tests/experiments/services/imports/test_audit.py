"""The leak audit: it passes a study whose files differ only in their pictures, fails one whose
real and fake files differ in format, size, mode, metadata or name, and reports file sizes."""

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from experiments.models import Image
from experiments.services.imports.audit import study_audit
from experiments.services.imports.study import study_create
from tests.factories import study_make, user_make
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


def test_fakes_in_much_larger_files_are_reported_and_raters_cannot_see_it():
    study = crafted(
        real=[encoded(flat(i)) for i in range(12)], fake=[encoded(noisy(i)) for i in range(12)]
    )
    audit = study_audit(study=study)
    assert audit.size_auc == 1.0 and audit.size_accuracy == 1.0
    # Served padded to one length (tests/experiments/test_rater_leaks.py), so it passes...
    assert verdicts(audit)["file sizes"] == "pass"
    # ...and still says what the stored files would give away.
    (check,) = [c for c in audit.checks if c.name == "file sizes"]
    assert check.message.startswith(
        "Stored file sizes would let someone guess real vs fake 100% of the time with one size "
        "threshold (50% is chance): fake files are larger"
    )
    assert "every image is served padded to one length" in check.message


def test_file_sizes_drawn_alike_give_nothing_away():
    study = crafted(
        real=[encoded(noisy(i)) for i in range(12)],
        fake=[encoded(noisy(100 + i)) for i in range(12)],
    )
    audit = study_audit(study=study)
    # The check passes whatever the sizes say (raters are served padded files), so only its
    # message and the statistics tell alike from telling.
    (check,) = [c for c in audit.checks if c.name == "file sizes"]
    assert check.message.startswith("File sizes give nothing away")
    assert "would let someone guess" not in check.message
    assert abs(audit.size_auc - 0.5) < 0.1
    assert audit.size_accuracy < 0.75


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
    assert values["verdict"] == "pass" and values["size_auc"] == 1.0
    assert {c["name"] for c in values["checks"]} >= {"format", "metadata", "file sizes"}
