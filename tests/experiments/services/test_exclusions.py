"""Excluding raters: the study's rules on the answers' flags (each off until set), a researcher
excluding with a reason and undoing it, the rules applied when a rater completes and again to
every completed rater, and what an exclusion frees and keeps (never an answer)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.models import Answer, Block, RaterSession, Study
from experiments.rating.blocks import study_full
from experiments.services.exclusions import (
    BY_RULE,
    AnswerQuality,
    answer_quality,
    rater_exclude,
    rater_exclusion_undo,
    rules_apply,
    rules_broken,
    study_rules_apply,
    study_rules_change,
)
from experiments.services.problems import InputProblems
from experiments.services.scores import study_results
from tests.factories import answered_session_make, study_make

pytestmark = pytest.mark.django_db

Status = RaterSession.Status


def quality(**fields) -> AnswerQuality:
    base = dict(
        task_answers=100,
        hidden=0,
        timed=0,
        timing_off=0,
        longest_fast_run=0,
        longest_same_run=0,
        refresh_unmeasured=0,
    )
    return AnswerQuality(**{**base, **fields})


def rater(study, *, answers=((True, True),) * 4, status=Status.COMPLETED, **fields):
    """A rater of the study's first model with untimed task answers (is_real, correct)."""
    model = study.models.first()
    session = answered_session_make(
        study, model, [[(None, is_real, correct) for is_real, correct in answers]], status=status
    )
    if fields:
        RaterSession.objects.filter(pk=session.pk).update(**fields)
        session.refresh_from_db()
    return session


def flag(session, flag_name: str, *, count: int | None = None) -> None:
    answers = Answer.objects.filter(trial__session=session).order_by("trial__index")
    for answer in answers[:count] if count else answers:
        answer.flags = [*answer.flags, flag_name]
        answer.save(update_fields=["flags"])


# --- The rules, on what a rater's answers add up to ------------------------------------------


def test_no_rule_is_set_on_a_new_study_and_none_excludes_anyone():
    study = study_make()
    worst = quality(
        hidden=100, timed=100, timing_off=100, longest_fast_run=100, longest_same_run=100,
        refresh_unmeasured=100,
    )  # fmt: skip
    assert rules_broken(study, worst) == []


def test_a_share_rule_excludes_above_its_share_only():
    study = study_make(exclude_hidden_share=0.2, exclude_timing_share=0.1)
    assert rules_broken(study, quality(hidden=20)) == []
    (broken,) = rules_broken(study, quality(hidden=21))
    assert "21 of 100 task answers" in broken and "more than 20%" in broken
    assert rules_broken(study, quality(timed=50, timing_off=5)) == []
    assert "6 of 50 timed answers" in rules_broken(study, quality(timed=50, timing_off=6))[0]
    # An untimed study has no timed answers: the timing rule has nothing to count.
    assert rules_broken(study, quality(timed=0, timing_off=0)) == []


def test_a_share_rule_of_zero_excludes_a_single_flagged_answer():
    study = study_make(exclude_hidden_share=0.0)
    assert rules_broken(study, quality(hidden=0)) == []
    assert len(rules_broken(study, quality(hidden=1))) == 1


def test_a_streak_rule_excludes_at_its_length_or_more():
    study = study_make(exclude_fast_streak=5, exclude_same_key_streak=12)
    assert rules_broken(study, quality(longest_fast_run=4, longest_same_run=11)) == []
    fast, same = rules_broken(study, quality(longest_fast_run=5, longest_same_run=12))
    assert "5 answers in a row faster than 150 ms" in fast
    assert "the same answer 12 times in a row" in same


def test_the_refresh_rule_excludes_a_rater_with_an_unmeasured_refresh_rate():
    study = study_make(exclude_unmeasured_refresh=True)
    assert rules_broken(study, quality()) == []
    assert len(rules_broken(study, quality(refresh_unmeasured=3))) == 1


