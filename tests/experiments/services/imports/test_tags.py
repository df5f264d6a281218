"""Images get their tags at import: from the sub-folder they sit in, and from tags.csv; a bad
tags.csv or sub-folder name fails the import with a line per problem, and leaves nothing."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from experiments.models import Image, ImageTag, Study
from experiments.services.imports.study import study_create
from experiments.services.problems import InputProblems
from tests.factories import user_make
from tests.pictures import SMALL, fake_folder, picture, plain_real_folder, save, stored_files

pytestmark = pytest.mark.django_db


def tagged(study: Study) -> dict[str, list[str]]:
    """original name (with "real:" or "<model>:" before it) -> its tags, for tagged images."""
    found: dict[str, list[str]] = {}
    for tag in ImageTag.objects.filter(image__study=study).select_related("image__model"):
        group = tag.image.model.name if tag.image.model else "real"
        found.setdefault(f"{group}:{tag.image.original_name}", []).append(tag.name)
    return {name: sorted(tags) for name, tags in sorted(found.items())}


def folders(root: Path) -> tuple[Path, Path]:
    """A real folder with two smiling faces in a sub-folder, and model m's with a smiling and
    a neutral sub-folder beside two untagged fakes."""
    real = plain_real_folder(root)
    save(picture(seed=60), real / "smiling" / "r_smile_0.png")
    save(picture(seed=61), real / "smiling" / "r_smile_1.png")
    fakes = fake_folder(root, "m")
    save(picture(seed=160), fakes / "smiling" / "f_smile.png")
    save(picture(seed=161), fakes / "neutral" / "f_neutral.png")
    return real, fakes


def run(real: Path, fakes: Path, **options):
    return study_create(
        owner=user_make(),
        name="Tagged",
        method="inf",
        real_dir=real,
        model_dirs={"m": fakes},
        params=SMALL,
        **options,
    )


def assert_nothing_left_behind() -> None:
    assert Study.objects.count() == 0 and Image.objects.count() == 0
    assert ImageTag.objects.count() == 0
    assert stored_files() == []


def test_a_sub_folder_tags_its_images_with_its_name_and_top_level_files_have_no_tag(tmp_path):
    report = run(*folders(tmp_path))
    assert tagged(report.study) == {
        "m:neutral/f_neutral.png": ["neutral"],
        "m:smiling/f_smile.png": ["smiling"],
        "real:smiling/r_smile_0.png": ["smiling"],
        "real:smiling/r_smile_1.png": ["smiling"],
    }
    assert report.real == 6 and report.fakes == {"m": 6}
    assert "Tags (images): neutral (1), smiling (3)." in report.summary()


def test_the_layout_without_sub_folders_imports_as_before_with_no_tag(tmp_path):
    report = run(plain_real_folder(tmp_path), fake_folder(tmp_path, "m"))
    assert ImageTag.objects.count() == 0 and report.skipped == []
    assert "Tags" not in report.summary()


def test_tags_csv_adds_tags_by_the_path_from_the_import_root_several_rows_per_image(tmp_path):
    real, fakes = folders(tmp_path)
    csv = tmp_path / "tags.csv"
    csv.write_text(
        "file,tag\n"
        "real/real_00000.jpg,glasses\n"
        "real/real_00000.jpg,old\n"
        "real/real_00000.jpg,old\n"  # a repeated row is one tag
        "m/seed0001.png,glasses\n"
        "m/smiling/f_smile.png,glasses\n"
        "\n",  # the blank line a spreadsheet leaves at the end
        encoding="utf-8-sig",
    )
    report = run(real, fakes, tags_csv=csv)
    assert tagged(report.study) == {
        "m:neutral/f_neutral.png": ["neutral"],
        "m:seed0001.png": ["glasses"],
        "m:smiling/f_smile.png": ["glasses", "smiling"],
        "real:real_00000.jpg": ["glasses", "old"],
        "real:smiling/r_smile_0.png": ["smiling"],
        "real:smiling/r_smile_1.png": ["smiling"],
    }


def test_bad_rows_of_tags_csv_are_each_named_and_the_import_stores_nothing(tmp_path):
    real, fakes = folders(tmp_path)
    csv = tmp_path / "tags.csv"
    csv.write_text(
        "file,tag\n"
        "real/real_00000.jpg,fine\n"
        "real/nowhere.png,smiling\n"
        "m/seed0000.png,\n"
        f"m/seed0001.png,{'x' * 65}\n"
        "m/seed0002.png,a\tb\n"
        "m/seed0003.png,one,two\n"
    )
    with pytest.raises(InputProblems) as failure:
        run(real, fakes, tags_csv=csv)
    assert failure.value.problems == [
        f"{csv}, line 3: no image 'real/nowhere.png' in the import (give the path from the "
        "import root, e.g. real/0001.png or stylegan/0001.png)",
        f"{csv}, line 4: the tag is empty",
        f"{csv}, line 5: the tag is 65 characters long, more than 64",
        f"{csv}, line 6: the tag has a character that is not printable (a tab, a line break ...)",
        f"{csv}, line 7: 3 cells, expected 2 (file,tag)",
    ]
    assert_nothing_left_behind()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("name,label\nreal/real_00000.jpg,x\n", "the first line must be the header file,tag"),
        ("", "the first line must be the header file,tag (found nothing)"),
        (b"file,tag\nreal/real_00000.jpg,\xff\n", "not UTF-8 text"),
    ],
)
def test_a_tags_csv_without_its_header_or_not_text_fails_the_import(tmp_path, content, problem):
    real, fakes = folders(tmp_path)
    csv = tmp_path / "tags.csv"
    csv.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputProblems) as failure:
        run(real, fakes, tags_csv=csv)
    (only,) = failure.value.problems
    assert only.startswith(f"{csv}: {problem}")
    assert_nothing_left_behind()


def test_a_sub_folder_whose_name_cannot_be_a_tag_fails_the_import(tmp_path):
    real, fakes = folders(tmp_path)
    long_name = "y" * 65
    save(picture(seed=170), fakes / long_name / "f.png")
    with pytest.raises(InputProblems) as failure:
        run(real, fakes)
    assert failure.value.problems == [
        f"{fakes / long_name}: a sub-folder names the tag of its images, but the tag is 65 "
        "characters long, more than 64"
    ]
    assert_nothing_left_behind()


def test_the_command_takes_tags_csv_and_reports_its_problems(tmp_path):
    real, fakes = folders(tmp_path)
    user_make("ada")
    csv = tmp_path / "tags.csv"
    csv.write_text("file,tag\nm/nowhere.png,x\n")
    arguments = ["create_study", "Tagged", "--owner", "ada", "--method", "inf"]
    arguments += ["--real", str(real), "--model", f"m={fakes}", "--no-progress"]
    arguments += ["--qualification-trials", "2", "--inf-trials", "4", "--tags", str(csv)]
    with pytest.raises(CommandError, match="line 2: no image 'm/nowhere.png'"):
        call_command(*arguments)
    assert_nothing_left_behind()
    csv.write_text("file,tag\nm/seed0000.png,x\n")
    call_command(*arguments, stdout=open(tmp_path / "out.txt", "w"))  # noqa: SIM115
    assert tagged(Study.objects.get()) == {
        "m:neutral/f_neutral.png": ["neutral"],
        "m:seed0000.png": ["x"],
        "m:smiling/f_smile.png": ["smiling"],
        "real:smiling/r_smile_0.png": ["smiling"],
        "real:smiling/r_smile_1.png": ["smiling"],
    }
