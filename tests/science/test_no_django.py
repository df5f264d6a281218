"""The science core imports no Django, checked in a fresh interpreter."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

LOADS_DJANGO = "any(m == 'django' or m.startswith('django.') for m in sys.modules)"


def _run(code: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return completed.stdout.strip()


def test_the_science_modules_load_without_django():
    code = (
        "import hype.science.staircase, hype.science.thresholds, hype.science.error_rates, "
        "hype.science.bootstrap, hype.science.comparisons, hype.science.metrics, "
        "hype.science.observers, hype.science.masks, sys; "
        f"print({LOADS_DJANGO})"
    )
    assert _run(code) == "False"


def test_every_module_under_hype_science_loads_without_django():
    code = (
        "import importlib, pkgutil, sys, hype.science as s\n"
        "names = [m.name for m in pkgutil.walk_packages(s.__path__, 'hype.science.')]\n"
        "for name in names: importlib.import_module(name)\n"
        f"print(len(names), {LOADS_DJANGO})"
    )
    count, loads_django = _run(code).split()
    assert int(count) >= 3
    assert loads_django == "False"
