"""How long a study of 10 models x 30 raters x 450 trials (135,000 answers, HYPE_time, all
raters completed, exposures from simulated observers on the real staircase) takes to score
(study_results), to show (GET of the study page) and to export, each against the time of a
plain query that reads the same answers: the ratio is what the work costs over the reading.
Each is timed computed (the results cache emptied first: what the first look after a change
costs) and cached (every later look); and Tukey's HSD as scipy computes it against the pairs
alone, on the study's rater scores. Target: the cached page in under 200 ms.

Run from the repository root: .venv/bin/python bench/results_page.py
It makes a throwaway test database (SQLite in the temp folder by default, or a test_...
database next to DATABASE_URL's) and deletes it at the end; nothing else is touched.
"""

import time

from common import best_of, on_a_test_database

MODELS = 10
RATERS = 30
TRIALS = 450  # 3 blocks of 150
REPEATS = 3


def main() -> None:
    import numpy as np
    from django.core.cache import cache
    from django.test import Client
    from scipy import stats

    from experiments.services.exports.downloads import export_response
    from experiments.services.scores import scored_answers, study_results
    from hype.science.comparisons import tukey_hsd_pairs
    from tests.bulk import bulk_study_make
    from tests.factories import user_make

    owner = user_make("bench")
    start = time.perf_counter()
    study = bulk_study_make(
        owner=owner, models=MODELS, raters_per_model=RATERS, trials_per_rater=TRIALS, blocks=3
    )
    built = time.perf_counter() - start

    def read_answers():
        # What the scores need, read and nothing else: the baseline.
        return list(scored_answers(study))

    client = Client()
    client.force_login(owner)

    def page():
        response = client.get(f"/studies/{study.public_id}/")
        assert response.status_code == 200, response.status_code
        return response

    def export(kind):
        return lambda: sum(len(part) for part in export_response(study, kind))

    def computed(function):
        # The results cache emptied first: what the first look after a change costs.
        return lambda: (cache.clear(), function())[1]

    read_answers(), study_results(study), page()  # warm up caches and imports
    t_read, answers = best_of(read_answers, REPEATS)
    timings = []
    for label, function in (
        ("study_results (scores, CIs, test)", lambda: study_results(study)),
        ("GET /studies/<id>/ (the page)", page),
        ("scores.csv", export("scores.csv")),
    ):
        t_computed, _ = best_of(computed(function), REPEATS)
        function()
        t_cached, _ = best_of(function, REPEATS)
        timings.append((label, t_computed, t_cached))
    t_trials, size = best_of(export("trials.csv"), REPEATS)
    results = study_results(study)
    samples = [np.asarray(m.rater_scores) for m in results.models]
    t_scipy, _ = best_of(lambda: stats.tukey_hsd(*samples).confidence_interval(0.95), REPEATS)
    t_pairs, _ = best_of(lambda: tukey_hsd_pairs(samples, confidence=0.95), REPEATS)

    print(
        f"HYPE_time study: {MODELS} models x {RATERS} raters x {TRIALS} trials = "
        f"{len(answers):,} answers (built in {built:.1f} s), best of {REPEATS}"
    )
    print(f"  baseline: read the answers       {1e3 * t_read:8.1f} ms")
    print(f"  {'':<33}{'computed':>11}{'':12}{'cached':>11}")
    for label, t_computed, t_cached in timings:
        print(
            f"  {label:<33}{1e3 * t_computed:8.1f} ms ({t_computed / t_read:4.1f}x)"
            f"{1e3 * t_cached:9.1f} ms ({t_cached / t_read:5.2f}x)"
        )
    print(
        f"  trials.csv ({size / 1e6:.1f} MB, not cached)  {1e3 * t_trials:8.1f} ms "
        f"({t_trials / t_read:4.1f}x)"
    )
    print(
        f"  Tukey HSD, {MODELS} models: scipy {1e3 * t_scipy:.1f} ms, the pairs alone "
        f"{1e3 * t_pairs:.1f} ms ({t_pairs / t_scipy:.2f}x)"
    )
    page_cached = timings[1][2]
    verdict = "met" if page_cached < 0.2 else "NOT met"
    print(f"  target: the cached page under 200 ms: {1e3 * page_cached:.0f} ms, {verdict}")
    scores = [m.score.estimate for m in results.models]
    print(f"  model scores {min(scores):.0f}-{max(scores):.0f} ms; {results.comparison.test}")


if __name__ == "__main__":
    on_a_test_database(main)
