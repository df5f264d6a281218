"""`manage.py audit_study`: check that nothing but the picture tells a study's real images from
its fakes; exits non-zero when the audit fails (or warns, with --strict)."""

from django.core.management.base import BaseCommand, CommandError

from experiments.management.studies import study_argument_add, study_from_argument
from experiments.services.imports.audit import FAIL, PASS, study_audit


class Command(BaseCommand):
    help = (
        "Reopen every stored image of a study and compare real and fake: format, dimensions, "
        "colour mode, metadata, file names and file sizes. Exit status 1 on fail."
    )

    def add_arguments(self, parser):
        study_argument_add(parser)
        parser.add_argument("--strict", action="store_true", help="Also exit 1 on warn.")

    def handle(self, *args, study: str, strict: bool, **options):
        found = study_from_argument(study)
        report = study_audit(study=found)
        self.stdout.write(report.summary())
        if report.verdict == FAIL or (strict and report.verdict != PASS):
            raise CommandError(f"The leak audit of study {found.pk}: {report.verdict}.")
