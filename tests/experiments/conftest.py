"""Shared fixtures: stored media go to a temporary folder for every test."""

import pytest


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _bots_answer_at_machine_speed(settings, request):
    # Simulated raters answer far faster than people; only the flood test keeps the limit.
    if "keeps_flood_limit" not in request.keywords:
        settings.HYPE_RATER_FLOOD_LIMIT = (10_000, 1.0)
