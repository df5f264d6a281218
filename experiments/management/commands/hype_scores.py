"""`manage.py hype_scores STUDY`: a study's HYPE scores in the terminal, as a table with the study
page's verdict (or as CSV or JSON), with exclusions applied and, when a rater is excluded,
without them. The numbers are the API's
(experiments.services.results_data.study_results_data) and the scores.csv export's, all from
experiments.services.scores."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from experiments.dashboard.formatting import score_formatter, verdict
from experiments.management.studies import study_argument_add, study_from_argument
from experiments.models import Study
from experiments.services.exports.scores import scores_csv
from experiments.services.results_data import study_results_data
from experiments.services.scores import study_results_both


def _number(value: float | None, unit: str) -> str:
    return "-" if value is None else score_formatter(unit)(value)


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


class Command(BaseCommand):
    help = (
        "Print a study's HYPE scores: per model the score (ms for HYPE_time, % error for "
        "HYPE_inf), its bootstrap interval and SD, raters done and in progress, then the test "
        "of whether the models differ."
    )

    def add_arguments(self, parser):
        study_argument_add(parser)
        parser.add_argument(
            "--format",
            choices=["table", "csv", "json"],
            default="table",
            help="table (default) for people; csv (the scores.csv export) or json (the API's "
            "results), at full precision, for scripts.",
        )

    def handle(self, *args, study: str, format: str, **options):
        found = study_from_argument(study)
        results, without = study_results_both(found)
        data = study_results_data(study=found, results=results, without_exclusions=without)
        if format == "json":
            self.stdout.write(json.dumps(data, indent=2))
        elif format == "csv":
            # The scores.csv export itself, so the terminal and the download agree.
            for chunk in scores_csv(found, results=results, without_exclusions=without):
                self.stdout.write(chunk, ending="")
        else:
            method = "HYPE_inf" if found.method == Study.Method.INF else "HYPE_time"
            self.stdout.write(f'Study "{found.name}" ({method}, {found.status}), {found.public_id}')
            self.stdout.write("")
            excluded = results.n_excluded
            if excluded:
                self.stdout.write(
                    f"With exclusions applied ({excluded} rater{'s' if excluded != 1 else ''} "
                    "excluded after completing left out): the study's result"
                )
            else:
                self.stdout.write("No rater is excluded: with and without exclusions, the same.")
            self._table(found, data)
            self._verdict(results)
            if excluded:
                self.stdout.write("")
                self.stdout.write(
                    f"Without exclusions (every rater who completed, the {excluded} excluded "
                    "among them)"
                )
                self._table(found, data["without_exclusions"])
                self._verdict(without)

    def _verdict(self, results) -> None:
        self.stdout.write("")
        # The study page's sentences, word for word.
        lead, pairs = verdict(results)
        for line in [lead, *(f"  {pair}" for pair in pairs)]:
            self.stdout.write(line)

    def _table(self, study: Study, data: dict[str, Any]) -> None:
        unit = study.score_unit
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
        for line in _table(rows):
            self.stdout.write(line)
