"""`manage.py prolific_bonus STUDY [--dry-run] [--confirm-paid BATCH_ID] [--include-excluded]`:
pay each completed Prolific rater's bonus through Prolific's bulk bonuses, each payment
recorded before it is sent, so that a rerun pays nothing twice; bonuses whose payment is
unknown stop it. Raters excluded after completing are left out unless --include-excluded."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from experiments.management.studies import study_argument_add, study_from_argument
from experiments.recruiting.prolific import (
    BonusLine,
    ProlificError,
    counted,
    prolific_bonuses_confirm,
    prolific_bonuses_pay,
    prolific_bonuses_plan,
    unconfirmed_message,
)
from experiments.services.payments import cents_as_amount
from experiments.services.problems import InputProblems


def _total(lines: list[BonusLine]) -> int:
    return sum(line.cents for line in lines)


class Command(BaseCommand):
    help = (
        "Pay the bonus of every completed Prolific rater whose submission is approved, through "
        "Prolific's bulk bonuses, recording each payment first; a rerun pays nothing twice. "
        "--dry-run only prints what would be paid."
    )

    def add_arguments(self, parser):
        study_argument_add(parser)
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print what would be paid (participant, amount, total) and send nothing.",
        )
        parser.add_argument(
            "--confirm-paid",
            metavar="BATCH_ID",
            help="Record as paid a bulk bonus that was sent but never confirmed, once you have "
            "checked on Prolific that it was paid. Sends nothing.",
        )
        parser.add_argument(
            "--include-excluded",
            action="store_true",
            help="Pay the bonus of raters excluded after completing too (an exclusion changes "
            "what is scored, not what was earned); without it they are listed and left out.",
        )

    def handle(
        self,
        *args,
        study: str,
        dry_run: bool,
        confirm_paid: str | None,
        include_excluded: bool,
        **options,
    ):
        found = study_from_argument(study)
        if dry_run and confirm_paid:
            raise CommandError("Give --dry-run or --confirm-paid, not both.")
        self.include_excluded = include_excluded
        try:
            if confirm_paid:
                self._confirm(found, confirm_paid)
            elif dry_run:
                self._dry_run(found)
            else:
                self._pay(found)
        except InputProblems as error:
            raise CommandError("\n".join(error.problems)) from None
        except ProlificError as error:
            raise CommandError(f"{error} No bonus was paid.") from None

    def _lines(self, lines: list[BonusLine]) -> None:
        for line in lines:
            self.stdout.write(
                f"  {line.participant}  {cents_as_amount(line.cents)} {line.currency}"
            )

    def _held_back(self, held_back: list[str], excluded: list[str]) -> None:
        if held_back:
            self.stdout.write(f"Not paid ({len(held_back)}):")
            for line in held_back:
                self.stdout.write(f"  {line}")
        if excluded:
            self.stdout.write(
                f"Left out: {counted(len(excluded), 'rater')} excluded after completing, with a "
                "bonus earned: decide on Prolific, or rerun with --include-excluded:"
            )
            for line in excluded:
                self.stdout.write(f"  {line}")

    def _confirm(self, study, batch: str) -> None:
        lines = prolific_bonuses_confirm(study=study, batch_id=batch)
        self.stdout.write(
            f"Recorded bulk bonus {batch} as paid: {counted(len(lines), 'bonus')}, "
            f"{cents_as_amount(_total(lines))} {lines[0].currency}."
        )
        self._lines(lines)

    def _dry_run(self, study) -> None:
        plan = prolific_bonuses_plan(study=study, include_excluded=self.include_excluded)
        write = self.stdout.write
        if plan.unconfirmed:
            write("A run would stop first: " + unconfirmed_message(plan.unconfirmed, study=study))
        if plan.waiting:
            write(
                f"Would pay {counted(len(plan.waiting), 'bonus')} (nothing is sent in a dry run):"
            )
            self._lines(plan.waiting)
            write(
                f"Total: {cents_as_amount(_total(plan.waiting))} {plan.currency} to "
                f"{counted(len(plan.waiting), 'participant')}, plus Prolific's fees."
            )
            write(
                "A real run first checks on Prolific that each submission is the rater's and "
                "approved, and pays only those."
            )
        else:
            write("Nothing to pay.")
        if plan.already_paid:
            write(
                f"Already paid: {counted(len(plan.already_paid), 'bonus')}, "
                f"{cents_as_amount(_total(plan.already_paid))} {plan.currency}."
            )
        self._held_back(plan.held_back, plan.excluded)

    def _pay(self, study) -> None:
        report = prolific_bonuses_pay(study=study, include_excluded=self.include_excluded)
        write = self.stdout.write
        for batch, lines in report.paid:
            write(
                f"Paid bulk bonus {batch}: {counted(len(lines), 'bonus')}, "
                f"{cents_as_amount(_total(lines))} {report.currency}:"
            )
            self._lines(lines)
        paid = [line for _, lines in report.paid for line in lines]
        if paid:
            write(
                f"Paid now: {counted(len(paid), 'bonus')}, {cents_as_amount(_total(paid))} "
                f"{report.currency} in all."
            )
        elif not report.stopped:
            write("Nothing to pay.")
        if report.already_paid:
            write(
                f"Already paid before: {counted(len(report.already_paid), 'bonus')}, "
                f"{cents_as_amount(_total(report.already_paid))} {report.currency}."
            )
        for batch in report.abandoned_batches:
            write(f"Bulk bonus {batch} was set up but never paid; it is left unpaid on Prolific.")
        self._held_back(report.held_back, report.excluded)
        if report.stopped:
            raise CommandError(report.stopped)
