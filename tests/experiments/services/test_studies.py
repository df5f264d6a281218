"""experiments.services.studies without a page or the API: the study page's open and close
buttons (study_status_change), the rules of study_update, and what study_create_from_zips
refuses before unpacking anything."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from experiments.models import Study
from experiments.services.imports.uploads import study_create_from_zips
from experiments.services.problems import InputProblems
from experiments.services.studies import (
    STATUS_ACTIONS,
    STATUS_CHANGES,
    study_status_change,
    study_update,
)
from tests.factories import session_make, study_make
from tests.pictures import SMALL, pictures, zipped

pytestmark = pytest.mark.django_db

DRAFT, LIVE, CLOSED = Study.Status.DRAFT, Study.Status.LIVE, Study.Status.CLOSED


def study_in(status: str) -> Study:
    study = study_make(name="Faces")
    Study.objects.filter(pk=study.pk).update(status=status)
    study.refresh_from_db()
    return study


def stored(study: Study) -> tuple:
    return Study.objects.values_list("status", "name", "updated_at").get(pk=study.pk)


# --- study_status_change: the open and close buttons --------------------------------------


@pytest.mark.parametrize(
    ("before", "action", "after"),
    [(DRAFT, "open", LIVE), (CLOSED, "open", LIVE), (LIVE, "close", CLOSED)],
    ids=["a draft opens", "a closed study reopens", "a live study closes"],
)
def test_the_buttons_move_a_study_along(before, action, after):
    study = study_in(before)
    changed = study_status_change(study=study, action=action)
    assert changed.status == after
    assert stored(study)[0] == after


@pytest.mark.parametrize(
    ("before", "action", "message"),
    [
        (LIVE, "open", "A live study cannot be opened; nothing was changed."),
        (DRAFT, "close", "A draft study cannot be closed; nothing was changed."),
        (CLOSED, "close", "A closed study cannot be closed; nothing was changed."),
    ],
)
def test_a_button_that_does_not_apply_changes_nothing_and_says_why(before, action, message):
    study = study_in(before)
    unchanged = stored(study)
    with pytest.raises(InputProblems) as refused:
        study_status_change(study=study, action=action)
    assert refused.value.problems == [message]
    assert stored(study) == unchanged


def test_a_stale_page_changes_nothing():
    # The page was drawn while the study was live; another tab closed it meanwhile. Pressing
    # "close" again must not count as a change, and "open" is decided on the stored status.
    study = study_in(LIVE)
    study_status_change(study=study, action="close")
    assert study.status == LIVE  # the stale copy
    unchanged = stored(study)
    with pytest.raises(InputProblems, match="A closed study cannot be closed"):
        study_status_change(study=study, action="close")
    assert stored(study) == unchanged


def test_an_unknown_action_is_refused():
    study = study_in(DRAFT)
    with pytest.raises(InputProblems) as refused:
        study_status_change(study=study, action="delete")
    assert refused.value.problems == ["action must be 'open' or 'close'."]
    assert stored(study)[0] == DRAFT


@pytest.mark.parametrize("action", list(STATUS_ACTIONS))
@pytest.mark.parametrize("before", list(Study.Status))
def test_the_buttons_follow_the_same_rules_as_study_update(before, action):
    target, _ = STATUS_ACTIONS[action]
    study = study_in(before)
    try:
        study_status_change(study=study, action=action)
    except InputProblems:
        assert target not in STATUS_CHANGES[before]
        assert stored(study)[0] == before
    else:
        assert target in STATUS_CHANGES[before]
        assert stored(study)[0] == target


def test_a_study_closes_even_after_raters_started():
    study = study_in(LIVE)
    session_make(study)
    assert study_status_change(study=study, action="close").status == CLOSED


# --- study_update ----------------------------------------------------------------------------


def test_nothing_goes_back_to_draft():
    study = study_in(LIVE)
    unchanged = stored(study)
    with pytest.raises(InputProblems) as refused:
        study_update(study=study, status=DRAFT, name="Renamed")
    assert "status: a live study cannot become draft" in refused.value.problems[0]
    assert stored(study) == unchanged


def test_the_same_status_again_is_no_change():
    study = study_in(LIVE)
    assert study_update(study=study, status=LIVE).status == LIVE


def test_parameters_are_locked_once_a_rater_has_started_but_the_name_is_not():
    study = study_make(name="Faces")
    session_make(study)
    with pytest.raises(InputProblems) as refused:
        study_update(study=study, parameters={"raters_per_model": 40})
    assert refused.value.problems == [
        "parameters: protocol parameters cannot change once raters have started (1 rater "
        "session so far); asked to change raters_per_model. Create a new study instead."
    ]
    study.refresh_from_db()
    assert study.raters_per_model == 30
    assert study_update(study=study, name="  FFHQ faces ").name == "FFHQ faces"


def test_parameters_the_import_depended_on_never_change():
    study = study_make()
    with pytest.raises(InputProblems, match="time_blocks decided which images"):
        study_update(study=study, parameters={"time_blocks": 5})
    study.refresh_from_db()
    assert study.time_blocks == 3


def test_parameters_change_before_any_rater_and_unchanged_ones_are_no_change():
    study = study_make()
    changed = study_update(
        study=study, parameters={"raters_per_model": 40, "time_blocks": study.time_blocks}
    )
    assert changed.raters_per_model == 40
    study.refresh_from_db()
    assert study.raters_per_model == 40


def test_every_problem_is_listed_and_nothing_is_changed():
    study = study_in(LIVE)
    unchanged = stored(study)
    with pytest.raises(InputProblems) as refused:
        study_update(study=study, name="  ", status=DRAFT, parameters={"staircase_start_ms": 5000})
    problems = refused.value.problems
    assert any(p.startswith("status: ") for p in problems), problems
    assert any(p.startswith("name: ") for p in problems), problems
    assert any(p.startswith("staircase: ") for p in problems), problems
    assert stored(study) == unchanged


# --- study_create_from_zips: refused before anything is unpacked ----------------------------


def zip_create(owner, **overrides):
    arguments = {
        "owner": owner,
        "name": "Zipped",
        "method": "inf",
        "real_zip": SimpleUploadedFile("real.zip", b"PK\x03\x04 not a zip"),
        "model_zips": [SimpleUploadedFile("stylegan.zip", b"")],
        "params": {},
        "display_size": None,
        "masks": 0,
        "status": "draft",
        **overrides,
    }
    return study_create_from_zips(**arguments)


def test_a_corrupt_zip_is_named_and_nothing_is_created():
    owner = study_make().owner
    with pytest.raises(InputProblems) as refused:
        zip_create(owner)
    assert refused.value.problems == ["real.zip: not a zip file"]
    assert Study.objects.count() == 1


def test_two_zips_for_one_model_are_refused():
    owner = study_make().owner
    twins = [
        SimpleUploadedFile("stylegan.zip", b""),
        SimpleUploadedFile("StyleGAN/stylegan.ZIP", b""),
    ]
    with pytest.raises(InputProblems) as refused:
        zip_create(owner, model_zips=twins)
    assert refused.value.problems == ["model_zips: Two zips name the same model: stylegan."]
    assert Study.objects.count() == 1


def test_every_skipped_file_and_its_reason_name_the_zip_not_a_temporary_folder():
    owner = study_make().owner
    real = pictures(4, seed=0)
    real["copy.png"] = real["img000.png"]  # a duplicate: its reason names the first file
    created = zip_create(
        owner,
        real_zip=zipped(real, "real.zip"),
        model_zips=[zipped(pictures(4, seed=100), "stylegan.zip")],
        params=SMALL,
    )
    assert created.skipped == [
        (
            "real.zip/img000.png",
            "duplicate of real.zip/copy.png (the same pixels once normalised); kept once",
        )
    ]
    assert "hype-import-" not in created.summary
