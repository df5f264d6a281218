"""`python -m hype.science.rescore trials.csv [bundle.json]`: a study's scores.csv remade from
its released trials (and parameters), with numpy and scipy only, so a reviewer can check a
paper's table; `--check scores.csv` compares column by column (docs/rescore.md).

What is recomputed follows experiments.services.scores exactly: task blocks only (the
qualification never counts); exclusions "applied" counts the completed raters, "none" those
excluded after completing too; raters in session order (the order trials.csv lists them in:
the bootstrap's draws depend on it); each model's stream seeded by
model_stream_seed(bootstrap_seed, name); HYPE_time's modal score and the joint psychometric
fit over every model's counted raters; HYPE_inf's pooled error and its fake and real errors.
The automated baselines (FID, KID, Inception Score, precision, recall) come from images, not
trials: they are copied from the bundle, and the tool says so.

Which excluded raters had completed (counted without exclusions, and in n_excluded) is read
from, first found: a status_before_exclusion column of trials.csv, `--raters raters.csv`, or
the bundle's per-model n_excluded when it leaves no doubt (every excluded rater of the model
with a task answer, or none, completed). Raters in progress (n_in_progress) are the bundle's
per-model status counts; without a bundle those of trials.csv.

Without bundle.json these defaults are assumed (and printed): the study's model defaults,
bootstrap_seed 0, bootstrap_resamples 10000, confidence 0.95, interval_method "percentile",
time_score "mode", threshold_burn_in 0, threshold_tie_rule "mean", the paper's staircase
(hype.science.staircase.StaircaseRule()), the method "time" when a task trial has a requested
exposure ("inf" otherwise), models in name order, and every excluded rater as having completed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hype.science.bootstrap import (
    BootstrapResult,
    bootstrap_mean,
    bootstrap_pooled_rate,
    model_stream_seed,
)
from hype.science.error_rates import inf_score_from_counts
from hype.science.psychometric import (
    PsychometricFit,
    fit_contribution,
    model_fit_score,
    study_fit,
)
from hype.science.staircase import StaircaseRule
from hype.science.thresholds import rater_time_score

# scores.csv's columns, in order (experiments.services.exports.scores.SCORE_COLUMNS; a test
# holds them equal).
FIT_COLUMNS = (
    "fit_score",
    "fit_sd",
    "fit_ci_low",
    "fit_ci_high",
    "fit_censored_low",
    "fit_censored_high",
)
# The baselines: (scores.csv column, key of a bundle.json "baselines" entry).
BASELINE_COLUMNS = (
    ("fid", "fid"),
    ("kid", "kid"),
    ("kid_sd", "kid_sd"),
    ("inception_score", "inception_score"),
    ("inception_score_sd", "inception_score_sd"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("baseline_real_images", "n_real"),
    ("baseline_fake_images", "n_fake"),
    ("baseline_weights_sha256", "weights_sha256"),
)
COPIED_COLUMNS = tuple(column for column, _ in BASELINE_COLUMNS)
SCORE_COLUMNS = (
    "study",
    "model",
    "method",
    "unit",
    "exclusions",
    "score",
    "sd",
    "ci_low",
    "ci_high",
    "confidence",
    "resamples",
    "seed",
    "n_raters",
    "n_in_progress",
    "n_excluded",
    "fake_error",
    "real_error",
    "interval_method",
    "headline",
    *FIT_COLUMNS,
    *COPIED_COLUMNS,
)
RECOMPUTED_COLUMNS = tuple(c for c in SCORE_COLUMNS if c not in COPIED_COLUMNS)

APPLIED, NONE = "applied", "none"
COMPLETED, EXCLUDED = "completed", "excluded"
IN_PROGRESS = ("consented", "qualifying", "in_task")
TASK = "task"
# The baselines scores.csv shows: against the study's own real images.
STUDY_REAL_IMAGES = "study real images"

# The Study model's defaults, for a trials.csv without its bundle.
DEFAULT_PARAMETERS: dict[str, Any] = {
    "bootstrap_seed": 0,
    "bootstrap_resamples": 10_000,
    "confidence": 0.95,
    "interval_method": "percentile",
    "time_score": "mode",
    "threshold_burn_in": 0,
    "threshold_tie_rule": "mean",
    "staircase_run_length": 3,
    "staircase_step_down_ms": 30,
    "staircase_step_up_ms": 10,
    "staircase_start_ms": 500,
    "staircase_floor_ms": 100,
    "staircase_ceiling_ms": 1000,
}


def cell(value: Any) -> str:
    """A cell as experiments.services.exports.cells.cell writes it: empty for missing (None,
    NaN), the shortest exact float (repr)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


