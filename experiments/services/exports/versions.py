"""The software that made an export: HYPE's version and git commit, Python, Django, NumPy
and SciPy, for the bundle that lets a result be reproduced."""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from pathlib import Path

import django
import numpy as np
import scipy

import hype

REPOSITORY = Path(__file__).resolve().parents[3]


@cache
def git_commit() -> str | None:
    """The checked-out commit, or None outside a git checkout (e.g. an installed copy)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit or None


def software_versions() -> dict[str, str | None]:
    return {
        "hype": hype.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
