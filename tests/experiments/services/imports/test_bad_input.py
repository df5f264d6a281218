"""Bad input to an import: unusable files are skipped and reported by name with a reason; a
folder that cannot serve one rater fails the import, listing every problem, and leaves nothing
behind: no study, no model, no image row, no stored file."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from experiments.models import GenerativeModel, Image, Study
from experiments.services.imports import masks, normalise
from experiments.services.imports.study import study_create
from experiments.services.problems import InputProblems
from tests.factories import user_make
from tests.pictures import SMALL, fake_folder, picture, plain_real_folder, save, stored_files

pytestmark = pytest.mark.django_db


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims a huge size in its header: what a decompression bomb looks like
    before it is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data + chunk(b"IEND", b""))
    return path


def run(tmp_path: Path, **overrides):
    """An import of good folders (4 reals, 4 fakes: enough for one rater) with `overrides`."""
    if "real_dir" not in overrides:
        overrides["real_dir"] = plain_real_folder(tmp_path)
    if "model_dirs" not in overrides:
        overrides["model_dirs"] = {"m": fake_folder(tmp_path, "m")}
    arguments = {"owner": user_make(), "name": "Bad input", "method": "inf", "params": SMALL}
    return study_create(**{**arguments, **overrides})


def assert_nothing_left_behind():
    assert not Study.objects.exists()
    assert not GenerativeModel.objects.exists()
    assert not Image.objects.exists()
    assert stored_files() == []


def reasons(report) -> dict[str, str]:
    return {Path(path).name: reason for path, reason in report.skipped}


# --- Skipped and reported -------------------------------------------------------------------


def test_a_text_file_renamed_jpg_is_skipped_as_not_an_image(tmp_path):
    real = plain_real_folder(tmp_path)
    (real / "notes.jpg").write_text("these are my notes, not a picture")
    report = run(tmp_path, real_dir=real)
    assert reasons(report)["notes.jpg"].startswith("not an image")
    assert report.real == 4


def test_a_zero_byte_file_is_skipped_as_empty(tmp_path):
    real = plain_real_folder(tmp_path)
    (real / "empty.png").write_bytes(b"")
    report = run(tmp_path, real_dir=real)
    assert reasons(report)["empty.png"] == "empty file (0 bytes)"


def test_a_truncated_file_is_skipped_as_unreadable(tmp_path):
    real = plain_real_folder(tmp_path)
    whole = save(picture((64, 64), seed=40), tmp_path / "whole.png").read_bytes()
    (real / "cut.png").write_bytes(whole[: len(whole) // 2])
    report = run(tmp_path, real_dir=real)
    assert reasons(report)["cut.png"].startswith("unreadable")


@pytest.mark.parametrize(
    ("width", "height"),
    [(30_000, 30_000), (10_000, 10_000)],
    ids=["over twice Pillow's limit (its error)", "over Pillow's limit (its warning)"],
)
def test_a_decompression_bomb_is_skipped_before_it_is_decoded(tmp_path, width, height):
    real = plain_real_folder(tmp_path)
    png_header_only(real / "bomb.png", width, height)
    report = run(tmp_path, real_dir=real)
    assert "decompression bomb" in reasons(report)["bomb.png"]
    assert report.real == 4


def test_an_image_over_the_import_pixel_limit_is_skipped_with_its_size(tmp_path, monkeypatch):
    monkeypatch.setattr(normalise, "MAX_PIXELS", 60 * 60)
    real = plain_real_folder(tmp_path)
    save(picture((80, 50), seed=60), real / "large.png")
    report = run(tmp_path, real_dir=real)
    assert reasons(report)["large.png"] == (
        "too large to decode safely: 80x50 = 4,000 pixels, over the limit of 3,600 "
        "(a possible decompression bomb)"
    )


def test_a_duplicate_is_stored_once_and_the_second_copy_reported(tmp_path):
    real = plain_real_folder(tmp_path)
    # The same pixels as a PNG and as a BMP: different files, one picture.
    save(picture(seed=80), real / "a.png")
    save(picture(seed=80), real / "b.bmp", format="BMP")
    report = run(tmp_path, real_dir=real)
    assert reasons(report)["b.bmp"].startswith(f"duplicate of {real / 'a.png'}")
    assert report.real == 5


def test_a_fake_that_is_also_a_real_image_is_reported_as_a_duplicate(tmp_path):
    real = plain_real_folder(tmp_path)
    fakes = fake_folder(tmp_path, "m", count=4)
    save(picture(seed=0), fakes / "copied_from_real.jpg", format="JPEG")
    report = run(tmp_path, real_dir=real, model_dirs={"m": fakes})
    assert "duplicate of" in reasons(report)["copied_from_real.jpg"]
    assert report.fakes == {"m": 4}


def test_hidden_files_are_reported_and_ignored(tmp_path):
    real = plain_real_folder(tmp_path)
    (real / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    report = run(tmp_path, real_dir=real)
    assert reasons(report)[".DS_Store"] == "hidden file or folder, ignored"


def test_mixed_modes_are_converted_not_refused(tmp_path):
    real = plain_real_folder(tmp_path, count=0)
    save(picture(seed=1).convert("L"), real / "gray.png")
    save(picture(seed=2).convert("RGBA"), real / "rgba.png")
    save(picture(seed=3).convert("CMYK"), real / "cmyk.jpg", format="JPEG")
    save(picture(seed=4).convert("I;16"), real / "deep.png")
    report = run(tmp_path, real_dir=real)
    assert report.skipped == [] and report.real == 4


# --- Fatal, and nothing left behind ---------------------------------------------------------


def test_an_empty_real_folder_fails_the_import(tmp_path):
    (tmp_path / "real").mkdir()
    with pytest.raises(InputProblems) as failure:
        run(tmp_path, real_dir=tmp_path / "real")
    assert failure.value.problems == [
        f"{tmp_path / 'real'}: the folder is empty (no file at its top level)"
    ]
    assert_nothing_left_behind()


def test_a_missing_folder_fails_the_import(tmp_path):
    with pytest.raises(InputProblems) as failure:
        run(tmp_path, model_dirs={"m": tmp_path / "nowhere"})
    assert failure.value.problems == [
        f"{tmp_path / 'nowhere'}: the folder of model m does not exist"
    ]
    assert_nothing_left_behind()


def test_a_model_with_fewer_fakes_than_one_rater_needs_fails_the_import(tmp_path):
    with pytest.raises(InputProblems) as failure:
        run(tmp_path, model_dirs={"m": fake_folder(tmp_path, "m", count=2)})
    # HYPE_inf with 4 trials (2 fakes) and a qualification of 2 (1 fake, all from model m).
    assert failure.value.problems == [
        f"{tmp_path / 'm'}: 2 usable images, but one rater needs 3: 2 for the task + its share "
        "of the qualification's fakes, 1"
    ]
    assert_nothing_left_behind()


def test_too_few_reals_once_unreadable_files_are_skipped_says_how_many_were_skipped(tmp_path):
    real = plain_real_folder(tmp_path, count=2)
    (real / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputProblems) as failure:
        run(tmp_path, real_dir=real)
    assert failure.value.problems == [
        f"{real}: 2 usable images (1 skipped), but one rater needs 3: 1 for the qualification "
        "+ 2 for the task"
    ]
    assert_nothing_left_behind()


def test_a_failure_found_after_files_were_stored_deletes_them(tmp_path):
    # Three readable fakes pass the first look, but two are the same picture: once
    # duplicates are dropped, two remain, one short; by then files had been written.
    fakes = fake_folder(tmp_path, "m", count=2)
    save(picture(seed=100), fakes / "again.bmp", format="BMP")
    with pytest.raises(InputProblems, match="2 usable images \\(1 skipped\\)"):
        run(tmp_path, model_dirs={"m": fakes})
    assert_nothing_left_behind()


def test_an_unexpected_error_midway_also_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(masks, "phase_scramble_full", broken)
    with pytest.raises(RuntimeError, match="disk is full"):
        run(tmp_path, method="time", masks=4)
    assert_nothing_left_behind()


def test_every_problem_is_listed_at_once(tmp_path):
    with pytest.raises(InputProblems) as failure:
        run(
            tmp_path,
            real_dir=tmp_path / "no_real_here",
            params={
                "real_fraction": 1.5,
                "threshold_tie_rule": "median",
                "colour": "blue",
                "staircase_start_ms": 50,
            },
            status="closed",
        )
    problems = "\n".join(failure.value.problems)
    assert "unknown study parameter(s): colour" in problems
    assert "status: 'closed' is not one of draft, live" in problems
    assert "real_fraction: Ensure this value is less than or equal to 1.0." in problems
    assert "threshold_tie_rule: Value 'median' is not a valid choice." in problems
    assert "staircase: it must start inside its bounds (floor <= start <= ceiling)" in problems
    assert f"{tmp_path / 'no_real_here'}: the real images folder does not exist" in problems
    assert len(failure.value.problems) == 6
    assert_nothing_left_behind()


def test_a_parameter_of_the_wrong_type_is_refused_clearly(tmp_path):
    with pytest.raises(InputProblems) as failure:
        run(tmp_path, params={**SMALL, "raters_per_model": "thirty"})
    assert failure.value.problems == ["raters_per_model: “thirty” value must be an integer."]


def test_a_display_size_out_of_range_is_refused(tmp_path):
    with pytest.raises(InputProblems, match="display size: \\(0, 64\\) must be two whole numbers"):
        run(tmp_path, display_size=(0, 64))
    assert_nothing_left_behind()


def test_a_hype_time_study_with_fewer_masks_than_a_trial_shows_is_refused(tmp_path):
    with pytest.raises(InputProblems) as failure:
        run(tmp_path, method="time", masks=2)
    assert failure.value.problems == [
        "masks: 2 generated, but every HYPE_time trial shows mask_count=4 of them; generate at "
        "least that many (or set mask_count)"
    ]


def test_qualification_fakes_must_be_in_one_subfolder_per_model(tmp_path):
    qualification = tmp_path / "qualification"
    fake_folder(qualification, "stylegan", count=1, seed=300)
    with pytest.raises(InputProblems) as failure:
        run(tmp_path, qualification_fakes_dir=qualification)
    assert failure.value.problems == [
        f"{qualification / 'stylegan'}: no model is named 'stylegan' (models: m); name each "
        "subfolder after a model",
        f"{qualification}: no subfolder for model 'm'; the qualification needs fakes from every "
        "model",
    ]
    assert_nothing_left_behind()


def test_an_unknown_method_and_a_blank_name_are_refused(tmp_path):
    with pytest.raises(InputProblems) as failure:
        run(tmp_path, method="fast", name="  ")
    problems = "\n".join(failure.value.problems)
    assert "method: Value 'fast' is not a valid choice." in problems
    assert "name: This field cannot be blank." in problems


def test_a_failed_import_can_simply_be_run_again(tmp_path):
    # A failed import really leaves nothing: the same import can simply be run again.
    for _ in range(2):
        with pytest.raises(InputProblems):
            run(
                tmp_path,
                model_dirs={"m": fake_folder(tmp_path, "m", count=1)},
                rng=np.random.default_rng(1),
            )
        assert_nothing_left_behind()
