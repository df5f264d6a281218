"""Migration 0010 gives every study that exists the score options' defaults (the modal
threshold leads, percentile intervals), and so does the database for a study that a worker
still on the code before it inserts during the upgrade."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from experiments.models import Study
from experiments.services.scores import study_results
from tests.factories import answered_session_make, user_make

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("experiments", "0009_inception_score")


def test_studies_from_before_the_score_options_get_their_defaults_and_keep_their_scores():
    owner = user_make()
    study = Study.objects.create(owner=owner, name="before", time_score="fit")
    model = study.models.create(name="A")
    for exposures in ((500, 490, 490), (470, 470, 480)):
        answered_session_make(study, model, [[(ms, True, True) for ms in exposures]])
    executor = MigrationExecutor(connection)
    leaf = executor.loader.graph.leaf_nodes("experiments")
    executor.migrate([BEFORE])
    # The code before the options: its Study names neither column when it inserts.
    old_study = executor.loader.project_state([BEFORE]).apps.get_model("experiments", "Study")
    assert not {"time_score", "interval_method"} & {f.name for f in old_study._meta.fields}
    old_study.objects.create(owner_id=owner.pk, name="inserted before")

    executor = MigrationExecutor(connection)
    executor.migrate(leaf)
    old_study.objects.create(owner_id=owner.pk, name="inserted during the upgrade")

    found = {s.name: (s.time_score, s.interval_method) for s in Study.objects.all()}
    assert found == {
        # Going back dropped the column and its choice: forward again, the defaults.
        "before": ("mode", "percentile"),
        "inserted before": ("mode", "percentile"),
        "inserted during the upgrade": ("mode", "percentile"),
    }
    results = study_results(Study.objects.get(name="before"))
    assert results.models[0].rater_scores == (490.0, 470.0)
    assert results.models[0].headline is results.models[0].score
