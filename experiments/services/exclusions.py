"""Who is left out of a study's scores: the study's exclusion rules (built from the answers'
quality flags, each off until set) applied to a rater who completes, a researcher excluding a
rater with a reason, and undoing it. The one owner of these rules; answers are never touched,
an exclusion only changes what is scored (docs/raters.md, "Quality flags and exclusions")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from experiments.models import Answer, Block, RaterSession, Study
from experiments.services.problems import InputProblems
from experiments.services.progress import progress_announce

Status = RaterSession.Status
# What excluded_by says when a rule, not a researcher, excluded the rater.
BY_RULE = "rule"
# The study's exclusion rules (fields of Study), in the order pages and docs list them.
EXCLUSION_RULES = (
    "exclude_hidden_share",
    "exclude_timing_share",
    "exclude_fast_streak",
    "exclude_same_key_streak",
    "exclude_unmeasured_refresh",
)
# Sessions a researcher may exclude: those still under way and those that completed (the
# others are never scored, so there is nothing to leave out).
EXCLUDABLE = (*RaterSession.IN_PROGRESS, Status.COMPLETED)
MAX_REASON_CHARS = 1000
# The timing flags exclude_timing_share counts (experiments.rating.sessions.FLAG_NOTES).
TIMING_FLAGS = frozenset({"timing_off", "no_timing"})


@dataclass(frozen=True)
class AnswerQuality:
    """What the rules read of one rater's task answers (qualification answers do not count:
    the score is made of task answers)."""

    task_answers: int
    hidden: int  # given while the page was hidden
    timed: int  # in timed blocks (HYPE_time)
    timing_off: int  # of those, flagged timing_off or no_timing
    longest_fast_run: int  # answers in a row faster than FAST_ANSWER_MS
    longest_same_run: int  # the same answer in a row
    refresh_unmeasured: int  # answers flagged refresh_unmeasured

    @property
    def hidden_share(self) -> float | None:
        return self.hidden / self.task_answers if self.task_answers else None

    @property
    def timing_share(self) -> float | None:
        return self.timing_off / self.timed if self.timed else None


def _longest_run(values: Iterable[Any]) -> int:
    """The longest run of equal, truthy values (None and False break a run)."""
    longest = run = 0
    last = None
    for value in values:
        run = run + 1 if value and value == last else (1 if value else 0)
        last = value
        longest = max(longest, run)
    return longest


def _fast_answer_ms() -> int:
    # Read when needed: experiments.rating imports this module (its lifecycle applies the
    # rules), so importing it back at load time would go round in a circle.
    from experiments.rating.sessions import FAST_ANSWER_MS

    return FAST_ANSWER_MS


def answer_quality(session: RaterSession) -> AnswerQuality:
    """The rater's task answers as the rules read them, from one query in trial order."""
    fast_ms = _fast_answer_ms()
    rows = list(
        Answer.objects.filter(trial__session=session, trial__block__kind=Block.Kind.TASK)
        .order_by("trial__index")
        .values_list("rt_ms", "response", "page_hidden", "flags", "trial__block__timed")
    )
    flags = [set(row[3] or ()) for row in rows]
    timed = [f for f, row in zip(flags, rows, strict=True) if row[4]]
    return AnswerQuality(
        task_answers=len(rows),
        hidden=sum(row[2] for row in rows),
        timed=len(timed),
        timing_off=sum(bool(f & TIMING_FLAGS) for f in timed),
        longest_fast_run=_longest_run(row[0] < fast_ms for row in rows),
        longest_same_run=_longest_run(row[1] for row in rows),
        refresh_unmeasured=sum("refresh_unmeasured" in f for f in flags),
    )


def rules_broken(study: Study, quality: AnswerQuality) -> list[str]:
    """The study's rules this rater's answers break, each in words (empty: none, or no rule
    is set). A share rule excludes above its share, a streak rule at its length or more."""
    broken = []
    hidden, limit = quality.hidden_share, study.exclude_hidden_share
    if limit is not None and hidden is not None and hidden > limit:
        broken.append(
            f"{quality.hidden} of {quality.task_answers} task answers given while the page was "
            f"hidden ({100 * hidden:.0f}%, more than {100 * limit:g}%)"
        )
    timing, limit = quality.timing_share, study.exclude_timing_share
    if limit is not None and timing is not None and timing > limit:
        broken.append(
            f"{quality.timing_off} of {quality.timed} timed answers shown more than a frame off "
            f"or unmeasured ({100 * timing:.0f}%, more than {100 * limit:g}%)"
        )
    if study.exclude_fast_streak and quality.longest_fast_run >= study.exclude_fast_streak:
        broken.append(
            f"{quality.longest_fast_run} answers in a row faster than {_fast_answer_ms()} ms "
            f"(the limit is {study.exclude_fast_streak})"
        )
    if study.exclude_same_key_streak and quality.longest_same_run >= study.exclude_same_key_streak:
        broken.append(
            f"the same answer {quality.longest_same_run} times in a row (the limit is "
            f"{study.exclude_same_key_streak})"
        )
    if study.exclude_unmeasured_refresh and quality.refresh_unmeasured:
        broken.append(
            f"the display's refresh rate could not be measured ({quality.refresh_unmeasured} "
            "answers)"
        )
    return broken