@dataclass
class Rater:
    """One rater of trials.csv, with their task trials in block and trial order."""

    public_id: str
    model: str
    status: str
    status_before_exclusion: str | None = None
    # (block index, trial index, requested_ms or None, is_real, correct)
    trials: list[tuple[int, int, int | None, bool, bool]] = field(default_factory=list)

    def counted(self, exclusions: str) -> bool:
        if self.status == COMPLETED:
            return True
        return (
            exclusions == NONE
            and self.status == EXCLUDED
            and self.status_before_exclusion == COMPLETED
        )

    def blocks(self) -> dict[int, list[tuple[int | None, bool, bool]]]:
        by_block: dict[int, list[tuple[int | None, bool, bool]]] = defaultdict(list)
        for block, _, requested_ms, is_real, correct in sorted(self.trials):
            by_block[block].append((requested_ms, is_real, correct))
        return by_block


@dataclass
class Study:
    """What the scores are made from: the parameters, the models in order, the raters in
    session order, and what was assumed, copied or deduced to get them."""

    public_id: str
    method: str
    parameters: dict[str, Any]
    models: list[str]
    raters: list[Rater]
    in_progress: dict[str, int]
    baselines: dict[str, dict[str, Any]]
    notes: list[str]


def _flag(value: str) -> bool:
    return value == "true"


def read_trials(*, text: str) -> tuple[str, list[Rater], bool]:
    """(study public id, the raters with a task answer in the order trials.csv lists them,
    whether it has a status_before_exclusion column)."""
    reader = csv.DictReader(io.StringIO(text))
    has_before = "status_before_exclusion" in (reader.fieldnames or ())
    raters: dict[str, Rater] = {}
    study_id = ""
    for row in reader:
        study_id = row["study"]
        rater = raters.get(row["rater"])
        if rater is None:
            rater = raters[row["rater"]] = Rater(
                public_id=row["rater"],
                model=row["model"],
                status=row["rater_status"],
                status_before_exclusion=row.get("status_before_exclusion") or None,
            )
        if row["block_kind"] != TASK:
            continue
        requested = row["requested_ms"]
        rater.trials.append(
            (
                int(row["block"]),
                int(row["trial_index"]),
                int(requested) if requested else None,
                _flag(row["is_real"]),
                _flag(row["correct"]),
            )
        )
    return study_id, [r for r in raters.values() if r.trials], has_before


def _read_raters_csv(*, text: str) -> dict[str, str]:
    return {
        row["rater"]: row.get("status_before_exclusion") or ""
        for row in csv.DictReader(io.StringIO(text))
    }


def _excluded_from_bundle(*, raters: list[Rater], bundle: dict[str, Any], notes: list[str]) -> None:
    """Which excluded raters completed, from the bundle's per-model n_excluded where that
    leaves no doubt: a rater excluded after completing has task answers, so when the model's
    excluded raters with a task answer number n_excluded, all of them did; when 0, none."""
    counts = {m["name"]: m["n_excluded"] for m in bundle["results"]["models"]}
    for model in {r.model for r in raters if r.status == EXCLUDED}:
        excluded = [r for r in raters if r.model == model and r.status == EXCLUDED]
        n = counts.get(model)
        if n not in (0, len(excluded)):
            raise SystemExit(
                f"model {model!r}: {len(excluded)} excluded raters answered a task trial and "
                f"the bundle says {n} had completed; which ones is in raters.csv "
                "(status_before_exclusion): pass --raters raters.csv"
            )
        for rater in excluded:
            rater.status_before_exclusion = COMPLETED if n else "in_task"
    notes.append("which excluded raters had completed: deduced from bundle.json's n_excluded")


