"""The study page's table by image tag in a browser, with a screenshot of it at
/tmp/subgroups.png so that people can look at it."""

from pathlib import Path

import pytest

from experiments.models import Image, ImageTag
from tests.browser.test_dashboard_pages import inf_study_make, log_in
from tests.factories import user_make

pytestmark = [pytest.mark.browser]

SHOT = Path("/tmp/subgroups.png")


def test_the_study_page_shows_hype_per_tag_with_the_test(page, live_server_url):
    owner = user_make("tagger")
    study = inf_study_make(
        owner, errors={"stylegan": 0.42, "progan": 0.25}, raters=8, name="Faces by attribute"
    )
    images = list(Image.objects.filter(study=study).order_by("id"))
    ImageTag.objects.bulk_create(
        ImageTag(image=image, name=("smiling", "neutral", "glasses")[i % 3])
        for i, image in enumerate(images)
    )
    log_in(page, live_server_url, "tagger", next_path=f"/studies/{study.public_id}/")
    table = page.locator("#subgroup-results")
    table.wait_for()
    assert table.locator("tbody tr").count() == 6  # two models x three tags
    text = table.inner_text()
    for expected in ("stylegan", "progan", "smiling", "neutral", "glasses", "χ²(2)"):
        assert expected in text
    page.locator("#subgroups").screenshot(path=str(SHOT))
    assert SHOT.stat().st_size > 0