def rules_reason(study: Study, quality: AnswerQuality) -> str | None:
    """The reason a rule-made exclusion records, or None when no rule is broken."""
    broken = rules_broken(study, quality)
    return "Exclusion rules: " + "; ".join(broken) + "." if broken else None


def rules_summary(study: Study) -> list[str]:
    """The study's exclusion rules that are set, in words (the study page and the raters
    page show them); empty when none is."""
    shown = []
    if study.exclude_hidden_share is not None:
        shown.append(
            f"page hidden in more than {100 * study.exclude_hidden_share:g}% of task answers"
        )
    if study.exclude_timing_share is not None:
        shown.append(
            f"timing off in more than {100 * study.exclude_timing_share:g}% of timed answers"
        )
    if study.exclude_fast_streak:
        shown.append(
            f"{study.exclude_fast_streak} answers in a row faster than {_fast_answer_ms()} ms"
        )
    if study.exclude_same_key_streak:
        shown.append(f"the same answer {study.exclude_same_key_streak} times in a row")
    if study.exclude_unmeasured_refresh:
        shown.append("a refresh rate that could not be measured")
    return shown


# --- Excluding and undoing ------------------------------------------------------------------


def _locked(session: RaterSession) -> RaterSession:
    return RaterSession.objects.select_for_update().select_related("study").get(pk=session.pk)


_EXCLUSION_FIELDS = (
    "status",
    "status_before_exclusion",
    "excluded_at",
    "excluded_reason",
    "excluded_by",
    "exclusion_undone_at",
    "last_activity_at",
)


def _copy_back(source: RaterSession, target: RaterSession) -> RaterSession:
    # The caller's instance sees what was saved (the lifecycle goes on with it).
    for name in _EXCLUSION_FIELDS:
        setattr(target, name, getattr(source, name))
    return target


def _exclude(locked: RaterSession, *, reason: str, by: str) -> None:
    locked.status_before_exclusion = locked.status
    locked.status = Status.EXCLUDED
    locked.excluded_at = timezone.now()
    locked.excluded_reason = reason
    locked.excluded_by = by
    locked.exclusion_undone_at = None
    locked.save(update_fields=list(_EXCLUSION_FIELDS))


def _announce(study: Study) -> None:
    # The study's open dashboards count raters by status.
    transaction.on_commit(lambda: progress_announce(study))


def rater_exclude(session: RaterSession, *, reason: str, by: str) -> RaterSession:
    """Exclude a rater from the study's scores, with a reason, on behalf of `by` (a
    researcher's user name, or "rule"). A session under way ends there (its model's place is
    freed); one that completed stays completed for its pay and its code. The answers are
    kept as they are. Raises InputProblems, changing nothing, without a reason or for a
    session that cannot be excluded."""
    reason = (reason or "").strip()
    if not reason:
        raise InputProblems(["Give a reason for excluding this rater; it is kept with them."])
    if len(reason) > MAX_REASON_CHARS:
        raise InputProblems([f"The reason is too long (at most {MAX_REASON_CHARS} characters)."])
    with transaction.atomic():
        locked = _locked(session)
        if locked.status == Status.EXCLUDED:
            raise InputProblems(["This rater is excluded already; nothing was changed."])
        if locked.status not in EXCLUDABLE:
            shown = Status(locked.status).label.lower()
            raise InputProblems(
                [f"A rater whose session is {shown} is not scored: there is nothing to exclude."]
            )
        _exclude(locked, reason=reason, by=by)
        _announce(locked.study)
    return _copy_back(locked, session)