def load_study(
    *, trials_text: str, bundle: dict[str, Any] | None, raters_text: str | None = None
) -> Study:
    """The study as trials.csv, bundle.json and raters.csv (optional) describe it."""
    study_id, raters, has_before = read_trials(text=trials_text)
    notes: list[str] = []
    if has_before:
        notes.append("which excluded raters had completed: trials.csv status_before_exclusion")
    elif raters_text is not None:
        before = _read_raters_csv(text=raters_text)
        for rater in raters:
            rater.status_before_exclusion = before.get(rater.public_id) or None
        notes.append("which excluded raters had completed: raters.csv status_before_exclusion")
    elif bundle is not None:
        _excluded_from_bundle(raters=raters, bundle=bundle, notes=notes)
    else:
        for rater in raters:
            if rater.status == EXCLUDED:
                rater.status_before_exclusion = COMPLETED
        notes.append("assumed: every excluded rater had completed (no bundle.json, raters.csv)")

    if bundle is None:
        timed = any(t[2] is not None for r in raters for t in r.trials)
        method = "time" if timed else "inf"
        parameters = dict(DEFAULT_PARAMETERS)
        models = sorted({r.model for r in raters})
        in_progress: dict[str, int] = defaultdict(int)
        for rater in raters:
            in_progress[rater.model] += rater.status in IN_PROGRESS
        notes.append(
            f"assumed (no bundle.json): method {method!r} from the trials, the defaults "
            + ", ".join(f"{k}={v!r}" for k, v in DEFAULT_PARAMETERS.items())
            + "; models in name order; raters in progress: only those with a task answer"
        )
        return Study(study_id, method, parameters, models, raters, in_progress, {}, notes)

    parameters = dict(DEFAULT_PARAMETERS) | bundle["parameters"]
    missing = sorted(set(DEFAULT_PARAMETERS) - set(bundle["parameters"]))
    if missing:
        notes.append(f"assumed (not in bundle.json): {', '.join(missing)} at their defaults")
    models = [m["name"] for m in bundle["models"]]
    in_progress = {
        m["name"]: sum(m["raters"].get(status, 0) for status in IN_PROGRESS)
        for m in bundle["models"]
    }
    baselines = {
        b["model"]: b
        for b in bundle.get("baselines", [])
        if b.get("reference") == STUDY_REAL_IMAGES
    }
    return Study(
        study_id or bundle["study"]["public_id"],
        bundle["parameters"].get("method", bundle["study"]["method"]),
        parameters,
        models,
        raters,
        in_progress,
        baselines,
        notes,
    )


# --- The scores, as experiments.services.scores makes them -------------------------------


@dataclass(frozen=True)
class RaterScore:
    score: float | None
    n_fake: int
    wrong_fake: int
    n_real: int
    wrong_real: int


def rater_score(*, study: Study, rater: Rater) -> RaterScore:
    """experiments.services.scores._rater_score from the rater's task trials."""
    counts = {"n_fake": 0, "wrong_fake": 0, "n_real": 0, "wrong_real": 0}
    exposures: dict[int, list[int]] = defaultdict(list)
    for block, trials in rater.blocks().items():
        for requested_ms, is_real, correct in trials:
            if requested_ms is not None:
                exposures[block].append(requested_ms)
            kind = "real" if is_real else "fake"
            counts[f"n_{kind}"] += 1
            counts[f"wrong_{kind}"] += not correct
    score = None
    if study.method == "time":
        if exposures:
            try:
                score = rater_time_score(
                    list(exposures.values()),
                    burn_in=study.parameters["threshold_burn_in"],
                    tie_rule=study.parameters["threshold_tie_rule"],
                )
            except ValueError:
                score = None
    else:
        score = (counts["wrong_fake"] + counts["wrong_real"]) / (
            counts["n_fake"] + counts["n_real"]
        )
    return RaterScore(score=score, **counts)


def _timed_blocks(rater: Rater) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    blocks = []
    for trials in rater.blocks().values():
        timed = [(ms, correct) for ms, _, correct in trials if ms is not None]
        if timed:
            blocks.append(
                (
                    np.asarray([ms for ms, _ in timed], dtype=float),
                    np.asarray([c for _, c in timed], dtype=bool),
                )
            )
    return tuple(blocks)


