"""What every command that works on one study shares: its STUDY argument and the one lookup
behind it (experiments.services.studies.study_lookup)."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from experiments.models import Study
from experiments.services.problems import InputProblems
from experiments.services.studies import study_lookup

STUDY_HELP = "The study's public id, its id, or its exact name."


def study_argument_add(parser: CommandParser, *, name: str = "study", **options) -> None:
    """The STUDY argument (positional by default; pass name="--study" for an option)."""
    parser.add_argument(name, metavar="STUDY", help=STUDY_HELP, **options)


def study_from_argument(reference: str) -> Study:
    """The study a command's STUDY argument names, or CommandError saying why not."""
    try:
        return study_lookup(reference)
    except InputProblems as error:
        raise CommandError(" ".join(error.problems)) from None
