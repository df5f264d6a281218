"""`manage.py simulate_raters`: simulated raters take a live study through a running server,
over the real pages and websocket, for dry runs and load tests (docs/demo.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments.dashboard.formatting import score_lines
from experiments.management.studies import study_argument_add, study_from_argument
from experiments.services.scores import study_results
from experiments.simulation.client import simulation_run
from experiments.simulation.plan import (
    DEFAULT_PACE,
    DEFAULT_QUALIFICATION_ACCURACY,
    DEFAULT_THINK_MS,
    SimulationError,
    plan_make,
)


def _pairs(values: list[str], *, what: str, low: float, high: float) -> dict[str, float]:
    pairs = {}
    for value in values:
        name, sep, number = value.rpartition("=")
        try:
            parsed = float(number)
        except ValueError:
            parsed = None
        if not sep or not name or parsed is None or not low <= parsed <= high:
            raise CommandError(
                f"expected NAME={what} with {what} in [{low:g}, {high:g}]: {value!r}"
            )
        pairs[name] = parsed
    return pairs


def _pace(value: str) -> tuple[int, float] | None:
    if value.lower() in {"off", "none", "0"}:
        return None
    messages, sep, seconds = value.partition("/")
    try:
        pace = (int(messages), float(seconds))
    except ValueError:
        pace = None
    if not sep or pace is None or pace[0] < 1 or pace[1] <= 0:
        raise CommandError(f"--pace takes MESSAGES/SECONDS (e.g. 50/5) or off, got {value!r}")
    return pace


class Command(BaseCommand):
    help = (
        "Run N simulated raters through a live study on a running server (real HTTP and "
        "websocket), each answering like a simulated observer of its assigned model."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        study_argument_add(parser, name="--study", required=True)
        parser.add_argument("--n", type=int, required=True, help="Number of raters.")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="The server.")
        parser.add_argument(
            "--model",
            action="append",
            default=[],
            metavar="NAME=THRESHOLD_MS",
            help="HYPE_time threshold the staircase should find for this model's raters "
            "(default 300 ms).",
        )
        parser.add_argument(
            "--inf-error",
            action="append",
            default=[],
            metavar="NAME=ERROR",
            help="Untimed error rate of this model's raters, 0-1 (HYPE_inf; default 0.25).",
        )
        parser.add_argument("--concurrency", type=int, default=8, help="Raters at once.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--think-ms",
            type=float,
            default=DEFAULT_THINK_MS,
            help="Pause before each answer, in ms.",
        )
        parser.add_argument(
            "--pace",
            default=f"{DEFAULT_PACE[0]}/{DEFAULT_PACE[1]:g}",
            help="At most MESSAGES per SECONDS on each socket, to stay under the server's "
            "flood limit (HYPE_RATER_FLOOD_MESSAGES/_WINDOW_S, default 60/5); 'off' sends at "
            "machine speed, for a server whose limit was raised.",
        )
        parser.add_argument(
            "--qualification-accuracy",
            type=float,
            default=DEFAULT_QUALIFICATION_ACCURACY,
            help="Share of qualification images the raters get right.",
        )

    def handle(self, *args, **options) -> None:
        if options["n"] < 1:
            raise CommandError("--n must be at least 1.")
        if not 0.0 <= options["qualification_accuracy"] <= 1.0:
            raise CommandError("--qualification-accuracy must be between 0 and 1.")
        if options["think_ms"] < 0:
            raise CommandError("--think-ms must not be negative.")
        thresholds = _pairs(options["model"], what="THRESHOLD_MS", low=1, high=100_000)
        errors = _pairs(options["inf_error"], what="ERROR", low=0, high=1)
        study = study_from_argument(options["study"])
        try:
            plan = plan_make(
                study,
                base_url=options["url"],
                raters=options["n"],
                thresholds_ms=thresholds,
                inf_errors=errors,
                concurrency=options["concurrency"],
                think_ms=options["think_ms"],
                pace=_pace(options["pace"]),
                seed=options["seed"],
                qualification_accuracy=options["qualification_accuracy"],
            )
            self.stdout.write(
                f"Simulating {plan.raters} raters on {study.name!r} ({study.method}) at "
                f"{plan.base_url}, {plan.concurrency} at a time"
            )
            report = simulation_run(plan=plan, report=self.stdout.write)
        except SimulationError as error:
            raise CommandError(str(error)) from None

        completed = sum(r.outcome == "completed" for r in report.raters)
        answers = sum(r.answers for r in report.raters)
        self.stdout.write(
            f"{completed}/{len(report.raters)} raters completed, {answers} answers stored in "
            f"{report.seconds:.1f} s ({answers / max(report.seconds, 1e-9):.0f} answers/s)"
        )
        given = {name: f"{ms:g} ms" for name, ms in thresholds.items()}
        if study.method == study.Method.INF:
            given = {name: f"{100 * e:g}% error" for name, e in errors.items()}
        self.stdout.write("Scores of the study's completed raters:")
        for line in score_lines(study_results(study), given=given):
            self.stdout.write(line)
        if report.failures:
            raise CommandError(
                f"{len(report.failures)} raters failed: "
                + "; ".join(f"rater {r.index + 1}: {r.error}" for r in report.failures[:5])
            )
