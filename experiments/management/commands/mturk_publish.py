"""`manage.py mturk_publish STUDY [--sandbox] [--url BASE] [--hours N]`: publish a study on MTurk
as one ExternalQuestion HIT, with a qualification that keeps anyone from taking part twice
(experiments.recruiting.mturk.mturk_hit_publish)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from experiments.management.studies import study_argument_add, study_from_argument
from experiments.recruiting.mturk import (
    DURATION_EXTRA_MINUTES,
    DURATION_FACTOR,
    LIFETIME_HOURS,
    MTurkError,
    mturk_hit_publish,
    qualification_name,
)
from experiments.services.payments import cents_as_amount
from experiments.services.problems import InputProblems
from experiments.services.study_texts import minutes_shown


class Command(BaseCommand):
    help = (
        "Publish a study on MTurk (or its sandbox, first) as one HIT whose question is the "
        "study link, paying the study's base pay, with one assignment per rater wanted. AWS "
        "credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)."
    )

    def add_arguments(self, parser):
        study_argument_add(parser)
        parser.add_argument(
            "--sandbox",
            action="store_true",
            help="Publish on MTurk's sandbox, where nobody is paid: try the study there first.",
        )
        parser.add_argument(
            "--url",
            metavar="BASE",
            help="The public address of this server, e.g. https://hype.example.org "
            "(default: HYPE_PUBLIC_URL).",
        )
        parser.add_argument(
            "--hours",
            type=int,
            default=LIFETIME_HOURS,
            help=f"How long workers can accept the HIT (default {LIFETIME_HOURS}).",
        )

    def handle(self, *args, study: str, sandbox: bool, url: str | None, hours: int, **options):
        found = study_from_argument(study)
        try:
            published = mturk_hit_publish(study=found, sandbox=sandbox, base_url=url, hours=hours)
        except InputProblems as error:
            raise CommandError("\n".join(error.problems)) from None
        except MTurkError as error:
            raise CommandError(str(error)) from None
        request = published.request
        where = "MTurk's sandbox" if published.sandbox else "MTurk"
        models = found.models.count()
        minutes = minutes_shown(found)
        if published.found_existing:
            self.stdout.write(
                f"An earlier run had made the HIT (its answer was lost); HYPE found it on {where}."
            )
        self.stdout.write(f'Study "{found.name}" is HIT {published.hit_id} on {where}.')
        for label, value in [
            ("Study link", published.url),
            ("Reward", f"{request['Reward']} USD (the base pay)"),
            ("Bonus", self._bonus(found)),
            (
                "Assignments",
                f"{request['MaxAssignments']} ({models} models x {found.raters_per_model} raters)",
            ),
            (
                "Time allowed",
                f"{request['AssignmentDurationInSeconds'] // 60} minutes per "
                f"assignment (raters are told {minutes}: {DURATION_FACTOR} times that, and at "
                f"least {DURATION_EXTRA_MINUTES} more)",
            ),
            ("Open for", f"{request['LifetimeInSeconds'] // 3600} hours"),
            (
                "Qualification",
                f'{published.qualification_id} "{qualification_name(found)}": '
                "workers who have it cannot see the HIT",
            ),
            ("HIT group", published.hit_group_id or "-"),
        ]:
            self.stdout.write(f"  {label + ':':<15}{value}")
        if published.sandbox and not published.url.startswith("https://"):
            self.stdout.write(
                "Note: the study link is not https, and browsers do not show an http page "
                "inside MTurk's https one."
            )
        self.stdout.write(
            "Run mturk_review on this study to give starters the qualification, see the "
            "assignments, and --approve and --bonus them."
        )

    @staticmethod
    def _bonus(study) -> str:
        if not study.pay_per_correct_cents:
            return "none"
        per = cents_as_amount(study.pay_per_correct_cents)
        return f"{per} USD per correct answer, sent by mturk_review --bonus"
