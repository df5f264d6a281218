"""What the pages, the API, the consumers and the commands share: keyword-only functions named
<thing>_<action> that take plain values, do the work and raise InputProblems (problems.py) on a
researcher's bad input. Scores are made only in scores.py."""
