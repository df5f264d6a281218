"""`manage.py audit_study`: check that nothing but the picture tells a study's real images from
its fakes; exits non-zero when the audit fails (or warns, with --strict)."""

from django.core.management.base import BaseCommand, CommandError

from experiments.models import Study
from experiments.services.audit import FAIL, PASS, study_audit


class Command(BaseCommand):
    help = (
        "Reopen every stored image of a study and compare real and fake: format, dimensions, "
        "colour mode, metadata, file names and file sizes. Exit status 1 on fail."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", metavar="STUDY_ID_OR_PUBLIC_ID")
        parser.add_argument("--strict", action="store_true", help="Also exit 1 on warn.")

    def handle(self, *args, study: str, strict: bool, **options):
        found = Study.objects.filter(public_id=study).first()
        if found is None and study.isdigit():
            found = Study.objects.filter(pk=int(study)).first()
        if found is None:
            raise CommandError(f"No study with id or public id {study!r}.")
        report = study_audit(study=found)
        self.stdout.write(report.summary())
        if report.verdict == FAIL or (strict and report.verdict != PASS):
            raise CommandError(f"The leak audit of study {found.pk}: {report.verdict}.")