def rater_exclusion_undo(session: RaterSession, *, by: str) -> RaterSession:
    """Undo a rater's exclusion: their session goes back to the status it had (a session that
    was under way gets a fresh idle limit, so it is not abandoned at once), and the study's
    rules never exclude it again. The reason, who excluded and when stay on the session as its
    history, with exclusion_undone_at. Raises InputProblems for a rater who is not excluded.
    `by` is the researcher undoing it (the session has no field for it: it is in the message
    the page shows)."""
    with transaction.atomic():
        locked = _locked(session)
        if locked.status != Status.EXCLUDED:
            raise InputProblems(["This rater is not excluded; nothing was changed."])
        locked.status = locked.status_before_exclusion or Status.COMPLETED
        if locked.status in RaterSession.IN_PROGRESS:
            locked.last_activity_at = timezone.now()
        locked.exclusion_undone_at = timezone.now()
        locked.save(update_fields=list(_EXCLUSION_FIELDS))
        _announce(locked.study)
    return _copy_back(locked, session)


def rules_apply(session: RaterSession) -> str | None:
    """The study's rules on one completed rater: excludes them (excluded_by "rule") and
    returns the reason when a rule is broken; None otherwise, and always for a rater whose
    exclusion a researcher undid (exclusion_undone_at) or who has not completed."""
    if not study_has_rules(session.study):
        return None  # no rule set: nothing to read
    with transaction.atomic():
        locked = _locked(session)
        if locked.status != Status.COMPLETED or locked.exclusion_undone_at is not None:
            return None
        reason = rules_reason(locked.study, answer_quality(locked))
        if reason is None:
            return None
        _exclude(locked, reason=reason, by=BY_RULE)
        _announce(locked.study)
    _copy_back(locked, session)
    return reason


@dataclass(frozen=True)
class RulesApplied:
    """What study_rules_apply did: raters checked, newly excluded, and excluded by an earlier
    rule that the rules now leave in (back to completed)."""

    checked: int
    excluded: int
    restored: int
    still_excluded: int


def study_rules_apply(study: Study) -> RulesApplied:
    """The study's rules, as they are now, on every rater who completed: those who break one
    are excluded, and those a rule excluded earlier but no rule excludes now are restored (a
    researcher's own exclusions, and raters whose exclusion a researcher undid, are left as
    they are)."""
    excluded = restored = still = 0
    # Both read before anything changes, so a rater excluded now is not checked twice.
    completed = list(
        RaterSession.objects.filter(
            study=study, status=Status.COMPLETED, exclusion_undone_at__isnull=True
        ).select_related("study")
    )
    by_rule = list(
        RaterSession.objects.filter(
            study=study,
            status=Status.EXCLUDED,
            status_before_exclusion=Status.COMPLETED,
            excluded_by=BY_RULE,
        )
    )
    checked = 0
    for session in completed:
        checked += 1
        excluded += rules_apply(session) is not None
    for session in by_rule:
        checked += 1
        with transaction.atomic():
            locked = _locked(session)
            if locked.status != Status.EXCLUDED or locked.excluded_by != BY_RULE:
                continue
            reason = rules_reason(locked.study, answer_quality(locked))
            if reason is None:
                locked.status = Status.COMPLETED
                locked.status_before_exclusion = ""
                locked.excluded_at = None
                locked.excluded_reason = ""
                locked.excluded_by = ""
                locked.save(update_fields=list(_EXCLUSION_FIELDS))
                restored += 1
                _announce(locked.study)
            else:
                still += 1
                if reason != locked.excluded_reason:
                    locked.excluded_reason = reason
                    locked.save(update_fields=["excluded_reason"])
    return RulesApplied(checked=checked, excluded=excluded, restored=restored, still_excluded=still)


def study_rules_change(study: Study, *, values: Mapping[str, Any]) -> Study:
    """Set the study's exclusion rules (any of EXCLUSION_RULES; None or False turns one off).
    Unlike the other parameters they may change at any time: they decide what is scored, not
    what raters see. Raises InputProblems, changing nothing, for an unknown or invalid value.
    Does not apply them: study_rules_apply does."""
    unknown = sorted(set(values) - set(EXCLUSION_RULES))
    if unknown:
        raise InputProblems([f"Not an exclusion rule: {', '.join(unknown)}."])
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        for name, value in values.items():
            setattr(locked, name, value)
        try:
            locked.full_clean(
                exclude=[f.name for f in Study._meta.fields if f.name not in EXCLUSION_RULES],
                validate_constraints=False,
            )
        except ValidationError as error:
            raise InputProblems(
                [f"{key}: {' '.join(m)}" for key, m in error.message_dict.items()]
            ) from None
        locked.save(update_fields=[*values, "updated_at"])
    for name in EXCLUSION_RULES:
        setattr(study, name, getattr(locked, name))
    return study


def study_has_rules(study: Study) -> bool:
    """Whether any exclusion rule of the study is set."""
    return any(getattr(study, name) not in (None, False) for name in EXCLUSION_RULES)
