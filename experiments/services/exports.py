"""A study's exports: the trials, raters and scores CSVs (streamed), the LaTeX results table
and the JSON bundle that lets a result be reproduced. Every score comes from
experiments.services.scores or hype.science; docs/data-dictionary.md describes each column.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math
import platform
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

import django
import numpy as np
import scipy
from django.db.models import Count
from django.utils import timezone
from django.utils.text import slugify

import hype
from experiments.models import Answer, Baseline, Block, Image, RaterSession, Study
from experiments.services.scores import StudyResults, study_results
from hype.science.error_rates import inf_score
from hype.science.thresholds import rater_time_score

# Rows fetched from the database per round trip, and CSV rows per chunk handed to the
# response: both fixed, so an export's memory does not grow with the study.
DB_CHUNK_ROWS = 2_000
# A session row is larger and a rater's answers are read next to it: fewer at a time.
SESSION_CHUNK_ROWS = 100
CSV_CHUNK_ROWS = 500

REPOSITORY = Path(__file__).resolve().parents[2]

TRIAL_COLUMNS = (
    "study",
    "model",
    "rater",
    "source",
    "block",
    "block_kind",
    "trial_index",
    "image_id",
    "is_real",
    "requested_ms",
    "frames",
    "shown_ms",
    "mask_ms",
    "refresh_ms",
    "response",
    "correct",
    "rt_ms",
    "page_hidden",
    "flags",
    "presented_at",
    "answered_at",
)

RATER_COLUMNS = (
    "study",
    "rater",
    "model",
    "source",
    "status",
    "in_score",
    "time_score_ms",
    "inf_error",
    "inf_fake_error",
    "inf_real_error",
    "qualification_correct",
    "qualification_total",
    "qualification_passed",
    "answers",
    "task_answers",
    "flagged",
    "user_agent",
    "screen_width",
    "screen_height",
    "device_pixel_ratio",
    "refresh_ms",
    "started_at",
    "finished_at",
)

SCORE_COLUMNS = (
    "study",
    "model",
    "method",
    "unit",
    "score",
    "sd",
    "ci_low",
    "ci_high",
    "confidence",
    "resamples",
    "seed",
    "n_raters",
    "n_in_progress",
    "fake_error",
    "real_error",
    "fid",
    "kid",
    "kid_sd",
    "precision",
    "recall",
    "baseline_real_images",
    "baseline_fake_images",
    "baseline_weights_sha256",
)

# Study fields that identify or administer a study rather than define its protocol.
_NOT_PARAMETERS = {"id", "owner", "name", "status", "public_id", "created_at", "updated_at"}

# Characters a spreadsheet reads as the start of a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# --- Cells ------------------------------------------------------------------------------


def iso_utc(value: dt.datetime | None) -> str:
    """ISO 8601 in UTC with microseconds and a Z, e.g. 2024-05-01T12:00:00.250000Z."""
    if value is None:
        return ""
    utc = value.astimezone(dt.UTC)
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")


def cell(value: Any) -> str:
    """One CSV cell: empty for missing (None, NaN), true/false, shortest exact float."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # repr is the shortest string that reads back as the same float: full precision.
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return str(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _boolean(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return repr(value) if math.isfinite(value) else ""


def _flags(value: list[str] | None) -> str:
    return ";".join(value) if value else ""


def _untrusted_text(value: str) -> str:
    # Raters choose their browser's user agent; a leading "=" would run as a formula when
    # the researcher opens the CSV in a spreadsheet. Real user agents never start so.
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


class _Line:
    """A file-like target for csv.writer that hands back the line instead of storing it."""

    def write(self, line: str) -> str:
        return line


def csv_chunks(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    formats: Sequence[Callable[[Any], str]] | None = None,
    chunk_rows: int | None = None,
) -> Iterator[str]:
    """The header line, then the rows as CSV text in chunks of chunk_rows (default
    CSV_CHUNK_ROWS) lines. formats: one function per column that writes its cells, when the
    column types are known (cell() for every column otherwise)."""
    chunk_rows = chunk_rows or CSV_CHUNK_ROWS
    formats = formats or [cell] * len(columns)
    writer = csv.writer(_Line())
    yield writer.writerow(columns)
    chunk: list[str] = []
    for row in rows:
        chunk.append(writer.writerow([f(v) for f, v in zip(formats, row, strict=True)]))
        if len(chunk) >= chunk_rows:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


# --- trials.csv -------------------------------------------------------------------------

_TRIAL_FIELDS = (
    "trial__session__model__name",
    "trial__session__public_id",
    "trial__session__source",
    "trial__block__index",
    "trial__block__kind",
    "trial__index",
    "trial__image__public_id",
    "trial__is_real",
    "trial__requested_ms",
    "trial__frames",
    "shown_ms",
    "mask_ms",
    "refresh_ms",
    "response",
    "correct",
    "rt_ms",
    "page_hidden",
    "flags",
    "trial__presented_at",
    "answered_at",
)


def trial_rows(study: Study) -> Iterator[tuple[Any, ...]]:
    """One row per answered trial of the study (TRIAL_COLUMNS), rater by rater in the order
    they started, each in trial order. One query, read in chunks."""
    answers = (
        Answer.objects.filter(trial__session__study=study)
        .order_by("trial__session_id", "trial__index")
        .values_list(*_TRIAL_FIELDS)
        .iterator(chunk_size=DB_CHUNK_ROWS)
    )
    study_id = study.public_id
    for row in answers:
        yield (study_id, *row)


# How each trials column is written: a hundred thousand rows make cell()'s type tests count.
_TRIAL_FORMATS = (
    _text,  # study
    _text,  # model
    _text,  # rater
    _text,  # source
    _text,  # block
    _text,  # block_kind
    _text,  # trial_index
    _text,  # image_id
    _boolean,  # is_real
    _text,  # requested_ms
    _text,  # frames
    _number,  # shown_ms
    _number,  # mask_ms
    _number,  # refresh_ms
    _text,  # response
    _boolean,  # correct
    _number,  # rt_ms
    _boolean,  # page_hidden
    _flags,  # flags
    iso_utc,  # presented_at
    iso_utc,  # answered_at
)


def trials_csv(study: Study) -> Iterator[str]:
    return csv_chunks(TRIAL_COLUMNS, trial_rows(study), formats=_TRIAL_FORMATS)


# --- raters.csv -------------------------------------------------------------------------

_SESSION_FIELDS = (
    "id",
    "public_id",
    "model__name",
    "model_id",
    "source",
    "status",
    "qualification_correct",
    "qualification_total",
    "user_agent",
    "screen_width",
    "screen_height",
    "device_pixel_ratio",
    "refresh_ms",
    "started_at",
    "finished_at",
)

_ANSWER_FIELDS = (
    "trial__session_id",
    "trial__block_id",
    "trial__block__kind",
    "trial__requested_ms",
    "trial__is_real",
    "correct",
    "flags",
)


@dataclasses.dataclass(frozen=True)
class RaterScore:
    """What the raters export says about one rater's answers. The scores are those
    study_results counts: a completed rater's task answers, through the same hype.science
    functions, so they equal its rater_scores."""

    answers: int
    task_answers: int
    flagged: int
    time_score_ms: float | None = None
    inf_error: float | None = None
    inf_fake_error: float | None = None
    inf_real_error: float | None = None

    @property
    def in_score(self) -> bool:
        return self.time_score_ms is not None or self.inf_error is not None


def rater_score(*, study: Study, completed: bool, answers: Sequence[Sequence[Any]]) -> RaterScore:
    """One rater's counts and score from their answers (rows of _ANSWER_FIELDS, in block and
    trial order, as study_results reads them)."""
    task = [a for a in answers if a[2] == Block.Kind.TASK]
    counts = {
        "answers": len(answers),
        "task_answers": len(task),
        "flagged": sum(1 for a in answers if a[6]),
    }
    if not completed or not task:
        return RaterScore(**counts)
    if study.method == Study.Method.TIME:
        blocks: dict[int, list[int]] = {}
        for _, block_id, _, requested_ms, _, _, _ in task:
            if requested_ms is not None:
                blocks.setdefault(block_id, []).append(requested_ms)
        if not blocks:
            return RaterScore(**counts)
        score = rater_time_score(
            list(blocks.values()),
            burn_in=study.threshold_burn_in,
            tie_rule=study.threshold_tie_rule,
        )
        return RaterScore(**counts, time_score_ms=score)
    rights = [a[5] for a in task]
    errors = inf_score(is_real=[a[4] for a in task], correct=rights)
    return RaterScore(
        **counts,
        # Wrong answers over answers, as the scores service computes a rater's score.
        inf_error=sum(not c for c in rights) / len(rights),
        inf_fake_error=errors.fake_error,
        inf_real_error=errors.real_error,
    )


def _answers_by_session(study: Study) -> Iterator[tuple[int, list[tuple[Any, ...]]]]:
    answers = (
        Answer.objects.filter(trial__session__study=study)
        .order_by("trial__session_id", "trial__block__index", "trial__position")
        .values_list(*_ANSWER_FIELDS)
        .iterator(chunk_size=DB_CHUNK_ROWS)
    )
    for session_id, rows in groupby(answers, key=itemgetter(0)):
        yield session_id, list(rows)


def rater_rows(study: Study) -> Iterator[tuple[Any, ...]]:
    """One row per rater session of the study (RATER_COLUMNS), in the order they started.

    Sessions and answers are two streams in session order, merged as they go: memory
    holds one rater's answers at a time, whatever the size of the study."""
    sessions = (
        RaterSession.objects.filter(study=study)
        .order_by("id")
        .values_list(*_SESSION_FIELDS)
        .iterator(chunk_size=SESSION_CHUNK_ROWS)
    )
    answers = _answers_by_session(study)
    pending = next(answers, None)
    for (
        session_id,
        public_id,
        model_name,
        model_id,
        source,
        status,
        qualification_correct,
        qualification_total,
        user_agent,
        screen_width,
        screen_height,
        device_pixel_ratio,
        refresh_ms,
        started_at,
        finished_at,
    ) in sessions:
        # Answers of a session the sessions query did not see (it began meanwhile): skip.
        while pending is not None and pending[0] < session_id:
            pending = next(answers, None)
        own: list[tuple[Any, ...]] = []
        if pending is not None and pending[0] == session_id:
            own = pending[1]
            pending = next(answers, None)
        score = rater_score(
            study=study, completed=status == RaterSession.Status.COMPLETED, answers=own
        )
        passed = None
        if qualification_total is not None:
            # The model is assigned when, and only when, the qualification is passed.
            passed = model_id is not None
        yield (
            study.public_id,
            public_id,
            model_name,
            source,
            status,
            score.in_score,
            score.time_score_ms,
            score.inf_error,
            score.inf_fake_error,
            score.inf_real_error,
            qualification_correct,
            qualification_total,
            passed,
            score.answers,
            score.task_answers,
            score.flagged,
            _untrusted_text(user_agent),
            screen_width,
            screen_height,
            device_pixel_ratio,
            refresh_ms,
            started_at,
            finished_at,
        )


def raters_csv(study: Study) -> Iterator[str]:
    return csv_chunks(RATER_COLUMNS, rater_rows(study))


# --- scores.csv -------------------------------------------------------------------------


def _baselines_by_model(study: Study) -> dict[str, Baseline]:
    """Each model's stored baselines against the study's own real images (compute_baselines)."""
    return {
        b.model.name: b
        for b in Baseline.objects.filter(
            study=study, reference=Baseline.STUDY_REAL_IMAGES
        ).select_related("model")
    }


def _baseline_values(baseline: Baseline | None) -> tuple[Any, ...]:
    if baseline is None:
        return (None,) * 8
    return (
        baseline.fid,
        baseline.kid_mean,
        baseline.kid_sd,
        baseline.precision,
        baseline.recall,
        baseline.n_real,
        baseline.n_fake,
        baseline.weights_sha256,
    )


def score_rows(study: Study, *, results: StudyResults | None = None) -> Iterator[tuple[Any, ...]]:
    """One row per model (SCORE_COLUMNS), exactly study_results' numbers, and the automated
    baselines (FID, KID, precision, recall against the study's real images) where
    compute_baselines has stored them; empty otherwise, never guessed."""
    results = results or study_results(study)
    baselines = _baselines_by_model(study)
    for model in results.models:
        score, inf = model.score, model.inf
        yield (
            study.public_id,
            model.name,
            results.method,
            results.unit,
            score.estimate if score else None,
            score.sd if score else None,
            score.low if score else None,
            score.high if score else None,
            score.confidence if score else None,
            score.resamples if score else None,
            score.seed if score else None,
            model.n_raters,
            model.n_in_progress,
            inf.fake_error if inf else None,
            inf.real_error if inf else None,
            *_baseline_values(baselines.get(model.name)),
        )


def scores_csv(study: Study, *, results: StudyResults | None = None) -> Iterator[str]:
    return csv_chunks(SCORE_COLUMNS, score_rows(study, results=results))


# --- results.tex ------------------------------------------------------------------------

_LATEX_SPECIALS = str.maketrans(
    {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
        "<": r"\textless{}",
        ">": r"\textgreater{}",
        "|": r"\textbar{}",
        "\n": " ",
        "\r": " ",
    }
)


def latex_escape(text: str) -> str:
    """Text that LaTeX prints as written (one pass, so escapes are never escaped again)."""
    return text.translate(_LATEX_SPECIALS)


def _one_decimal(value: float) -> str:
    return f"{value:.1f}"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}" if math.isfinite(value) else "---"


def latex_table(study: Study, *, results: StudyResults | None = None) -> str:
    """The results as a booktabs table for a paper: HYPE_time in ms or HYPE_inf in percent,
    with the bootstrap SD and interval and the number of raters, rounded to one decimal from
    study_results (the numbers the study page shows)."""
    results = results or study_results(study)
    timed = results.unit == "ms"
    level = f"{100 * study.confidence:g}\\%"
    if timed:
        header = [
            "Model",
            r"HYPE$_{\mathrm{time}}$ (ms)",
            "SD (ms)",
            f"{level} CI (ms)",
            "Raters",
        ]
        fmt = _one_decimal
    else:
        header = [
            "Model",
            r"HYPE$_{\infty}$ (\%)",
            r"Fakes error (\%)",
            r"Reals error (\%)",
            r"SD (\%)",
            f"{level} CI (\\%)",
            "Raters",
        ]
        fmt = _percent
    baselines = _baselines_by_model(study)
    if baselines:
        header.append("FID")
    rows = []
    for model in results.models:
        score = model.score
        numbers = ["---"] * (len(header) - 2 - bool(baselines))
        if score is not None:
            interval = f"{fmt(score.low)}--{fmt(score.high)}"
            if timed:
                numbers = [fmt(score.estimate), fmt(score.sd), interval]
            else:
                inf = model.inf
                fake = _percent(inf.fake_error) if inf else "---"
                real = _percent(inf.real_error) if inf else "---"
                numbers = [fmt(score.estimate), fake, real, fmt(score.sd), interval]
        row = [latex_escape(model.name), *numbers, str(model.n_raters)]
        if baselines:
            baseline = baselines.get(model.name)
            row.append(f"{baseline.fid:.2f}" if baseline else "---")
        rows.append(row)

    name = latex_escape(study.name)
    if timed:
        what = (
            rf"HYPE$_{{\mathrm{{time}}}}$ of {name}: the mean over raters of each rater's mean "
            r"block threshold (modal exposure); higher is more realistic."
        )
    else:
        what = (
            rf"HYPE$_{{\infty}}$ of {name}: the share of wrong answers pooled over raters, and "
            r"of fakes judged real and reals judged fake; 50\% is indistinguishable."
        )
    caption = (
        f"{what} SD and {level} percentile intervals from "
        f"{study.bootstrap_resamples:,} bootstrap resamples of raters."
    )
    if baselines:
        caption += (
            " FID: Inception-v3 pool3 features of each model's fakes against the study's "
            "real images (lower is closer)."
        )
    columns = "l" + "r" * (len(header) - 1)
    lines = [
        f"% HYPE results of study {study.public_id}, exported by hype {hype.__version__}.",
        r"% Needs \usepackage{booktabs} in the preamble.",
        r"\begin{table}[t]",
        r"  \centering",
        f"  \\begin{{tabular}}{{{columns}}}",
        r"    \toprule",
        "    " + " & ".join(header) + r" \\",
        r"    \midrule",
        *("    " + " & ".join(row) + r" \\" for row in rows),
        r"    \bottomrule",
        r"  \end{tabular}",
        f"  \\caption{{{caption}}}",
        f"  \\label{{tab:hype-{slugify(study.name) or 'study'}}}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


# --- bundle.json ------------------------------------------------------------------------


@cache
def git_commit() -> str | None:
    """The checked-out commit, or None outside a git checkout (e.g. an installed copy)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit or None


def software_versions() -> dict[str, str | None]:
    return {
        "hype": hype.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


def study_parameters(study: Study) -> dict[str, Any]:
    """Every protocol parameter of the study: all its own fields but identity and status."""
    return {
        field.name: getattr(study, field.attname)
        for field in Study._meta.concrete_fields
        if field.name not in _NOT_PARAMETERS
    }


def _json_safe(value: Any) -> Any:
    # JSON has no NaN: a missing fake or real error (no such images) is null.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _image_counts(study: Study) -> dict[int | str, dict[str, int]]:
    """model id, or "real" or "mask" -> role -> number of images."""
    counts: dict[int | str, dict[str, int]] = {}
    rows = (
        Image.objects.filter(study=study)
        .values_list("model_id", "is_real", "role")
        .annotate(n=Count("id"))
        .order_by()
    )
    for model_id, is_real, role, n in rows:
        key = model_id if model_id is not None else ("real" if is_real else "mask")
        counts.setdefault(key, {})[role] = n
    return counts


def _rater_counts(study: Study) -> dict[int | None, dict[str, int]]:
    """model id (None before a model is assigned) -> status -> number of sessions."""
    counts: dict[int | None, dict[str, int]] = {}
    rows = (
        RaterSession.objects.filter(study=study)
        .values_list("model_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for model_id, status, n in rows:
        counts.setdefault(model_id, {})[status] = n
    return counts


def bundle(study: Study, *, results: StudyResults | None = None) -> dict[str, Any]:
    """Everything needed to reproduce the study's result: its parameters, models, images
    and raters counted, study_results at full precision, and the software that computed
    them. JSON-ready (no NaN)."""
    results = results or study_results(study)
    images = _image_counts(study)
    raters = _rater_counts(study)
    models = []
    for model in study.models.order_by("name"):
        models.append(
            {
                "name": model.name,
                "description": model.description,
                "images": images.get(model.id, {}),
                "raters": raters.get(model.id, {}),
            }
        )
    result_models = []
    baselines = _baselines_by_model(study)
    for model in results.models:
        baseline = baselines.get(model.name)
        result_models.append(
            {
                "name": model.name,
                "n_raters": model.n_raters,
                "n_in_progress": model.n_in_progress,
                "rater_scores": list(model.rater_scores),
                "score": dataclasses.asdict(model.score) if model.score else None,
                "inf": dataclasses.asdict(model.inf) if model.inf else None,
                # The automated baselines (as in scores.csv): null until computed.
                "fid": baseline.fid if baseline else None,
                "kid": baseline.kid_mean if baseline else None,
                "kid_sd": baseline.kid_sd if baseline else None,
                "precision": baseline.precision if baseline else None,
                "recall": baseline.recall if baseline else None,
            }
        )
    return _json_safe(
        {
            "format": "hype-study-bundle",
            "format_version": 1,
            "exported_at": iso_utc(timezone.now()),
            "software": software_versions(),
            "study": {
                "public_id": study.public_id,
                "name": study.name,
                "method": study.method,
                "status": study.status,
                "created_at": iso_utc(study.created_at),
                "trials_per_rater": study.trials_per_rater,
            },
            "parameters": study_parameters(study),
            "models": models,
            "real_images": images.get("real", {}),
            "mask_images": images.get("mask", {}).get(Image.Role.MASK, 0),
            "unassigned_raters": raters.get(None, {}),
            "baselines": [
                {
                    "model": b.model.name,
                    "reference": b.reference,
                    "fid": b.fid,
                    "kid": b.kid_mean,
                    "kid_sd": b.kid_sd,
                    "kid_subsets": b.kid_subsets,
                    "kid_subset_size": b.kid_subset_size,
                    "precision": b.precision,
                    "recall": b.recall,
                    "neighbours": b.neighbours,
                    "n_real": b.n_real,
                    "n_fake": b.n_fake,
                    "weights_origin": b.weights_origin,
                    "weights_sha256": b.weights_sha256,
                    "computed_at": iso_utc(b.computed_at),
                }
                for b in Baseline.objects.filter(study=study)
                .select_related("model")
                .order_by("model__name", "reference")
            ],
            "results": {
                "method": results.method,
                "unit": results.unit,
                "models": result_models,
                "comparison": (
                    dataclasses.asdict(results.comparison) if results.comparison else None
                ),
            },
        }
    )
