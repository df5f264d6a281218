"""A study's raters, for its researchers: the list of rater sessions with their flags and
exclusions, and one rater's page with their staircase trace, qualification result, flags and
display; the owner excludes a rater there (and undoes it), and sets the study's exclusion rules
on the list. Raters appear under their pseudonymous public id only; their Prolific/MTurk
worker id is never shown here. The rules and exclusions are experiments.services.exclusions'."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms.models import fields_for_model
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from experiments.dashboard.formatting import milliseconds, score_formatter
from experiments.models import Block, RaterSession, Study
from experiments.rating.expiry import sessions_expire
from experiments.rating.sessions import FAST_ANSWER_MS, FLAG_NOTES
from experiments.services.access import study_can_edit, study_for_editor, study_for_viewer
from experiments.services.exclusions import (
    BY_RULE,
    EXCLUDABLE,
    EXCLUSION_RULES,
    answer_quality,
    rater_exclude,
    rater_exclusion_undo,
    rules_broken,
    rules_summary,
    study_has_rules,
    study_rules_apply,
    study_rules_change,
)
from experiments.services.problems import InputProblems
from experiments.services.raters import (
    flags_by_session,
    qualification_kept_from,
    qualification_state,
    session_blocks,
    session_trials,
    sessions_counted,
)
from experiments.services.scores import EXCLUSIONS_NONE, RaterScore, rater_scores, session_score
from hype.science.psychometric import (
    ABOVE_CEILING,
    ABOVE_TESTED_RANGE,
    BELOW_FLOOR,
    BELOW_TESTED_RANGE,
    UNREACHABLE,
)

Status = RaterSession.Status


@dataclass(frozen=True)
class Qualification:
    """How a rater did on the qualification; `state` is passed, failed, pending or none."""

    state: str
    correct: int | None = None
    total: int | None = None
    kept_from: str = ""  # the earlier session whose passed qualification was kept

    @property
    def share(self) -> float | None:
        return self.correct / self.total if self.total else None

    def __str__(self) -> str:
        if self.state == "none":
            return "no qualification"
        if self.state == "pending":
            return "not finished"
        if self.state == "kept":
            return f"kept from {self.kept_from}" if self.kept_from else "kept"
        return f"{self.state} {self.correct}/{self.total} ({100 * self.share:.0f}%)"

    @property
    def short(self) -> str:
        """For the list: without the percentage."""
        if self.total is None:
            return str(self)
        return f"{self.state} {self.correct}/{self.total}"


def _qualification(session: RaterSession, study: Study) -> Qualification:
    state = qualification_state(
        study=study,
        status=session.status,
        total=session.qualification_total,
        kept=session.qualification_from_id is not None,
    )
    if state == "kept":
        return Qualification(state, kept_from=qualification_kept_from(session))
    if session.qualification_total is None:
        return Qualification(state)
    return Qualification(state, session.qualification_correct, session.qualification_total)


def _hz_text(refresh_ms: float | None) -> str:
    return f"{1000 / refresh_ms:.0f} Hz" if refresh_ms else "—"


def _duration_text(session: RaterSession) -> str:
    if session.finished_at is None:
        return "—"
    minutes = (session.finished_at - session.started_at).total_seconds() / 60
    return f"{minutes:.0f} min" if minutes >= 1 else "< 1 min"


def _refresh_text(refresh_ms: float | None) -> str:
    if not refresh_ms:
        return "—"
    return f"{refresh_ms:.1f} ms ({1000 / refresh_ms:.0f} Hz)"


_BROWSERS = (
    ("Edge", r"Edg/(\d+)"),
    ("Firefox", r"Firefox/(\d+)"),
    ("Chrome", r"Chrom(?:e|ium)/(\d+)"),
    ("Safari", r"Version/(\d+)[.\d]* .*Safari/"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iOS", "iPhone"),
    ("iOS", "iPad"),
    ("Windows", "Windows"),
    ("macOS", "Mac OS X"),
    ("Linux", "Linux"),
)


def browser_name(user_agent: str) -> str:
    """'Chrome 126 on Linux' from a User-Agent header: enough to spot an odd setup."""
    if not user_agent:
        return "—"
    browser = "Unknown browser"
    for name, pattern in _BROWSERS:
        if match := re.search(pattern, user_agent):
            browser = f"{name} {match.group(1)}"
            break
    system = next((name for name, token in _SYSTEMS if token in user_agent), None)
    return f"{browser} on {system}" if system else browser


def _score_text(study: Study, score: RaterScore | None) -> str:
    if score is None or score.score is None:
        return "—"
    return score_formatter(study.score_unit)(score.score)


# A censored fitted threshold in words (hype.science.psychometric's flags): where it lies.
_CENSORED_WORDS = {
    BELOW_FLOOR: "below the floor, under {bound}",
    BELOW_TESTED_RANGE: "below their tested exposures, under {bound}",
    ABOVE_CEILING: "above the ceiling, over {bound}",
    ABOVE_TESTED_RANGE: "above their tested exposures, over {bound}",
    UNREACHABLE: "never reaches the target accuracy; counts as {bound}",
}


def _fit_text(score: RaterScore | None, *, counted: bool) -> str:
    """The rater's fitted threshold, or why it is censored; for a rater no result counts yet,
    that the fit waits for them to complete (it is fitted with the study's other raters)."""
    if score is None or score.fit is None:
        return "—" if counted else "— (fitted once they complete)"
    fit = score.fit
    if fit.censored is None:
        return milliseconds(fit.threshold_ms)
    return "censored: " + _CENSORED_WORDS[fit.censored].format(bound=milliseconds(fit.bound_ms))


def _flags_text(counts: Counter) -> str:
    """A rater's flags in a few words, the most frequent first: "fast 12 · idle_gap 1"."""
    return " · ".join(
        f"{flag} {n}" for flag, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


class ExclusionRulesForm(forms.Form):
    """The study's exclusion rules, as the raters page edits them (each off while empty)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(fields_for_model(Study, fields=EXCLUSION_RULES))
        for name in ("exclude_hidden_share", "exclude_timing_share"):
            self.fields[name].widget.attrs.update(step="any", min="0", max="1", placeholder="off")
        for name in ("exclude_fast_streak", "exclude_same_key_streak"):
            self.fields[name].widget.attrs.update(min="2", placeholder="off")


# How each rule reads on the page, next to its field.
RULE_LABELS = {
    "exclude_hidden_share": "Page hidden: more than this share of task answers (0–1)",
    "exclude_timing_share": "Timing off: more than this share of timed answers (0–1)",
    "exclude_fast_streak": f"Answers faster than {FAST_ANSWER_MS} ms: this many in a row",
    "exclude_same_key_streak": "The same answer: this many times in a row",
    "exclude_unmeasured_refresh": "The refresh rate could not be measured",
}


@login_required
@require_GET
def rater_list(request: HttpRequest, study: str) -> HttpResponse:
    study_obj = study_for_viewer(request.user, study)
    sessions_expire(study_obj)  # so that walkaways are listed as abandoned
    sessions = sessions_counted(study_obj, order=("started_at", "id")).select_related(
        "model", "qualification_from__study"
    )
    # Scores of raters who completed (those excluded afterwards too); others' are not final.
    scores = {
        score.session_id: score for score in rater_scores(study_obj, exclusions=EXCLUSIONS_NONE)
    }
    flags = dict(flags_by_session(study_obj))
    rows = []
    for session in sessions:
        score = scores.get(session.id)
        rows.append(
            {
                "session": session,
                "qualification": _qualification(session, study_obj),
                "score": _score_text(study_obj, score),
                "refresh": _refresh_text(session.refresh_ms),
                "hz": _hz_text(session.refresh_ms),
                "took": _duration_text(session),
                "flags": _flags_text(flags.get(session.id, Counter())),
            }
        )
    counts = Counter(session.status for session in sessions)
    can_edit = study_can_edit(request.user, study_obj)
    return render(
        request,
        "researcher/raters.html",
        {
            "study": study_obj,
            "rows": rows,
            "counts": [(label, counts[value]) for value, label in Status.choices if counts[value]],
            "score_label": "Error" if study_obj.method == Study.Method.INF else "HYPE_time",
            "can_edit": can_edit,
            "rules": rules_summary(study_obj),
            "rules_form": _rules_fields(ExclusionRulesForm(initial=_rule_values(study_obj)))
            if can_edit
            else None,
            "by_rule": BY_RULE,
        },
    )


def _rule_values(study: Study) -> dict[str, Any]:
    return {name: getattr(study, name) for name in EXCLUSION_RULES}


def _rules_fields(form: ExclusionRulesForm) -> list[tuple[Any, str]]:
    return [(form[name], RULE_LABELS[name]) for name in EXCLUSION_RULES]


def _raters_url(study: Study, anchor: str = "") -> str:
    url = reverse("experiments:study_raters", args=[study.public_id])
    return f"{url}#{anchor}" if anchor else url


@login_required
@require_POST
def rater_rules(request: HttpRequest, study: str) -> HttpResponse:
    """Save the study's exclusion rules and apply them to its raters who completed (owner and
    staff)."""
    study_obj = study_for_editor(request.user, study)
    form = ExclusionRulesForm(request.POST)
    if not form.is_valid():
        problems = [
            f"{RULE_LABELS.get(name, name)}: {' '.join(errors)}"
            for name, errors in form.errors.items()
        ]
        messages.error(request, "The rules were not changed. " + " ".join(problems))
        return redirect(_raters_url(study_obj, "rules"))
    try:
        study_rules_change(study_obj, values=form.cleaned_data)
    except InputProblems as error:
        messages.error(request, "The rules were not changed. " + " ".join(error.problems))
        return redirect(_raters_url(study_obj, "rules"))
    applied = study_rules_apply(study_obj)
    told = [f"Rules saved and applied to the raters who completed ({applied.checked} checked):"]
    told.append(f"{applied.excluded} newly excluded")
    if applied.restored:
        told.append(f"{applied.restored} back in (no rule excludes them now)")
    if applied.still_excluded:
        told.append(f"{applied.still_excluded} still excluded by a rule")
    messages.success(request, told[0] + " " + ", ".join(told[1:]) + ".")
    return redirect(_raters_url(study_obj, "rules"))


@login_required
@require_POST
def rater_exclusion(request: HttpRequest, study: str, rater: str) -> HttpResponse:
    """Exclude a rater from the study's scores with a reason ("exclude"), or undo it
    ("undo"): owner and staff."""
    study_obj = study_for_editor(request.user, study)
    session = RaterSession.objects.filter(study=study_obj, public_id=rater).first()
    if session is None:
        raise Http404("No such rater in this study.")
    action = request.POST.get("action", "")
    if action not in ("exclude", "undo"):
        return HttpResponseBadRequest("action must be 'exclude' or 'undo'.")
    by = request.user.get_username()
    try:
        if action == "exclude":
            rater_exclude(session, reason=request.POST.get("reason", ""), by=by)
            told = "Excluded: this rater no longer counts in the study's scores."
        else:
            rater_exclusion_undo(session, by=by)
            told = (
                f"Exclusion undone by {by}: this rater counts again, and the study's rules "
                "will not exclude them."
            )
    except InputProblems as error:
        messages.error(request, " ".join(error.problems))
    else:
        messages.success(request, told)
    url = reverse("experiments:study_rater", args=[study_obj.public_id, session.public_id])
    return redirect(f"{url}#exclusion")


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}% ({part}/{whole})" if whole else "—"


def _block_texts(block: dict[str, Any]) -> dict[str, Any]:
    """A block summary (experiments.services.raters.session_blocks) with its shares in words."""
    return {
        **block,
        "title": "Qualification"
        if block["kind"] == Block.Kind.QUALIFICATION
        else f"Task block {block['task_number']}",
        "accuracy": f"{100 * block['correct'] / block['answered']:.0f}%"
        if block["answered"]
        else "—",
        "fake_error": _share(block["fakes_wrong"], block["fakes"]),
        "real_error": _share(block["reals_wrong"], block["reals"]),
    }


@login_required
@require_GET
def rater_detail(request: HttpRequest, study: str, rater: str) -> HttpResponse:
    study_obj = study_for_viewer(request.user, study)
    session = (
        RaterSession.objects.filter(study=study_obj, public_id=rater)
        .select_related("model", "qualification_from__study")
        .first()
    )
    if session is None:
        raise Http404("No such rater in this study.")
    trials = session_trials(session)
    blocks = [_block_texts(block) for block in session_blocks(session, trials)]
    answered = [t for t in trials if t["answer__correct"] is not None]
    flag_counts = Counter(flag for t in answered for flag in (t["answer__flags"] or []))
    answer_refresh = [t["answer__refresh_ms"] for t in answered if t["answer__refresh_ms"]]
    timing_gaps = [
        abs(t["answer__shown_ms"] - t["requested_ms"])
        for t in answered
        if t["answer__shown_ms"] is not None and t["requested_ms"] is not None
    ]
    timed = study_obj.method == Study.Method.TIME
    task = [b for b in blocks if b["kind"] == Block.Kind.TASK]
    score = session_score(session)
    quality = answer_quality(session)
    trace_data = {
        "floor": study_obj.staircase_floor_ms,
        "ceiling": study_obj.staircase_ceiling_ms,
        "blocks": [
            {
                "id": f"trace-{b['index']}",
                "title": b["title"],
                "threshold": b["threshold"],
                "trace": b["trace"],
            }
            for b in task
            if b["trace"]
        ],
    }
    return render(
        request,
        "researcher/rater.html",
        {
            "study": study_obj,
            "session": session,
            "timed": timed,
            "qualification": _qualification(session, study_obj),
            "blocks": blocks,
            "task_blocks": task,
            "score": _score_text(study_obj, score),
            "score_final": session.status == Status.COMPLETED
            or session.status_before_exclusion == Status.COMPLETED,
            "fit": _fit_text(
                score,
                counted=session.status == Status.COMPLETED
                or session.status_before_exclusion == Status.COMPLETED,
            )
            if timed
            else None,
            "answered": len(answered),
            "total": study_obj.trials_per_rater,
            "flag_counts": [
                (flag, n, FLAG_NOTES.get(flag, ""))
                for flag, n in sorted(flag_counts.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "flagged": sum(bool(t["answer__flags"]) for t in answered),
            "hidden": sum(bool(t["answer__page_hidden"]) for t in answered),
            "refresh": _refresh_text(session.refresh_ms),
            "answer_refresh": _refresh_text(statistics.median(answer_refresh))
            if answer_refresh
            else "—",
            "timing_gap": f"{statistics.median(timing_gaps):.1f} ms" if timing_gaps else None,
            "browser": browser_name(session.user_agent),
            "trace_data": trace_data,
            "quality": quality,
            "fast_ms": FAST_ANSWER_MS,
            "can_edit": study_can_edit(request.user, study_obj),
            "excludable": session.status in EXCLUDABLE,
            "excluded_by_rule": session.excluded_by == BY_RULE,
            "before_exclusion": Status(session.status_before_exclusion).label
            if session.status_before_exclusion in Status.values
            else "",
            "rules": rules_summary(study_obj),
            "rules_broken": rules_broken(study_obj, quality) if study_has_rules(study_obj) else [],
        },
    )