def test_the_quality_is_read_from_the_task_answers_in_order():
    study = study_make()
    model = study.models.first()
    session = answered_session_make(
        study,
        model,
        [[(None, True, True), (None, True, True), (None, False, True), (None, True, True)]],
    )
    # Responses: real real fake real; qualification answers do not count.
    answered_session_make(study, model, [[(None, True, True)] * 9], kind=Block.Kind.QUALIFICATION)
    answers = list(Answer.objects.filter(trial__session=session).order_by("trial__index"))
    for answer, rt, hidden in zip(
        answers, (100, 90, 400, 80), (False, True, False, False), strict=True
    ):
        answer.rt_ms, answer.page_hidden = rt, hidden
        answer.save()
    flag(session, "refresh_unmeasured", count=1)
    got = answer_quality(session)
    assert (got.task_answers, got.hidden, got.longest_fast_run, got.longest_same_run) == (
        4,
        1,
        2,
        2,
    )
    assert got.refresh_unmeasured == 1 and got.hidden_share == 0.25


# --- A researcher excludes and undoes -------------------------------------------------------


def test_a_researcher_excludes_a_completed_rater_with_a_reason_and_the_answers_stay():
    study = study_make()
    session = rater(study)
    before = list(Answer.objects.filter(trial__session=session).values().order_by("id"))
    rater_exclude(session, reason="  answered in 2 minutes  ", by="ada")
    session.refresh_from_db()
    assert (session.status, session.status_before_exclusion) == (Status.EXCLUDED, Status.COMPLETED)
    assert (session.excluded_reason, session.excluded_by) == ("answered in 2 minutes", "ada")
    assert session.excluded_at is not None and session.exclusion_undone_at is None
    assert list(Answer.objects.filter(trial__session=session).values().order_by("id")) == before


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_excluding_without_a_reason_is_refused_and_changes_nothing(reason):
    session = rater(study_make())
    with pytest.raises(InputProblems) as refused:
        rater_exclude(session, reason=reason, by="ada")
    assert "reason" in refused.value.problems[0]
    session.refresh_from_db()
    assert session.status == Status.COMPLETED and session.excluded_at is None


def test_a_rater_who_is_not_scored_or_excluded_already_cannot_be_excluded():
    study = study_make()
    failed = rater(study, status=Status.FAILED_QUALIFICATION)
    with pytest.raises(InputProblems, match="failed qualification"):
        rater_exclude(failed, reason="x", by="ada")
    done = rater(study)
    rater_exclude(done, reason="first", by="ada")
    with pytest.raises(InputProblems, match="already"):
        rater_exclude(done, reason="second", by="bob")
    done.refresh_from_db()
    assert done.excluded_reason == "first"


def test_excluding_a_rater_in_the_task_ends_their_session_and_frees_their_place():
    study = study_make(raters_per_model=1)
    session = rater(study, status=Status.IN_TASK)
    assert study_full(study)
    rater_exclude(session, reason="two people at one keyboard", by="ada")
    session.refresh_from_db()
    assert session.status in RaterSession.ENDED
    assert session.status_before_exclusion == Status.IN_TASK
    assert not study_full(study)


def test_undo_restores_the_status_and_the_rules_never_exclude_that_rater_again():
    study = study_make(exclude_same_key_streak=3)
    session = rater(study)
    assert rules_apply(session) is not None
    rater_exclusion_undo(session, by="ada")
    session.refresh_from_db()
    assert session.status == Status.COMPLETED and session.exclusion_undone_at is not None
    # The history stays: why and by whom the rater had been excluded.
    assert session.excluded_by == BY_RULE and "4 times in a row" in session.excluded_reason
    assert rules_apply(session) is None
    assert study_rules_apply(study).excluded == 0
    session.refresh_from_db()
    assert session.status == Status.COMPLETED


def test_undoing_for_a_session_that_was_under_way_gives_it_a_fresh_idle_limit():
    study = study_make()
    long_ago = timezone.now() - timedelta(hours=5)
    session = rater(study, status=Status.IN_TASK, last_activity_at=long_ago)
    rater_exclude(session, reason="testing", by="ada")
    rater_exclusion_undo(session, by="ada")
    session.refresh_from_db()
    assert session.status == Status.IN_TASK
    assert timezone.now() - session.last_activity_at < timedelta(minutes=1)


