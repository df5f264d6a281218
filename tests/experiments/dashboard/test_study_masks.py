"""The study page states what the backward masks really last: whole frames at each refresh
rate its raters measured (at 60 Hz before anyone has), with the rule's 60 Hz example in the
data dictionary."""

import html
import re
from pathlib import Path

import pytest
from django.test import Client

from experiments.models import Study
from hype.science.frames import mask_timings
from tests.factories import session_make, study_make, user_make

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]


def masks_row(study: Study) -> str:
    client = Client()
    client.force_login(study.owner)
    response = client.get(f"/studies/{study.public_id}/")
    assert response.status_code == 200
    found = re.search(r'<td id="mask-timings">(.*?)</td>', response.content.decode(), re.S)
    assert found, "no masks row on the study page"
    return html.unescape(re.sub(r"<[^>]+>", "\n", found.group(1)))


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_before_any_rater_has_measured_the_page_gives_the_masks_at_60_hz():
    study = study_make(owner=user_make(), method=Study.Method.TIME, mask_count=4, mask_ms=30)
    assert lines(masks_row(study)) == [
        "4 masks of 30 ms requested: 2 frames = 33.3 ms each, 133 ms in all, at 60 Hz "
        "(no rater has measured a refresh rate yet)"
    ]


def test_the_page_gives_the_masks_at_each_refresh_rate_its_raters_measured():
    study = study_make(owner=user_make(), method=Study.Method.TIME, mask_count=4, mask_ms=30)
    for refresh_ms in (16.68, 16.66, 6.944):
        session_make(study, refresh_ms=refresh_ms)
    session_make(study, refresh_ms=None)  # could not measure: not a rate
    assert lines(masks_row(study)) == [
        "4 masks of 30 ms requested: 2 frames = 33.3 ms each, 133 ms in all, at 60 Hz (2 raters)",
        "4 masks of 30 ms requested: 4 frames = 27.8 ms each, 111 ms in all, at 144 Hz (1 rater)",
    ]


def test_the_page_follows_the_studys_own_mask_settings():
    study = study_make(owner=user_make(), method=Study.Method.TIME, mask_count=2, mask_ms=50)
    session_make(study, refresh_ms=1000 / 60)
    assert lines(masks_row(study)) == [
        "2 masks of 50 ms requested: 3 frames = 50.0 ms each, 100 ms in all, at 60 Hz (1 rater)"
    ]


def test_a_hype_inf_study_has_no_masks_row():
    study = study_make(owner=user_make(), method=Study.Method.INF)
    client = Client()
    client.force_login(study.owner)
    assert 'id="mask-timings"' not in client.get(f"/studies/{study.public_id}/").content.decode()


@pytest.mark.parametrize("page", ["docs/data-dictionary.md", "docs/hype-method.md"])
def test_the_docs_state_the_rule_with_the_pages_60_hz_example(page):
    text = " ".join((ROOT / page).read_text().split())
    (example,) = mask_timings(count=4, mask_ms=30, refresh_intervals=[])
    assert example.sentence() in text
    assert "round(requested ms / refresh interval)" in text or (
        "round(`mask_ms` / refresh interval)" in text
    )
