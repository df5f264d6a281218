"""hype.science.rescore on small hand-made trials.csv and bundle.json with hand-worked scores:
HYPE_inf's pooled errors, HYPE_time's modal thresholds, who counts, and --check."""

import csv
import io
import json

from hype.science import rescore

HEADER = (
    "study",
    "model",
    "rater",
    "block",
    "block_kind",
    "trial_index",
    "is_real",
    "requested_ms",
    "correct",
    "rater_status",
)


def trials_text(raters):
    """raters: (model, rater, status, blocks), a block (kind, [(ms or None, is_real,
    correct)])."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for model, rater, status, blocks in raters:
        index = 0
        for number, (kind, trials) in enumerate(blocks):
            for ms, is_real, correct in trials:
                writer.writerow(
                    (
                        "S",
                        model,
                        rater,
                        number,
                        kind,
                        index,
                        rescore.cell(is_real),
                        "" if ms is None else ms,
                        rescore.cell(correct),
                        status,
                    )
                )
                index += 1
    return out.getvalue()


def inf_trials(n_fake, wrong_fake, n_real, wrong_real):
    return [(None, False, i >= wrong_fake) for i in range(n_fake)] + [
        (None, True, i >= wrong_real) for i in range(n_real)
    ]


def rows_of(trials, bundle=None):
    study = rescore.load_study(trials_text=trials, bundle=bundle)
    return {(r["model"], r["exclusions"]): r for r in rescore.score_rows(study=study)}, study


INF_RATERS = [
    # wrong 2 of 4 fakes and 1 of 4 reals; 0 of 4 and 1 of 4; 4 of 4 and 0 of 4.
    ("m", "r1", "completed", [("task", inf_trials(4, 2, 4, 1))]),
    (
        "m",
        "r2",
        "completed",
        [("qualification", inf_trials(2, 2, 2, 2)), ("task", inf_trials(4, 0, 4, 1))],
    ),
    ("m", "r3", "completed", [("task", inf_trials(4, 4, 4, 0))]),
    ("m", "r4", "excluded", [("task", inf_trials(4, 4, 4, 4))]),
    ("m", "r5", "in_task", [("task", inf_trials(2, 0, 0, 0))]),
]


def test_hype_inf_pools_the_answers_of_the_completed_raters():
    rows, study = rows_of(trials_text(INF_RATERS))
    applied = rows["m", "applied"]
    # 8 wrong of 24 answers, the qualification left out; fakes 6 of 12, reals 2 of 12.
    assert applied["score"] == 8 / 24
    assert applied["fake_error"] == 6 / 12 and applied["real_error"] == 2 / 12
    assert applied["n_raters"] == 3 and applied["n_in_progress"] == 1
    assert applied["unit"] == "error" and applied["headline"] is None
    assert applied["seed"] == rescore.model_stream_seed(0, "m")
    assert applied["ci_low"] <= applied["score"] <= applied["ci_high"]
    # Without a bundle the excluded rater is assumed to have completed, and it says so.
    without = rows["m", "none"]
    assert without["score"] == 16 / 32 and without["n_raters"] == 4
    assert any("assumed: every excluded rater had completed" in n for n in study.notes)
    assert any("assumed (no bundle.json): method 'inf'" in n for n in study.notes)


def bundle_of(*, n_excluded=0, **parameters):
    return {
        "study": {"public_id": "S", "method": parameters.get("method", "time")},
        "parameters": {"method": "time"} | parameters,
        "models": [
            {"name": "m", "raters": {"completed": 2, "consented": 2}},
            {"name": "unrated", "raters": {}},
        ],
        "baselines": [
            {
                "model": "m",
                "reference": "study real images",
                "fid": 12.5,
                "n_real": 50,
                "weights_sha256": "ab",
            }
        ],
        "results": {
            "models": [
                {"name": "m", "n_excluded": n_excluded},
                {"name": "unrated", "n_excluded": 0},
            ]
        },
    }


TIME_RATERS = [
    # Blocks' modes: 480 and 490 -> 485; 300 and (400, 410 tied: mean 405) -> 352.5.
    (
        "m",
        "r1",
        "completed",
        [
            (
                "task",
                [(500, True, True), (480, False, True), (480, True, False), (470, False, True)],
            ),
            ("task", [(500, False, True), (490, True, True), (490, True, False)]),
        ],
    ),
    (
        "m",
        "r2",
        "completed",
        [
            ("task", [(300, False, True), (300, True, True)]),
            ("task", [(400, True, True), (410, False, False)]),
        ],
    ),
]


def test_hype_time_is_the_mean_of_the_modal_thresholds():
    rows, study = rows_of(trials_text(TIME_RATERS), bundle_of(bootstrap_seed=4))
    applied = rows["m", "applied"]
    assert applied["score"] == (485 + 352.5) / 2
    assert applied["unit"] == "ms" and applied["headline"] == "mode"
    assert applied["seed"] == rescore.model_stream_seed(4, "m")
    assert applied["n_in_progress"] == 2 and applied["fake_error"] is None
    # The joint fit gives a fitted score too; the baselines are copied from the bundle.
    assert applied["fit_score"] is not None and applied["fit_censored_low"] is not None
    assert applied["fid"] == 12.5 and applied["baseline_real_images"] == 50
    # A model without raters has its two rows, empty.
    assert rows["unrated", "applied"]["score"] is None
    assert rows["unrated", "none"]["n_raters"] == 0


def test_the_burn_in_and_tie_rule_come_from_the_bundle():
    rows, _ = rows_of(
        trials_text(TIME_RATERS),
        bundle_of(threshold_burn_in=1, threshold_tie_rule="lowest"),
    )
    # r1: (480 | 490), r2: (300 | 410) -> (485 + 355) / 2.
    assert rows["m", "applied"]["score"] == (485 + 355) / 2


def test_the_bundle_tells_which_excluded_raters_completed():
    raters = [*INF_RATERS[:4]]
    rows, _ = rows_of(trials_text(raters), bundle_of(method="inf", n_excluded=0))
    assert rows["m", "none"]["n_raters"] == 3 and rows["m", "none"]["n_excluded"] == 0
    rows, _ = rows_of(trials_text(raters), bundle_of(method="inf", n_excluded=1))
    assert rows["m", "none"]["n_raters"] == 4 and rows["m", "none"]["n_excluded"] == 1


def test_check_matches_its_own_output_and_names_a_difference(tmp_path, capsys):
    trials = tmp_path / "trials.csv"
    trials.write_text(trials_text(INF_RATERS))
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(bundle_of(method="inf", n_excluded=1)))
    out = tmp_path / "scores.csv"
    assert rescore.main([str(trials), str(bundle), "--out", str(out)]) == 0
    assert rescore.main([str(trials), str(bundle), "--check", str(out)]) == 0
    assert "score (recomputed): match" in capsys.readouterr().out

    rows = list(csv.reader(io.StringIO(out.read_bytes().decode())))
    rows[1][rows[0].index("score")] = "0.3333333333333334"
    changed = io.StringIO()
    csv.writer(changed).writerows(rows)
    out.write_bytes(changed.getvalue().encode())
    assert rescore.main([str(trials), str(bundle), "--check", str(out)]) == 1
    report = capsys.readouterr().out
    assert (
        "score (recomputed): 1 differ: m/applied: given '0.3333333333333334', "
        "recomputed '0.3333333333333333'" in report
    )
    assert "fid (copied): match" in report and "MISMATCH" in report
