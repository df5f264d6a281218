"""The HYPE test suite; its layout mirrors the code."""

from pathlib import Path

# The repository's root, for tests that read its docs and files.
REPO_ROOT = Path(__file__).resolve().parents[1]
