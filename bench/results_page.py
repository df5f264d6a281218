"""How long a study of 10 models x 30 raters x 450 trials (135,000 answers, HYPE_time, all
raters completed, exposures from simulated observers on the real staircase) takes to score
(study_results), to show (GET of the study page) and to export, each against the time of a
plain query that reads the same answers: the ratio is what the work costs over the reading.

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
    from django.test import Client

    from experiments.services.exports.downloads import export_response
    from experiments.services.scores import scored_answers, study_results
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

    read_answers(), study_results(study), page()  # warm up caches and imports
    t_read, answers = best_of(read_answers, REPEATS)
    t_results, results = best_of(lambda: study_results(study), REPEATS)
    t_page, _ = best_of(page, REPEATS)
    t_scores, _ = best_of(export("scores.csv"), REPEATS)
    t_trials, size = best_of(export("trials.csv"), REPEATS)

    print(
        f"HYPE_time study: {MODELS} models x {RATERS} raters x {TRIALS} trials = "
        f"{len(answers):,} answers (built in {built:.1f} s), best of {REPEATS}"
    )
    print(f"  baseline: read the answers       {1e3 * t_read:8.1f} ms")
    for label, seconds in (
        ("study_results (scores, CIs, test)", t_results),
        ("GET /studies/<id>/ (the page)", t_page),
        ("scores.csv", t_scores),
        (f"trials.csv ({size / 1e6:.1f} MB)", t_trials),
    ):
        print(f"  {label:<33}{1e3 * seconds:8.1f} ms   ratio {seconds / t_read:5.1f}x")
    scores = [m.score.estimate for m in results.models]
    print(f"  model scores {min(scores):.0f}-{max(scores):.0f} ms; {results.comparison.test}")


if __name__ == "__main__":
    on_a_test_database(main)
