"""A study's score options: HYPE_time's psychometric fit next to the modal threshold (the
joint fit of hype.science.psychometric on the study's own answers), which of the two leads
(time_score), and how every interval is read (interval_method); with the defaults every
number and every old column of scores.csv is what it was before the options existed."""

import csv
import io
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from django.core.cache import cache

from experiments.models import Answer, RaterSession, Study
from experiments.services.exports.latex import latex_table
from experiments.services.exports.raters import RATER_COLUMNS, raters_csv
from experiments.services.exports.scores import SCORE_COLUMNS, scores_csv
from experiments.services.scores import (
    model_seed,
    rater_scores,
    session_score,
    study_fits,
    study_results,
    study_results_both,
)
from hype.science.bootstrap import INTERVAL_METHODS, bootstrap_mean
from hype.science.comparisons import compare_models
from hype.science.psychometric import fit_contribution, model_fit_score, study_fit
from tests.bulk import bulk_study_make
from tests.factories import user_make

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def pinned_studies() -> tuple[Study, Study]:
    """The studies behind fixtures/pinned_scores_*.csv, which were written by the code before
    the score options (commit 7802ae0), built exactly as it built them."""
    owner = user_make()
    time_study = bulk_study_make(
        owner=owner, models=3, raters_per_model=4, trials_per_rater=300, blocks=2, seed=3
    )
    Study.objects.filter(pk=time_study.pk).update(public_id="pinnedtime", bootstrap_resamples=2000)
    inf_study = bulk_study_make(
        owner=owner,
        models=2,
        raters_per_model=4,
        trials_per_rater=60,
        method=Study.Method.INF,
        seed=4,
        name="inf",
    )
    Study.objects.filter(pk=inf_study.pk).update(public_id="pinnedinf", bootstrap_resamples=2000)
    # One rater excluded after completing, so the two rows of a model differ.
    first = RaterSession.objects.filter(study=time_study).order_by("id").first()
    RaterSession.objects.filter(pk=first.pk).update(
        status=RaterSession.Status.EXCLUDED,
        status_before_exclusion=RaterSession.Status.COMPLETED,
    )
    time_study.refresh_from_db()
    inf_study.refresh_from_db()
    return time_study, inf_study


@pytest.fixture
def time_study() -> Study:
    return bulk_study_make(
        owner=user_make(), models=3, raters_per_model=4, trials_per_rater=300, blocks=2, seed=5
    )


def answers_by_rater(study: Study) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    """Each completed rater's task blocks as (requested ms, correct), read here from the
    answers rather than asked of the service."""
    rows = (
        Answer.objects.filter(
            trial__session__study=study,
            trial__session__status=RaterSession.Status.COMPLETED,
            trial__requested_ms__isnull=False,
        )
        .order_by("trial__session_id", "trial__block__index", "trial__position")
        .values_list("trial__session_id", "trial__block__index", "trial__requested_ms", "correct")
    )
    blocks: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for session_id, block, ms, correct in rows:
        blocks[session_id][block].append((ms, correct))
    return {
        session_id: [
            (np.array([ms for ms, _ in trials], dtype=float), np.array([c for _, c in trials]))
            for trials in by_block.values()
        ]
        for session_id, by_block in blocks.items()
    }


def csv_rows(chunks) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO("".join(chunks))))


def study_set(study: Study, **options) -> Study:
    for name, value in options.items():
        setattr(study, name, value)
    study.save()
    return study


def test_every_raters_fitted_threshold_is_study_fit_of_the_studys_answers(time_study):
    expected = study_fit(raters=answers_by_rater(time_study), rule=time_study.staircase_rule())
    scores = {r.session_id: r for r in rater_scores(time_study)}
    assert set(scores) == set(expected) and len(expected) == 12
    for session_id, fit in expected.items():
        assert scores[session_id].fit == fit
        assert scores[session_id].fit_threshold_ms == fit.threshold_ms
    fits = study_fits(time_study)
    assert fits.raters == expected
    assert (fits.slope_ms, fits.lapse) == (fit.slope_ms, fit.lapse)
    # The rater page reads the same fit, next to the modal score.
    session = RaterSession.objects.get(pk=next(iter(expected)))
    assert session_score(session).fit == expected[session.pk]


