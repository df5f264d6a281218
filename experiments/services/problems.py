"""The one error for "the researcher's input has these problems": a bad parameter, a folder or
zip without the images a rater needs, a change the study no longer allows. Every service that
takes a researcher's input raises it, and pages, the API and the commands show `problems`,
one line each."""

from __future__ import annotations


class InputProblems(Exception):
    """What is wrong with the input, one problem per line; nothing was changed."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)
