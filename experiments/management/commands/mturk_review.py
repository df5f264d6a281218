"""`manage.py mturk_review STUDY [--approve] [--bonus] [--include-excluded]`: a study's MTurk
HIT reviewed: starters given the study's qualification, assignments matched to sessions and
counted, and with the options approved and paid their bonus, once; raters excluded after
completing only with --include-excluded (experiments.recruiting.mturk)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from experiments.management.studies import study_argument_add, study_from_argument
from experiments.recruiting.mturk import ASSIGNMENT_STATUSES, MTurkError, mturk_assignments_review
from experiments.services.payments import cents_as_amount
from experiments.services.problems import InputProblems

# What a review did, in the order it is told.
DONE = [
    ("approved", "approved now"),
    ("approval recorded", "approved at MTurk before, recorded as paid now"),
    ("already approved", "approved and recorded before"),
    ("not completed here", "submitted without completing the study here: not approved"),
    ("approved, not completed here", "approved at MTurk without completing the study here"),
    ("bonus paid", "bonuses sent now"),
    ("bonus found paid", "bonuses an earlier run had sent, recorded as paid now"),
    ("bonus already paid", "bonuses paid before"),
    ("bonus waits for approval", "bonuses that wait for their assignment's approval"),
]


class Command(BaseCommand):
    help = (
        "Review a study's MTurk HIT: give every worker who started here the study's "
        "qualification, match each assignment to its session, and count them. --approve "
        "approves the submitted assignments of completed sessions; --bonus sends each "
        "approved, completed rater's bonus. A rerun pays nothing twice."
    )

    def add_arguments(self, parser):
        study_argument_add(parser)
        parser.add_argument(
            "--approve",
            action="store_true",
            help="Approve the submitted assignment of every session completed here (pays the "
            "HIT's reward).",
        )
        parser.add_argument(
            "--bonus",
            action="store_true",
            help="Send each completed rater whose assignment is approved the bonus for their "
            "correct answers.",
        )
        parser.add_argument(
            "--include-excluded",
            action="store_true",
            help="Approve and pay raters excluded after completing too (an exclusion changes "
            "what is scored, not what was earned); without it they are listed and left out.",
        )

    def handle(
        self, *args, study: str, approve: bool, bonus: bool, include_excluded: bool, **options
    ):
        found = study_from_argument(study)
        try:
            report = mturk_assignments_review(
                study=found, approve=approve, bonus=bonus, include_excluded=include_excluded
            )
        except InputProblems as error:
            raise CommandError("\n".join(error.problems)) from None
        except MTurkError as error:
            raise CommandError(str(error)) from None
        where = "MTurk's sandbox" if report.sandbox else "MTurk"
        out = self.stdout.write
        out(
            f'Study "{found.name}": HIT {report.hit_id} on {where} ({report.hit_status}, '
            f"reward {report.reward} USD)."
        )
        out(f"Workers who started here, given the qualification: {report.workers_qualified}")
        total = sum(report.statuses.values())
        counts = ", ".join(
            f"{report.statuses[status]} {status.lower()}" for status in ASSIGNMENT_STATUSES
        )
        out(f"Assignments: {total} ({counts})")
        out(
            f"  matched to a session here: {report.matched}, of which completed: "
            f"{report.completed}; not matched: {total - report.matched}"
        )
        for key, words in DONE:
            if report.done[key]:
                out(f"  {words}: {report.done[key]}")
        if bonus:
            out(f"  bonuses paid in this run: {cents_as_amount(report.bonus_cents)} USD")
        if report.excluded:
            n = len(report.excluded)
            out(
                f"Left out: {n} payment{'s' if n != 1 else ''} of raters excluded after "
                "completing; they earned them: decide on MTurk, or rerun with "
                "--include-excluded:"
            )
            for line in report.excluded:
                out(f"  {line}")
        for heading, lines in [
            ("To look at (nothing was paid for these)", report.notes),
            ("Refused by MTurk: not paid", report.problems),
            ("Outcome not known: left sent", report.unknown),
        ]:
            if lines:
                self.stderr.write(f"{heading}:")
                for line in lines:
                    self.stderr.write(f"  - {line}")
        if report.stopped:
            self.stderr.write(f"Stopped early: {report.stopped}")
        if not report.settled:
            raise CommandError(
                "Some payments are not settled (above). Rerun mturk_review with the same "
                "options once the cause is fixed: it pays nothing twice."
            )
