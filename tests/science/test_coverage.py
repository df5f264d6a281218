"""The bootstrap's 95% interval contains a known true score about 95% of the time, over
many simulated studies of 30 raters.

The percentile bootstrap with 30 raters uses the plug-in SD and normal-like quantiles, so it
undercovers a little (about 93.5% in theory and in long runs). 20,000 studies make the Monte
Carlo SE of the coverage about 0.17 points, so a real drop below 93% would show. Each study
uses 2,000 resamples rather than 10,000 to fit the time budget: that only adds Monte Carlo
noise to the interval ends (SE about 6% of the bootstrap SD), which changes coverage by well
under 0.1 point.
"""

import numpy as np
import pytest

from hype.science.bootstrap import bootstrap_mean, bootstrap_pooled_rate

STUDIES = 20_000
RATERS = 30
RESAMPLES = 2_000


@pytest.mark.slow
def test_hype_time_intervals_cover_the_true_model_score_about_95_percent_of_the_time():
    # Rater scores from a known population: normal around 360 ms, on the 10/3 ms grid a mean
    # of three 10 ms block thresholds lives on. Symmetry keeps the population mean at 360.
    true_score = 360.0
    rng = np.random.default_rng(2019)
    scores = np.round(rng.normal(true_score, 60, (STUDIES, RATERS)) * 0.3) / 0.3
    covered = 0
    for study, values in enumerate(scores):
        result = bootstrap_mean(values, resamples=RESAMPLES, seed=study)
        covered += result.low <= true_score <= result.high
    coverage = covered / STUDIES
    print(f"HYPE_time coverage over {STUDIES} studies: {coverage:.4f}")
    assert 0.93 <= coverage <= 0.97


@pytest.mark.slow
def test_hype_inf_intervals_cover_the_true_error_about_95_percent_of_the_time():
    # Each rater has their own error rate (Beta(6, 14), mean 0.3) and answers 100 images;
    # with equal trials per rater the pooled error estimates the population mean, 0.3.
    true_error = 0.3
    rng = np.random.default_rng(2020)
    wrong = rng.binomial(100, rng.beta(6, 14, (STUDIES, RATERS)))
    answered = np.full(RATERS, 100)
    covered = 0
    for study, counts in enumerate(wrong):
        result = bootstrap_pooled_rate(counts, answered, resamples=RESAMPLES, seed=study)
        covered += result.low <= true_error <= result.high
    coverage = covered / STUDIES
    print(f"HYPE_inf coverage over {STUDIES} studies: {coverage:.4f}")
    assert 0.93 <= coverage <= 0.97
