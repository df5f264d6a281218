"""`manage.py create_study` and `manage.py audit_study`, end to end through call_command."""

import io

import pytest
from django.core.management import CommandError, call_command

from experiments.models import Image, Study
from tests.factories import user_make
from tests.pictures import (
    crafted,
    encoded,
    fake_folder,
    flat,
    mixed_real_folder,
    noisy,
    plain_real_folder,
    stored_files,
)

pytestmark = pytest.mark.django_db

SMALL_OPTIONS = [
    "--qualification-trials", "2",
    "--inf-trials", "4",
    "--time-blocks", "1",
    "--time-trials-per-block", "4",
]  # fmt: skip


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("create_study", *args, "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def audit(*args: str) -> str:
    out = io.StringIO()
    call_command("audit_study", *args, stdout=out)
    return out.getvalue()


def test_create_study_imports_the_folders_and_prints_a_summary(tmp_path):
    user_make("ada")
    output = run(
        "Faces",
        "--method", "time",
        "--owner", "ada",
        "--real", str(mixed_real_folder(tmp_path)),
        "--model", f"stylegan={fake_folder(tmp_path, 'stylegan', count=5)}",
        "--model", f"progan={fake_folder(tmp_path, 'progan', fmt='JPEG', seed=200)}",
        "--masks", "5",
        "--raters-per-model", "12",
        "--no-feedback",
        "--threshold-tie-rule", "lowest",
        "--seed", "3",
        *SMALL_OPTIONS,
    )  # fmt: skip
    study = Study.objects.get()
    assert (study.name, study.method, study.owner.username) == ("Faces", "time", "ada")
    assert (study.raters_per_model, study.feedback, study.threshold_tie_rule) == (
        12,
        "none",  # --no-feedback: the same as --feedback none
        "lowest",
    )
    assert (study.time_trials_per_block, study.display_width, study.display_height) == (4, 32, 32)
    assert (
        f'Study "Faces" (HYPE_time (adaptive exposure), draft), public id {study.public_id}'
        in output
    )
    assert "Real images: 10 for the task" in output
    assert "Model stylegan: 5 fakes for the task" in output
    assert "Model progan: 4 fakes for the task" in output
    assert "Masks: 5 (phase-scrambled from the study's own images)" in output
    assert "Leak audit: " in output
    assert f"Created study {study.pk} ({study.public_id})." in output
    assert Image.objects.filter(study=study, role="mask").count() == 5


def test_create_study_takes_a_display_size_a_status_and_qualification_fakes(tmp_path):
    user_make("ada")
    qualification = tmp_path / "qualification"
    fake_folder(qualification, "m", count=1, seed=300)
    output = run(
        "Sized",
        "--method", "inf",
        "--owner", "ada",
        "--real", str(plain_real_folder(tmp_path, count=5)),
        "--model", f"m={fake_folder(tmp_path, 'm')}",
        "--qualification-fakes", str(qualification),
        "--display-size", "24x16",
        "--status", "live",
        *SMALL_OPTIONS,
    )  # fmt: skip
    study = Study.objects.get()
    assert (study.status, study.display_width, study.display_height) == ("live", 24, 16)
    assert "Display size: 24x16 (as given)" in output
    assert "Real images: 4 for the task, 1 reserved for the qualification" in output
    assert "Model m: 4 fakes for the task, 1 reserved for the qualification" in output


def test_a_failed_import_lists_every_problem_exits_non_zero_and_creates_nothing(tmp_path):
    user_make("ada")
    (tmp_path / "real").mkdir()
    with pytest.raises(CommandError) as failure:
        run(
            "Broken",
            "--owner", "ada",
            "--real", str(tmp_path / "real"),
            "--model", f"m={fake_folder(tmp_path, 'm', count=1)}",
            "--real-fraction", "2",
            *SMALL_OPTIONS,
        )  # fmt: skip
    message = str(failure.value)
    assert failure.value.returncode == 1
    assert message.startswith("The import failed and created nothing:")
    assert "  - real_fraction: Ensure this value is less than or equal to 1.0." in message
    assert not Study.objects.exists() and stored_files() == []


def test_folder_problems_are_reported_by_folder(tmp_path):
    user_make("ada")
    (tmp_path / "real").mkdir()
    with pytest.raises(CommandError) as failure:
        run(
            "Broken",
            "--method", "inf",
            "--owner", "ada",
            "--real", str(tmp_path / "real"),
            "--model", f"m={fake_folder(tmp_path, 'm', count=1)}",
            *SMALL_OPTIONS,
        )  # fmt: skip
    message = str(failure.value)
    assert f"  - {tmp_path / 'real'}: the folder is empty (no file at its top level)" in message
    assert f"  - {tmp_path / 'm'}: 1 usable images, but one rater needs 3" in message


def test_an_unknown_owner_is_refused(tmp_path):
    with pytest.raises(CommandError, match="--owner: no user named 'nobody'"):
        run("X", "--owner", "nobody", "--real", str(tmp_path), "--model", f"m={tmp_path}")


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("--model", "just-a-folder", "is not NAME=DIR"),
        ("--display-size", "big", "is not WIDTHxHEIGHT"),
        ("--method", "fast", "invalid choice"),
        ("--feedback", "yes", "invalid choice"),
    ],
)
def test_malformed_options_are_refused_before_anything_happens(tmp_path, option, value, error):
    user_make("ada")
    arguments = ["X", "--owner", "ada", "--real", str(tmp_path), "--model", f"m={tmp_path}"]
    with pytest.raises(CommandError, match=error):
        run(*arguments, option, value)
    assert not Study.objects.exists()


