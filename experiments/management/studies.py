"""What the commands share: the STUDY argument and the one lookup behind it
(experiments.services.studies.study_lookup), and the progress bar of a long import or
feature extraction."""

from __future__ import annotations

import sys

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

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


class ProgressBar:
    """A tqdm bar on stderr for a service's progress(done, total) callback, made on the first
    call (when the total is known) and closed by close(). disable: no bar (--no-progress)."""

    def __init__(self, description: str, *, disable: bool = False):
        self.description = description
        self.disable = disable
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(
                total=total,
                initial=done,
                unit="image",
                desc=self.description,
                file=sys.stderr,
                disable=self.disable,
            )
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