def test_undoing_a_rater_who_is_not_excluded_is_refused():
    with pytest.raises(InputProblems, match="not excluded"):
        rater_exclusion_undo(rater(study_make()), by="ada")


# --- The rules, applied ----------------------------------------------------------------------


def test_the_rules_exclude_a_completed_rater_who_breaks_one_and_say_why():
    study = study_make(exclude_same_key_streak=4)
    same = rater(study, answers=[(True, True)] * 4)  # "real" four times
    mixed = rater(study, answers=[(True, True), (False, True)] * 2)
    reason = rules_apply(same)
    assert reason == "Exclusion rules: the same answer 4 times in a row (the limit is 4)."
    assert same.status == Status.EXCLUDED  # the caller's instance is updated too
    assert rules_apply(mixed) is None
    same.refresh_from_db()
    assert (same.excluded_by, same.excluded_reason) == (BY_RULE, reason)


def test_the_rules_leave_raters_who_have_not_completed_alone():
    study = study_make(exclude_same_key_streak=2)
    session = rater(study, status=Status.IN_TASK)
    assert rules_apply(session) is None
    session.refresh_from_db()
    assert session.status == Status.IN_TASK


def test_applying_changed_rules_excludes_and_brings_back_and_leaves_researchers_choices():
    study = study_make()
    same = rater(study, answers=[(True, True)] * 6)
    hidden = rater(study)
    Answer.objects.filter(trial__session=hidden).update(page_hidden=True)
    by_hand = rater(study)
    rater_exclude(by_hand, reason="known to the team", by="ada")

    study_rules_change(study, values={"exclude_same_key_streak": 5, "exclude_hidden_share": 0.5})
    applied = study_rules_apply(study)
    assert (applied.checked, applied.excluded, applied.restored) == (2, 2, 0)
    # Loosened: the same-answer rater is back in; the researcher's own exclusion stays.
    study_rules_change(study, values={"exclude_same_key_streak": None})
    applied = study_rules_apply(study)
    assert (applied.checked, applied.excluded, applied.restored, applied.still_excluded) == (
        2,
        0,
        1,
        1,
    )
    statuses = {s.pk: (s.status, s.excluded_by) for s in RaterSession.objects.filter(study=study)}
    assert statuses == {
        same.pk: (Status.COMPLETED, ""),
        hidden.pk: (Status.EXCLUDED, BY_RULE),
        by_hand.pk: (Status.EXCLUDED, "ada"),
    }


def test_a_bad_rule_value_is_refused_and_nothing_changes():
    study = study_make()
    with pytest.raises(InputProblems) as refused:
        study_rules_change(study, values={"exclude_hidden_share": 1.5, "exclude_fast_streak": 3})
    assert any(p.startswith("exclude_hidden_share:") for p in refused.value.problems)
    study.refresh_from_db()
    assert (study.exclude_hidden_share, study.exclude_fast_streak) == (None, None)
    with pytest.raises(InputProblems, match="Not an exclusion rule"):
        study_rules_change(study, values={"raters_per_model": 3})


def test_the_rules_may_change_after_raters_have_started():
    study = study_make()
    rater(study)
    study_rules_change(study, values={"exclude_fast_streak": 8})
    study.refresh_from_db()
    assert study.exclude_fast_streak == 8


def test_an_exclusion_changes_the_score_and_undoing_it_restores_it():
    study = study_make(method=Study.Method.INF)
    rater(study, answers=[(True, True), (False, True)])  # no errors
    wrong = rater(study, answers=[(True, False), (False, False)])  # all wrong
    assert study_results(study).models[0].score.estimate == 0.5
    rater_exclude(wrong, reason="pressed at random", by="ada")
    assert study_results(study).models[0].score.estimate == 0.0
    assert study_results(study, exclusions="none").models[0].score.estimate == 0.5
    rater_exclusion_undo(wrong, by="ada")
    assert study_results(study).models[0].score.estimate == 0.5
