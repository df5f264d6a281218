"""hype.science.rescore remakes scores.csv, bit for bit, from the real exports of a HYPE_time
and a HYPE_inf study (several models, an excluded rater, one in progress, a qualification)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from experiments.models import Answer, Block, Image, RaterSession, Study
from experiments.services.exports import scores as score_export
from experiments.services.exports.bundle import bundle
from experiments.services.exports.raters import raters_csv
from experiments.services.exports.scores import scores_csv
from experiments.services.exports.trials import trials_csv
from hype.science import rescore
from tests import REPO_ROOT
from tests.factories import block_make, image_make, session_make, study_make, trial_make

pytestmark = pytest.mark.django_db

# Images per kind: more than a rater's trials (36).
POOL = 40
COMPLETED = RaterSession.Status.COMPLETED


def _rater(study, model, images, rng, *, blocks, trials, timed, qualification, **fields):
    """A rater with a qualification block (if asked) before `blocks` task blocks of random
    answers; timed exposures on the staircase's 10 ms grid inside its bounds."""
    session = session_make(study, model=model, **fields)
    index = 0
    # A rater sees an image at most once.
    unseen = {is_real: iter(pool) for is_real, pool in images.items()}
    kinds = [Block.Kind.QUALIFICATION] * qualification + [Block.Kind.TASK] * blocks
    for number, kind in enumerate(kinds):
        block = block_make(session, index=number, kind=kind)
        for position in range(trials):
            is_real = bool(rng.random() < 0.5)
            trial = trial_make(block, image=next(unseen[is_real]), index=index, position=position)
            trial.requested_ms = int(rng.integers(10, 101)) * 10 if timed else None
            trial.save()
            correct = bool(rng.random() < 0.7)
            response = "real" if is_real == correct else "fake"
            Answer.objects.create(trial=trial, response=response, correct=correct, rt_ms=500)
            index += 1
    return session


def _study(method, *, interval_method, time_score="mode"):
    study = study_make(
        models=("beta", "Alpha", "gamma"),
        method=method,
        bootstrap_resamples=200,
        bootstrap_seed=7,
        interval_method=interval_method,
        time_score=time_score,
    )
    rng = np.random.default_rng(3)
    timed = method == Study.Method.TIME
    shape = {"blocks": 2, "trials": 12, "timed": timed}
    reals = [image_make(study) for _ in range(POOL)]
    for model in study.models.all():
        images = {True: reals, False: [image_make(study, model=model) for _ in range(POOL)]}
        for n in range(3):
            _rater(study, model, images, rng, qualification=n == 0, status=COMPLETED, **shape)
        _rater(
            study, model, images, rng, qualification=1, status=RaterSession.Status.IN_TASK, **shape
        )
        if model.name == "Alpha":
            _rater(
                study,
                model,
                images,
                rng,
                qualification=0,
                status=RaterSession.Status.EXCLUDED,
                status_before_exclusion=RaterSession.Status.COMPLETED,
                **shape,
            )
    return study


def _export(study, tmp_path):
    paths = {}
    for name, text in (
        ("trials.csv", "".join(trials_csv(study))),
        ("raters.csv", "".join(raters_csv(study))),
        ("scores.csv", "".join(scores_csv(study))),
        ("bundle.json", json.dumps(bundle(study))),
    ):
        paths[name] = tmp_path / name
        paths[name].write_text(text, newline="")
    return paths


def _matches(capsys, argv):
    assert rescore.main(argv) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    for column in score_export.SCORE_COLUMNS:
        assert (
            f"{column} (" in out
            and f"{column} ("
            + ("copied" if column in rescore.COPIED_COLUMNS else "recomputed")
            + "): match"
            in out
        ), out
    return out


def test_the_columns_are_scores_csv_columns():
    assert rescore.SCORE_COLUMNS == score_export.SCORE_COLUMNS
    assert tuple(c for c, _ in score_export.BASELINE_COLUMNS) == rescore.COPIED_COLUMNS


def test_a_time_study_rescored_from_its_exports_matches_bit_for_bit(tmp_path, capsys):
    study = _study(Study.Method.TIME, interval_method="bca", time_score="fit")
    paths = _export(study, tmp_path)
    out = _matches(
        capsys,
        [str(paths["trials.csv"]), str(paths["bundle.json"]), "--check", str(paths["scores.csv"])],
    )
    assert "deduced from bundle.json" in out
    # The score columns carry numbers, not only matching empties.
    assert "fit_score" in paths["scores.csv"].read_text()
    rows = rescore.score_rows(
        study=rescore.load_study(
            trials_text=paths["trials.csv"].read_text(),
            bundle=json.loads(paths["bundle.json"].read_text()),
        )
    )
    alpha = {r["exclusions"]: r for r in rows if r["model"] == "Alpha"}
    assert alpha["applied"]["n_raters"] == 3 and alpha["none"]["n_raters"] == 4
    assert alpha["applied"]["n_in_progress"] == 1 and alpha["applied"]["n_excluded"] == 1
    assert all(r["fit_score"] is not None and r["score"] is not None for r in rows)


def test_an_inf_study_rescored_from_its_exports_matches_bit_for_bit(tmp_path, capsys):
    study = _study(Study.Method.INF, interval_method="percentile")
    # A rater excluded while under way: only raters.csv tells them from one who completed.
    alpha = study.models.get(name="Alpha")
    images = {
        True: list(Image.objects.filter(study=study, is_real=True)),
        False: list(Image.objects.filter(study=study, model=alpha)),
    }
    _rater(
        study,
        alpha,
        images,
        np.random.default_rng(5),
        qualification=0,
        blocks=1,
        trials=6,
        timed=False,
        status=RaterSession.Status.EXCLUDED,
        status_before_exclusion=RaterSession.Status.IN_TASK,
    )
    paths = _export(study, tmp_path)
    with pytest.raises(SystemExit, match="--raters"):
        rescore.main([str(paths["trials.csv"]), str(paths["bundle.json"])])
    _matches(
        capsys,
        [
            str(paths["trials.csv"]),
            str(paths["bundle.json"]),
            "--raters",
            str(paths["raters.csv"]),
            "--check",
            str(paths["scores.csv"]),
        ],
    )

    # The command itself, as a reviewer runs it, in a fresh interpreter.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hype.science.rescore",
            str(paths["trials.csv"]),
            str(paths["bundle.json"]),
            "--raters",
            str(paths["raters.csv"]),
            "--out",
            str(tmp_path / "rescored.csv"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "copied from bundle.json" in done.stdout
    assert (tmp_path / "rescored.csv").read_bytes() == paths["scores.csv"].read_bytes()


def test_a_changed_score_is_a_mismatch(tmp_path, capsys):
    study = _study(Study.Method.INF, interval_method="studentized")
    paths = _export(study, tmp_path)
    text = paths["scores.csv"].read_bytes().decode()
    lines = text.split("\r\n")
    cells = lines[1].split(",")
    cells[5] = repr(float(cells[5]) + 2.0**-40)  # the last bits of a float
    lines[1] = ",".join(cells)
    paths["scores.csv"].write_bytes("\r\n".join(lines).encode())
    argv = [
        str(paths["trials.csv"]),
        str(paths["bundle.json"]),
        "--check",
        str(paths["scores.csv"]),
    ]
    assert rescore.main(argv) == 1
    out = capsys.readouterr().out
    assert "score (recomputed): 1 differ" in out and "sd (recomputed): match" in out
