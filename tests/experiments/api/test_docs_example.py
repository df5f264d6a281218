"""The Python client of docs/api.md, run as written against a live server: it gets a token,
creates a study from zips, opens it, waits for its scores and downloads its trials."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import pytest

from experiments.models import Study
from experiments.services.scores import study_results
from tests import REPO_ROOT
from tests.factories import answered_session_make, user_make
from tests.pictures import SMALL, pictures

DOCS = REPO_ROOT / "docs" / "api.md"


def docs_client(base_url: str) -> dict:
    """The functions of the page's Python block, pointed at base_url."""
    section = DOCS.read_text().split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)[1]
    namespace = {"__name__": "hype_client"}
    exec(compile(code, str(DOCS), "exec"), namespace)
    namespace["BASE"] = base_url
    return namespace


def zip_file(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_the_documented_client_creates_a_study_and_fetches_its_scores(live_server_url, tmp_path):
    user_make("ada")
    client = docs_client(live_server_url)
    token = client["token_get"]("ada", "pw-for-tests-1")

    study = client["study_create"](
        token,
        "From the docs",
        real_zip=zip_file(tmp_path / "real.zip", pictures(4, seed=0)),
        model_zips=[
            zip_file(tmp_path / "stylegan.zip", pictures(3, seed=100)),
            zip_file(tmp_path / "progan.zip", pictures(3, seed=200)),
        ],
        method="inf",
        raters_per_model=1,
        **SMALL,
    )
    assert study["import_summary"]["fakes"] == {"stylegan": 3, "progan": 3}
    opened = client["study_open"](token, study["id"])
    assert opened["status"] == "live" and opened["rater_link"].endswith(f"/s/{study['id']}/")

    stored = Study.objects.get(public_id=study["id"])
    for model in stored.models.all():
        answered_session_make(stored, model, [[(None, True, True), (None, False, False)]])
    results = client["results_wait"](token, study["id"], every_s=0)
    expected = study_results(stored)
    assert [m["score"]["estimate"] for m in results["models"]] == [
        m.score.estimate for m in expected.models
    ]

    client["export_download"](token, study["id"], "trials.csv", tmp_path / "trials.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "trials.csv").read_text())))
    assert len(rows) == 4


def test_the_documented_client_reports_the_servers_problems(live_server_url):
    client = docs_client(live_server_url)
    with pytest.raises(RuntimeError, match="400"):
        client["token_get"]("nobody", "wrong")
