"""`manage.py load_demo`: both demo studies with both models, taken by simulated raters over
the real protocol, the poor sampler scored clearly worse, and a second run adds nothing."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from experiments.models import Answer, Image, RaterSession, Study
from experiments.services.scores import study_results
from tests.factories import user_make

pytestmark = pytest.mark.django_db(transaction=True)

INF = "Demo: handwritten digits (HYPE_inf)"
TIME = "Demo: handwritten digits (HYPE_time)"


def load_demo(**options) -> str:
    out = StringIO()
    # A reduced demo: 80 images a folder, 2 simulated raters per model.
    call_command("load_demo", images=80, raters=2, stdout=out, **options)
    return out.getvalue()


def scores(study: Study) -> dict:
    return {model.name: model.score.estimate for model in study_results(study).models}


def test_load_demo_makes_two_live_studies_whose_raters_rank_the_noise_below_the_mixture_once():
    researcher = user_make("researcher")
    output = load_demo()

    studies = {s.name: s for s in Study.objects.all()}
    assert set(studies) == {INF, TIME}
    for study in studies.values():
        assert study.owner == researcher
        assert study.status == Study.Status.LIVE
        assert set(study.models.values_list("name", flat=True)) == {"gmm-sampler", "pixel-noise"}
        sessions = RaterSession.objects.filter(study=study)
        assert sessions.count() == 4
        assert set(sessions.values_list("status", flat=True)) == {"completed"}
        assert f"Rater link: http://127.0.0.1:8000/s/{study.public_id}/" in output
    assert studies[INF].method == Study.Method.INF
    assert studies[TIME].method == Study.Method.TIME

    inf, time = scores(studies[INF]), scores(studies[TIME])
    # HYPE_inf: the share of wrong answers; HYPE_time: the threshold in ms. Higher is better.
    assert inf["pixel-noise"] < inf["gmm-sampler"] - 0.15
    assert time["pixel-noise"] < time["gmm-sampler"] - 100
    assert "gmm-sampler: HYPE_time" in output and "pixel-noise: HYPE_inf" in output
    assert "Researcher login: http://127.0.0.1:8000/accounts/login/ as 'researcher'" in output

    # A second run finds the studies and their finished raters, and adds nothing.
    def counts():
        return [m.objects.count() for m in (Study, Image, RaterSession, Answer)]

    before = counts()
    again = load_demo()
    assert counts() == before
    assert "The demo studies exist already." in again
    assert again.count("Rater link:") == 2


def test_load_demo_asks_for_the_researcher_account_first():
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("load_demo", owner="nobody", stdout=StringIO())
    assert not Study.objects.exists()
