"""`manage.py prolific_publish STUDY [--url BASE] [--publish]`: create the study on Prolific as
a draft (its link, one completion code per outcome, places, time and reward from the study) and
keep its id; --publish publishes it too."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from experiments.management.studies import study_argument_add, study_from_argument
from experiments.recruiting.prolific import CODE_TYPES, ProlificError, prolific_study_publish
from experiments.services.payments import cents_as_amount
from experiments.services.problems import InputProblems


class Command(BaseCommand):
    help = (
        "Create the study on Prolific as a draft, for you to review there, and store its "
        "Prolific id; refuses if the study already has one. --publish also publishes it."
    )

    def add_arguments(self, parser):
        study_argument_add(parser)
        parser.add_argument(
            "--url",
            metavar="BASE",
            help="Where raters reach this server, e.g. https://hype.example.org "
            "(default: HYPE_PUBLIC_URL).",
        )
        parser.add_argument(
            "--publish",
            action="store_true",
            help="Publish the study on Prolific too (default: leave it a draft to review).",
        )

    def handle(self, *args, study: str, url: str | None, publish: bool, **options):
        found = study_from_argument(study)
        try:
            result = prolific_study_publish(study=found, base_url=url, publish=publish)
        except InputProblems as error:
            raise CommandError("\n".join(error.problems)) from None
        except ProlificError as error:
            raise CommandError(str(error)) from None
        write = self.stdout.write
        if result.created:
            write(f'Created Prolific study {result.prolific_study_id} for "{found.name}", a draft:')
            write(f"  study URL  {result.url}")
            models = found.models.count()
            write(
                f"  places     {result.places} ({models} models x {found.raters_per_model} raters)"
            )
            write(f"  reward     {cents_as_amount(result.reward_cents)} {result.currency}")
            write(f"  time       {result.minutes} minutes")
            codes = ", ".join(f"{getattr(found, name)} {kind}" for name, kind in CODE_TYPES)
            write(f"  codes      {codes} (each reviewed by you, none approved on its own)")
        for warning in result.warnings:
            write(f"Warning: {warning}")
        if result.published:
            write(f"Published Prolific study {result.prolific_study_id}.")
        elif not result.warnings:
            write("Review it on Prolific, then publish it there (or rerun with --publish).")
        if publish and not result.published:
            raise CommandError("The study was not published.")