def _rule(parameters: dict[str, Any]) -> StaircaseRule:
    return StaircaseRule(
        run_length=parameters["staircase_run_length"],
        step_down_ms=parameters["staircase_step_down_ms"],
        step_up_ms=parameters["staircase_step_up_ms"],
        start_ms=parameters["staircase_start_ms"],
        floor_ms=parameters["staircase_floor_ms"],
        ceiling_ms=parameters["staircase_ceiling_ms"],
    )


def joint_fit(*, study: Study, raters: list[Rater]) -> dict[str, PsychometricFit]:
    """The joint fit of these raters (in session order), every model's together; empty for
    HYPE_inf, without a timed trial, or for a rule at or below chance."""
    if study.method != "time":
        return {}
    trials = {r.public_id: _timed_blocks(r) for r in raters}
    trials = {k: v for k, v in trials.items() if v}
    if not trials:
        return {}
    try:
        return study_fit(raters=trials, rule=_rule(study.parameters))
    except ValueError:
        return {}


def _bootstrap(*, study: Study, model: str, values: Sequence[float]) -> BootstrapResult:
    p = study.parameters
    return bootstrap_mean(
        values,
        resamples=p["bootstrap_resamples"],
        confidence=p["confidence"],
        seed=model_stream_seed(p["bootstrap_seed"], model),
        method=p["interval_method"],
    )


def score_rows(*, study: Study) -> list[dict[str, Any]]:
    """scores.csv's rows (column -> value): two per model in the study's model order, the
    study's result (exclusions applied) then the result without exclusions."""
    p = study.parameters
    timed = study.method == "time"
    scores = {r.public_id: rater_score(study=study, rater=r) for r in study.raters}
    fits = {
        view: joint_fit(study=study, raters=[r for r in study.raters if r.counted(view)])
        for view in (APPLIED, NONE)
    }
    excluded = defaultdict(int)
    for rater in study.raters:
        if rater.status == EXCLUDED and rater.status_before_exclusion == COMPLETED:
            excluded[rater.model] += 1
    rows = []
    for model in study.models:
        seed = model_stream_seed(p["bootstrap_seed"], model)
        for view in (APPLIED, NONE):
            own = [r for r in study.raters if r.model == model and r.counted(view)]
            scored = [scores[r.public_id] for r in own if scores[r.public_id].score is not None]
            values = [s.score for s in scored]
            score = inf = None
            if values and timed:
                score = _bootstrap(study=study, model=model, values=values)
            elif values:
                score = bootstrap_pooled_rate(
                    [s.wrong_fake + s.wrong_real for s in scored],
                    [s.n_fake + s.n_real for s in scored],
                    resamples=p["bootstrap_resamples"],
                    confidence=p["confidence"],
                    seed=seed,
                    method=p["interval_method"],
                )
                inf = inf_score_from_counts(
                    n_fake=sum(s.n_fake for s in scored),
                    wrong_fake=sum(s.wrong_fake for s in scored),
                    n_real=sum(s.n_real for s in scored),
                    wrong_real=sum(s.wrong_real for s in scored),
                )
            model_fits = [fits[view][r.public_id] for r in own if r.public_id in fits[view]]
            fit_score = summary = None
            if model_fits:
                summary = model_fit_score(model_fits)
                contributions = [float(fit_contribution(f)) for f in model_fits]
                fit_score = _bootstrap(study=study, model=model, values=contributions)
            baseline = study.baselines.get(model, {})
            rows.append(
                {
                    "study": study.public_id,
                    "model": model,
                    "method": study.method,
                    "unit": "ms" if timed else "error",
                    "exclusions": view,
                    "score": score.estimate if score else None,
                    "sd": score.sd if score else None,
                    "ci_low": score.low if score else None,
                    "ci_high": score.high if score else None,
                    "confidence": score.confidence if score else None,
                    "resamples": score.resamples if score else None,
                    "seed": score.seed if score else None,
                    "n_raters": len(values),
                    "n_in_progress": study.in_progress.get(model, 0),
                    "n_excluded": excluded[model],
                    "fake_error": inf.fake_error if inf else None,
                    "real_error": inf.real_error if inf else None,
                    "interval_method": p["interval_method"],
                    "headline": p["time_score"] if timed else None,
                    "fit_score": fit_score.estimate if fit_score else None,
                    "fit_sd": fit_score.sd if fit_score else None,
                    "fit_ci_low": fit_score.low if fit_score else None,
                    "fit_ci_high": fit_score.high if fit_score else None,
                    "fit_censored_low": summary.censored_low if fit_score else None,
                    "fit_censored_high": summary.censored_high if fit_score else None,
                    **{column: baseline.get(key) for column, key in BASELINE_COLUMNS},
                }
            )
    return rows