def test_a_model_given_twice_is_refused(tmp_path):
    user_make("ada")
    with pytest.raises(CommandError, match="--model: 'm' is given twice"):
        run(
            "X",
            "--owner",
            "ada",
            "--real",
            str(tmp_path),
            "--model",
            f"m={tmp_path}",
            "--model",
            f"m={tmp_path}",
        )


def test_audit_study_passes_a_clean_study_by_public_id_and_by_id(tmp_path):
    study = crafted(
        real=[encoded(noisy(i)) for i in range(6)], fake=[encoded(noisy(100 + i)) for i in range(6)]
    )
    by_public_id = audit(study.public_id)
    assert by_public_id.startswith(
        f'Leak audit of study "A study" (public id {study.public_id}): PASS'
    )
    assert audit(str(study.pk)) == by_public_id


def test_audit_study_exits_non_zero_when_the_audit_fails():
    study = crafted(
        real=[encoded(flat(i), "JPEG") for i in range(4)],
        fake=[encoded(noisy(i)) for i in range(4)],
        real_name="upload.jpg",
    )
    out = io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("audit_study", study.public_id, stdout=out)
    assert failure.value.returncode == 1
    assert str(failure.value) == f"The leak audit of study {study.pk}: fail."
    assert "): FAIL" in out.getvalue()
    assert (
        "  - format: real images: JPEG (4); fakes: PNG (4); this alone tells them apart"
        in out.getvalue()
    )


def test_audit_study_warns_with_exit_zero_unless_strict():
    # A HYPE_time study without masks: trials would show no backward mask.
    study = crafted(
        real=[encoded(noisy(i)) for i in range(12)],
        fake=[encoded(noisy(100 + i)) for i in range(12)],
        method="time",
    )
    output = audit(study.public_id)
    assert "): WARN" in output and "no masks" in output
    with pytest.raises(CommandError, match="warn"):
        audit(study.public_id, "--strict")


def test_audit_study_refuses_an_unknown_study():
    with pytest.raises(CommandError, match="No study has the public id, id or name 'nope'"):
        audit("nope")


def test_feedback_is_set_by_when_it_is_given_and_exclusion_rules_are_options(tmp_path):
    user_make("ada")
    run(
        "Faces",
        "--owner", "ada",
        "--real", str(mixed_real_folder(tmp_path)),
        "--model", f"stylegan={fake_folder(tmp_path, 'stylegan', count=5)}",
        "--masks", "5",
        "--feedback", "qualification",
        "--exclude-same-key-streak", "12",
        "--exclude-unmeasured-refresh",
        *SMALL_OPTIONS,
    )  # fmt: skip
    study = Study.objects.get()
    assert study.feedback == Study.Feedback.QUALIFICATION
    assert (study.exclude_same_key_streak, study.exclude_unmeasured_refresh) == (12, True)
    assert study.exclude_hidden_share is None
