"""`manage.py hype_scores STUDY`: a study's HYPE scores in the terminal, as a table (or as CSV or
JSON). The numbers are the API's (experiments.services.results_data.study_results_data) and the
scores.csv export's, both straight from experiments.services.scores.study_results."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from experiments.models import Study
from experiments.services.exports import scores_csv
from experiments.services.results_data import study_results_data

# Differences below this p value are called significant in the verdict, as on the study page.
ALPHA = 0.05


def study_lookup(reference: str) -> Study:
    """The study with this public id, else the one study with exactly this name."""
    study = Study.objects.filter(public_id=reference).first()
    if study is not None:
        return study
    named = list(Study.objects.filter(name=reference).order_by("created_at"))
    if len(named) > 1:
        choices = ", ".join(f"{s.public_id} (created {s.created_at:%Y-%m-%d})" for s in named)
        raise CommandError(
            f"{len(named)} studies are named {reference!r}; give the public id of one: {choices}"
        )
    if not named:
        raise CommandError(f"No study has the public id or the name {reference!r}.")
    return named[0]


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if unit == "error" else f"{value:.1f} ms"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return lines


def _verdict(data: dict[str, Any]) -> list[str]:
    comparison = data["comparison"]
    if comparison is None:
        return ["Not enough completed raters yet to compare the models (two per model needed)."]
    test = "Welch's t-test" if comparison["test"] == "t-test" else "ANOVA with Tukey HSD"
    p_value = comparison["p_value"]
    lines = [f"Comparison: {test}, p = {p_value:.3g}" if p_value is not None else test]
    better = "higher score" if data["unit"] == "ms" else "higher error"
    for pair in comparison["pairs"]:
        first, second = (pair["a"], pair["b"]) if pair["difference"] > 0 else (pair["b"], pair["a"])
        if pair["p_value"] is not None and pair["p_value"] < ALPHA:
            lines.append(
                f"  {first} is more realistic than {second} ({better}, p = {pair['p_value']:.3g})"
            )
        else:
            shown = "n/a" if pair["p_value"] is None else f"{pair['p_value']:.3g}"
            lines.append(f"  {pair['a']} vs {pair['b']}: no evidence of a difference (p = {shown})")
    return lines


class Command(BaseCommand):
    help = (
        "Print a study's HYPE scores: per model the score (ms for HYPE_time, % error for "
        "HYPE_inf), its bootstrap interval and SD, raters done and in progress, then the test "
        "of whether the models differ."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", metavar="STUDY", help="The study's public id or exact name.")
        parser.add_argument(
            "--format",
            choices=["table", "csv", "json"],
            default="table",
            help="table (default) for people; csv (the scores.csv export) or json (the API's "
            "results), at full precision, for scripts.",
        )

    def handle(self, *args, study: str, format: str, **options):
        found = study_lookup(study)
        data = study_results_data(study=found)
        if format == "json":
            self.stdout.write(json.dumps(data, indent=2))
        elif format == "csv":
            # The scores.csv export itself, so the terminal and the download agree.
            for chunk in scores_csv(found):
                self.stdout.write(chunk, ending="")
        else:
            self._table(found, data)

    def _table(self, study: Study, data: dict[str, Any]) -> None:
        unit = data["unit"]
        inf = study.method == Study.Method.INF
        confidence = next(
            (m["score"]["confidence"] for m in data["models"] if m["score"]), study.confidence
        )
        header = [
            "Model",
            "HYPE_inf (% error)" if inf else "HYPE_time (ms)",
            f"{100 * confidence:g}% CI",
            "SD",
            "Raters",
            "In progress",
        ]
        if inf:
            header += ["Fake error", "Real error"]
        rows = [header]
        for model in data["models"]:
            score = model["score"]
            row = [
                model["name"],
                _number(score["estimate"] if score else None, unit),
                f"{_number(score['low'], unit)} - {_number(score['high'], unit)}" if score else "-",
                _number(score["sd"] if score else None, unit),
                f"{model['n_raters']}/{model['target_raters']}",
                str(model["n_in_progress"]),
            ]
            if inf:
                row += [
                    _number(model["fake_error"], "error"),
                    _number(model["real_error"], "error"),
                ]
            rows.append(row)
        method = "HYPE_inf" if inf else "HYPE_time"
        self.stdout.write(f'Study "{study.name}" ({method}, {study.status}), {study.public_id}')
        self.stdout.write("")
        for line in _table(rows):
            self.stdout.write(line)
        self.stdout.write("")
        for line in _verdict(data):
            self.stdout.write(line)