def scores_csv_text(*, rows: list[dict[str, Any]], columns: Sequence[str] = SCORE_COLUMNS) -> str:
    """The rows as scores.csv writes them (csv module, its line endings, repr floats)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in columns])
    return out.getvalue()


# --- Checking a scores.csv -----------------------------------------------------------------


def check(*, rows: list[dict[str, Any]], expected_text: str) -> tuple[list[str], bool]:
    """(report lines, whether every column matched): each column of the given scores.csv
    compared as text, row by row (rows matched on model and exclusions)."""
    reader = csv.DictReader(io.StringIO(expected_text))
    columns = list(reader.fieldnames or ())
    expected = {(row["model"], row["exclusions"]): row for row in reader}
    mine = {(row["model"], row["exclusions"]): row for row in rows}
    lines, ok = [], True
    if set(expected) != set(mine):
        ok = False
        lines.append(
            f"rows: given {sorted(expected)} but recomputed {sorted(mine)} (model, exclusions)"
        )
    keys = [key for key in expected if key in mine]
    for column in columns:
        if column not in SCORE_COLUMNS:
            ok = False
            lines.append(f"{column}: unknown to this tool, not checked")
            continue
        differences = [
            f"{model}/{view}: given {expected[(model, view)][column]!r}, "
            f"recomputed {cell(mine[(model, view)].get(column))!r}"
            for model, view in keys
            if expected[(model, view)][column] != cell(mine[(model, view)].get(column))
        ]
        how = "copied" if column in COPIED_COLUMNS else "recomputed"
        if differences:
            ok = False
            lines.append(f"{column} ({how}): {len(differences)} differ: " + "; ".join(differences))
        else:
            lines.append(f"{column} ({how}): match")
    for column in SCORE_COLUMNS:
        if column not in columns:
            lines.append(f"{column}: not in the given scores.csv, not checked")
    return lines, ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hype.science.rescore",
        description="Recompute a study's scores.csv from trials.csv (and bundle.json).",
    )
    parser.add_argument("trials", help="trials.csv of the study")
    parser.add_argument("bundle", nargs="?", help="bundle.json of the study (parameters)")
    parser.add_argument(
        "--raters", help="raters.csv: which excluded raters had completed (status_before_exclusion)"
    )
    parser.add_argument("--out", help="write the scores here rather than to stdout")
    parser.add_argument("--check", metavar="SCORES_CSV", help="compare with this scores.csv")
    args = parser.parse_args(argv)

    with open(args.trials, newline="", encoding="utf-8") as f:
        trials_text = f.read()
    bundle = None
    if args.bundle:
        with open(args.bundle, encoding="utf-8") as f:
            bundle = json.load(f)
    raters_text = None
    if args.raters:
        with open(args.raters, newline="", encoding="utf-8") as f:
            raters_text = f.read()
    study = load_study(trials_text=trials_text, bundle=bundle, raters_text=raters_text)
    rows = score_rows(study=study)

    report = sys.stderr if args.out is None and args.check is None else sys.stdout
    print(f"recomputed from the trials: {', '.join(RECOMPUTED_COLUMNS)}", file=report)
    source = "bundle.json" if bundle is not None else "nowhere (no bundle.json): left empty"
    print(f"copied from {source}: {', '.join(COPIED_COLUMNS)}", file=report)
    for note in study.notes:
        print(note, file=report)

    text = scores_csv_text(rows=rows)
    if args.out:
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            f.write(text)
    elif args.check is None:
        sys.stdout.write(text)
    if args.check is None:
        return 0
    with open(args.check, newline="", encoding="utf-8") as f:
        lines, ok = check(rows=rows, expected_text=f.read())
    for line in lines:
        print(line)
    print("every column matches" if ok else "MISMATCH", file=sys.stdout)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
