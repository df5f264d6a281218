"""`manage.py prolific_sync STUDY [--approve] [--include-excluded]`: bring a study's Prolific
submissions back: sessions in progress here whose submission was returned or timed out become
abandoned; with --approve, every submission awaiting review whose session is completed here is
approved (its base pay recorded before and after), raters excluded after completing only with
--include-excluded. Prints what Prolific says and what changed."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from experiments.management.studies import study_argument_add, study_from_argument
from experiments.recruiting.prolific import ProlificError, prolific_submissions_sync
from experiments.services.payments import cents_as_amount
from experiments.services.problems import InputProblems


class Command(BaseCommand):
    help = (
        "Read every submission of the study on Prolific: mark sessions still in progress here "
        "whose submission was returned or timed out as abandoned, and with --approve approve "
        "the submissions awaiting review whose session is completed here. Rerunning is safe."
    )

    def add_arguments(self, parser):
        study_argument_add(parser)
        parser.add_argument(
            "--approve",
            action="store_true",
            help="Approve (and so pay the reward of) every submission awaiting review whose "
            "session is completed here.",
        )
        parser.add_argument(
            "--include-excluded",
            action="store_true",
            help="Approve raters excluded after completing too (an exclusion changes what is "
            "scored, not what was earned); without it they are listed and left for you.",
        )

    def handle(self, *args, study: str, approve: bool, include_excluded: bool, **options):
        found = study_from_argument(study)
        try:
            report = prolific_submissions_sync(
                study=found, approve=approve, include_excluded=include_excluded
            )
        except InputProblems as error:
            raise CommandError("\n".join(error.problems)) from None
        except ProlificError as error:
            raise CommandError(f"{error} Nothing was changed.") from None
        write = self.stdout.write
        counts = ", ".join(f"{status} {n}" for status, n in sorted(report.statuses.items()))
        write(
            f"Prolific study {report.prolific_study_id}: {report.submissions} submissions"
            + (f" ({counts})" if counts else "")
        )
        if report.abandoned:
            write(f"Marked abandoned here ({len(report.abandoned)}):")
            for line in report.abandoned:
                write(f"  {line}")
        if report.approved:
            total = sum(cents for _, cents in report.approved)
            write(
                f"Approved on Prolific ({len(report.approved)}, base pay "
                f"{cents_as_amount(total)} {report.currency} in all):"
            )
            for participant, cents in report.approved:
                write(f"  {participant}  {cents_as_amount(cents)} {report.currency}")
        if report.confirmed:
            write(f"Earlier approvals Prolific now confirms ({len(report.confirmed)}):")
            for participant in report.confirmed:
                write(f"  {participant}")
        if report.unconfirmed:
            write(
                f"Approvals sent but not confirmed yet ({len(report.unconfirmed)}); the next "
                "run checks them:"
            )
            for line in report.unconfirmed:
                write(f"  {line}")
        if report.to_approve and not approve:
            write(
                f"Awaiting review on Prolific and completed here: {len(report.to_approve)}; "
                "rerun with --approve to approve them."
            )
        if report.excluded:
            write(
                f"Left out: {len(report.excluded)} awaiting review on Prolific and excluded here "
                "after completing; they earned the reward: decide on Prolific, or rerun with "
                "--approve --include-excluded:"
            )
            for line in report.excluded:
                write(f"  {line}")
        if report.odd:
            write(f"Needs your attention ({len(report.odd)}):")
            for line in report.odd:
                write(f"  {line}")
        if not report.changed:
            write("Nothing changed here.")
        if report.stopped:
            raise CommandError(report.stopped)