def test_a_models_fit_score_is_the_mean_of_its_raters_contributions_bootstrapped_from_its_stream(
    time_study,
):
    expected = study_fit(raters=answers_by_rater(time_study), rule=time_study.staircase_rule())
    results = study_results(time_study)
    for model in results.models:
        own = [
            expected[s]
            for s in sorted(expected)
            if RaterSession.objects.get(pk=s).model_id == model.model_id
        ]
        contributions = tuple(fit_contribution(fit) for fit in own)
        assert model.fit_rater_scores == contributions
        summary = model_fit_score(own)
        assert model.fit_score.estimate == pytest.approx(summary.score_ms, abs=1e-9)
        assert (model.fit_censored_low, model.fit_censored_high) == (
            summary.censored_low,
            summary.censored_high,
        )
        assert model.fit_score == bootstrap_mean(
            contributions,
            resamples=time_study.bootstrap_resamples,
            confidence=time_study.confidence,
            seed=model_seed(time_study, model.name),
        )
        assert model.fit_score.seed == model.score.seed


def test_the_headline_is_the_modal_score_by_default_and_the_fits_with_time_score_fit(time_study):
    by_mode = study_results(time_study)
    assert by_mode.time_score == "mode"
    assert all(m.headline is m.score and not m.headline_fit for m in by_mode.models)
    assert by_mode.comparison == compare_models({m.name: m.rater_scores for m in by_mode.models})

    by_fit = study_results(study_set(time_study, time_score=Study.TimeScore.FIT))
    assert by_fit.time_score == "fit"
    for mode, fit in zip(by_mode.models, by_fit.models, strict=True):
        assert fit.headline_fit and fit.headline is fit.fit_score
        # Both scores are still there, the same numbers: only which leads has changed.
        assert (fit.score, fit.fit_score) == (mode.score, mode.fit_score)
    assert by_fit.comparison == compare_models({m.name: m.fit_rater_scores for m in by_fit.models})
    assert by_fit.comparison != by_mode.comparison


def test_time_score_fit_leaves_a_hype_inf_study_led_by_its_error():
    study = bulk_study_make(
        owner=user_make(), models=2, raters_per_model=3, trials_per_rater=40, method="inf"
    )
    results = study_results(study_set(study, time_score=Study.TimeScore.FIT))
    for model in results.models:
        assert model.headline is model.score and model.fit_score is None
    assert study_fits(study) is None


@pytest.mark.parametrize("method", ["bca", "studentized"])
@pytest.mark.parametrize("kind", [Study.Method.TIME, Study.Method.INF])
def test_the_interval_method_changes_the_intervals_but_not_the_estimates(kind, method):
    study = bulk_study_make(
        owner=user_make(),
        models=2,
        raters_per_model=5,
        trials_per_rater=200,
        blocks=2,
        method=kind,
        seed=9,
    )
    percentile = study_results(study)
    other = study_results(study_set(study, interval_method=method))
    assert (percentile.interval_method, other.interval_method) == ("percentile", method)
    moved = []
    for before, after in zip(percentile.models, other.models, strict=True):
        scores = [(before.score, after.score)]
        if kind == Study.Method.TIME:
            scores.append((before.fit_score, after.fit_score))
        for was, now in scores:
            assert (now.estimate, now.sd, now.seed) == (was.estimate, was.sd, was.seed)
            assert (was.method, now.method) == ("percentile", method)
            moved.append((now.low, now.high) != (was.low, was.high))
    # For a symmetric sample BCa is the percentile interval: not every one moves.
    assert any(moved)


def test_the_score_options_are_the_same_as_the_sciences_interval_methods():
    assert tuple(Study.IntervalMethod.values) == INTERVAL_METHODS
    study = Study(name="new")
    assert (study.interval_method, study.time_score) == ("percentile", "mode")


def test_cached_results_are_never_those_of_other_settings_even_when_a_queryset_changes_them(
    time_study,
):
    by_mode = study_results(time_study)
    # A save moves updated_at, which the results' key names.
    before = time_study.updated_at
    study_set(time_study, interval_method="bca")
    assert time_study.updated_at != before
    assert study_results(time_study).interval_method == "bca"
    # A queryset update leaves updated_at as it was: the options are in the key themselves.
    Study.objects.filter(pk=time_study.pk).update(
        time_score="fit", interval_method="percentile", updated_at=before
    )
    time_study.refresh_from_db()
    by_fit = study_results(time_study)
    assert (by_fit.time_score, by_fit.interval_method) == ("fit", "percentile")
    assert by_fit.models[0].headline is by_fit.models[0].fit_score
    assert by_fit.models[0].score == by_mode.models[0].score


def test_with_the_defaults_the_old_columns_of_scores_csv_are_what_the_old_code_wrote():
    for study, name in zip(pinned_studies(), ("time", "inf"), strict=True):
        pinned = (FIXTURES / f"pinned_scores_{name}.csv").read_bytes().decode()
        header = pinned.splitlines()[0].split(",")
        assert set(header) <= set(SCORE_COLUMNS)
        written = csv_rows(scores_csv(study))
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(written)
        assert out.getvalue() == pinned, name


def test_scores_csv_carries_the_fit_its_interval_its_censored_raters_and_the_method():
    time_study, inf_study = pinned_studies()
    results, without = study_results_both(time_study)
    rows = csv_rows(scores_csv(time_study))
    views = [view for pair in zip(results.models, without.models, strict=True) for view in pair]
    for row, model in zip(rows, views, strict=True):
        fit = model.fit_score
        assert (row["interval_method"], row["headline"]) == ("percentile", "mode")
        assert float(row["fit_score"]) == fit.estimate and float(row["fit_sd"]) == fit.sd
        assert (float(row["fit_ci_low"]), float(row["fit_ci_high"])) == (fit.low, fit.high)
        assert (int(row["fit_censored_low"]), int(row["fit_censored_high"])) == (
            model.fit_censored_low,
            model.fit_censored_high,
        )
    for row in csv_rows(scores_csv(inf_study)):
        assert (row["interval_method"], row["headline"], row["fit_score"]) == ("percentile", "", "")


def test_raters_csv_carries_each_raters_fitted_threshold_or_why_it_is_censored(time_study):
    assert {"time_fit_threshold_ms", "time_fit_censored", "time_fit_bound_ms"} <= set(RATER_COLUMNS)
    fits = study_fits(time_study).raters
    by_rater = {s.public_id: fits[s.pk] for s in RaterSession.objects.filter(study=time_study)}
    rows = csv_rows(raters_csv(time_study))
    assert len(rows) == len(by_rater)
    for row in rows:
        fit = by_rater[row["rater"]]
        if fit.censored is None:
            assert float(row["time_fit_threshold_ms"]) == fit.threshold_ms
            assert row["time_fit_censored"] == row["time_fit_bound_ms"] == ""
        else:
            assert row["time_fit_threshold_ms"] == ""
            assert row["time_fit_censored"] == fit.censored
            assert float(row["time_fit_bound_ms"]) == fit.bound_ms


def test_a_rater_excluded_after_completing_has_the_fit_of_the_result_that_counts_them(time_study):
    excluded = RaterSession.objects.filter(study=time_study).order_by("id").first()
    RaterSession.objects.filter(pk=excluded.pk).update(
        status=RaterSession.Status.EXCLUDED,
        status_before_exclusion=RaterSession.Status.COMPLETED,
    )
    applied, everyone = study_fits(time_study), study_fits(time_study, exclusions="none")
    assert excluded.pk not in applied.raters and excluded.pk in everyone.raters
    # The study's result is fitted without them: its shared slope is not theirs.
    assert applied.slope_ms != everyone.slope_ms
    excluded.refresh_from_db()
    assert session_score(excluded).fit == everyone.raters[excluded.pk]
    kept = {r.session_id: r.fit for r in rater_scores(time_study, exclusions="none")}
    assert kept[excluded.pk] == everyone.raters[excluded.pk]
    assert all(kept[s] == fit for s, fit in applied.raters.items())


def test_the_latex_caption_names_the_interval_method_and_the_fit_when_it_leads(time_study):
    assert "95\\% percentile intervals from" in latex_table(time_study)
    study_set(time_study, interval_method="studentized", time_score="fit")
    table = latex_table(time_study)
    assert "95\\% studentized intervals from" in table and "psychometric threshold" in table
    fit = study_results(time_study).models[0].fit_score
    assert f"{fit.estimate:.1f} & {fit.sd:.1f}" in table
