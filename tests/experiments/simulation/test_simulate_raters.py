"""`manage.py simulate_raters` against a live server: concurrent simulated raters finish every
session over the real pages and websocket, every answer is stored once, and the scores
recover the thresholds and errors the observers were given."""

from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from experiments.models import Answer, Block, RaterSession, Study, Trial
from experiments.services.scores import study_results
from experiments.simulation.client import task_stream
from experiments.simulation.plan import observer_make
from experiments.simulation.server import listening_socket
from hype.science.staircase import staircase_replay, staircase_start, staircase_step
from hype.science.thresholds import rater_time_score
from tests.raters import live_study_make

# Simulations are deterministic for a seed: each model's k-th rater answers from that
# model's k-th random stream, whatever order the server assigned the raters in.
SEED = 0


def staircase_blocks(observer, rule, *, study: Study, rng) -> list[list[int]]:
    """The exposures a rater answering from `rng` meets in the study's task blocks."""
    blocks = []
    for _ in range(study.time_blocks):
        state, shown = staircase_start(rule), []
        for _ in range(study.time_trials_per_block):
            shown.append(state.exposure_ms)
            correct = observer.answer(is_real=True, exposure_ms=state.exposure_ms, rng=rng)
            state = staircase_step(rule, state, correct=correct)
        blocks.append(shown)
    return blocks


def offline_time_rater(observer, rule, *, study: Study, model: str, k: int) -> list[list[int]]:
    """The exposures the k-th rater of `model` meets, replayed offline from its stream."""
    rng = task_stream(seed=SEED, model=model, ordinal=k)
    return staircase_blocks(observer, rule, study=study, rng=rng)


def offline_inf_wrong(observer, *, study: Study, model: str, k: int) -> int:
    rng = task_stream(seed=SEED, model=model, ordinal=k)
    return sum(
        not observer.answer(is_real=True, exposure_ms=None, rng=rng)
        for _ in range(study.inf_trials)
    )


def simulate(**options) -> str:
    out = StringIO()
    call_command("simulate_raters", stdout=out, **options)
    return out.getvalue()


def scores_by_model(study: Study) -> dict:
    return {model.name: model for model in study_results(study).models}


def expected_time_score(observer, rule, *, study: Study, raters: int = 2000) -> float:
    """The HYPE_time score this observer earns on average under the study's protocol: what
    the platform should recover. The modal exposure of a 150-trial block sits about 8 ms
    above the observer's 63% point (docs/hype-method.md), so this is not the given threshold
    itself."""
    rng = np.random.default_rng(12345)
    scores = [
        rater_time_score(staircase_blocks(observer, rule, study=study, rng=rng))
        for _ in range(raters)
    ]
    return float(np.mean(scores))


# Eight raters per model, and 99% intervals: the percentile bootstrap undercovers with few
# raters (docs/hype-method.md). Simulated offline over seeds 0-149 (0-299 for HYPE_inf), these
# intervals contained the target 95-97% of the time for each model here; SEED was fixed at 0
# before that was measured and was not chosen to pass.
RATERS_PER_MODEL = 8


@pytest.mark.slow
def test_concurrent_raters_complete_a_hype_time_study_and_the_staircase_finds_their_thresholds(
    live_server_url,
):
    # Two blocks of 150 trials: long enough for the staircase to settle (docs/hype-method.md).
    study = live_study_make(
        models=("sharp", "blurry"),
        qualification_trials=10,
        time_blocks=2,
        time_trials_per_block=150,
        confidence=0.99,
    )
    given = {"sharp": 400, "blurry": 280}
    n = 2 * RATERS_PER_MODEL
    output = simulate(
        study=study.public_id,
        n=n,
        url=live_server_url,
        model=[f"{name}={ms}" for name, ms in given.items()],
        concurrency=8,
        pace="off",
        think_ms=0,
        seed=SEED,
    )

    assert f"{n}/{n} raters completed, {n * 310} answers stored" in output
    sessions = RaterSession.objects.filter(study=study)
    assert sorted(sessions.values_list("status", flat=True)) == ["completed"] * n
    assert sorted(sessions.values_list("model__name", flat=True)) == (
        ["blurry"] * RATERS_PER_MODEL + ["sharp"] * RATERS_PER_MODEL
    )
    for session in sessions:
        assert Trial.objects.filter(session=session).count() == 310
        assert Answer.objects.filter(trial__session=session).count() == 310

    # The server's staircase moved exactly as hype.science says it moves on these answers.
    rule = study.staircase_rule()
    for block in Block.objects.filter(session__study=study, timed=True):
        trials = block.trials.order_by("position").select_related("answer")
        assert [t.requested_ms for t in trials] == staircase_replay(
            rule, [t.answer.correct for t in trials]
        )

    # The live, concurrent run scores exactly what the same observers score offline.
    scores = scores_by_model(study)
    for name, threshold_ms in given.items():
        observer = observer_make(rule=rule, threshold_ms=threshold_ms)
        offline = [
            rater_time_score(offline_time_rater(observer, rule, study=study, model=name, k=k))
            for k in range(RATERS_PER_MODEL)
        ]
        assert sorted(scores[name].rater_scores) == pytest.approx(sorted(offline))

    # And the scores recover the thresholds: each model's bootstrap interval contains the
    # score its observer earns on average, which lies within 10 ms of the given threshold;
    # the other model's (120 ms away) lies far outside.
    expected = {
        name: expected_time_score(observer_make(rule=rule, threshold_ms=ms), rule, study=study)
        for name, ms in given.items()
    }
    for name, threshold_ms in given.items():
        score = scores[name].score
        assert scores[name].n_raters == RATERS_PER_MODEL
        assert abs(expected[name] - threshold_ms) <= 10
        assert score.low <= expected[name] <= score.high, (name, expected[name], score)
        other = next(v for k, v in expected.items() if k != name)
        assert not score.low <= other <= score.high
    assert "sharp: HYPE_time" in output and "simulated with 400 ms" in output


@pytest.mark.slow
def test_simulated_raters_recover_the_hype_inf_errors_they_were_given(live_server_url):
    study = live_study_make(
        models=("sharp", "blurry"),
        method=Study.Method.INF,
        qualification_trials=10,
        confidence=0.99,
    )
    given = {"sharp": 0.35, "blurry": 0.05}
    n = 2 * RATERS_PER_MODEL
    output = simulate(
        study=study.public_id,
        n=n,
        url=live_server_url,
        inf_error=[f"{name}={error}" for name, error in given.items()],
        pace="off",
        think_ms=0,
        seed=SEED,
    )

    assert f"{n}/{n} raters completed, {n * 110} answers stored" in output
    assert Answer.objects.filter(trial__session__study=study).count() == n * 110
    # The live run scores exactly what the same observers score offline...
    scores = scores_by_model(study)
    rule = study.staircase_rule()
    answers = RATERS_PER_MODEL * study.inf_trials
    for name, error in given.items():
        observer = observer_make(rule=rule, inf_error=error)
        wrong = sum(
            offline_inf_wrong(observer, study=study, model=name, k=k)
            for k in range(RATERS_PER_MODEL)
        )
        assert scores[name].n_raters == RATERS_PER_MODEL
        assert scores[name].score.estimate == pytest.approx(wrong / answers)

    # ...and that recovers the errors it was given: inside each model's bootstrap interval.
    for name, error in given.items():
        score = scores[name].score
        assert score.low <= error <= score.high, (name, error, score)
        other = next(v for k, v in given.items() if k != name)
        assert not score.low <= other <= score.high


@pytest.mark.keeps_flood_limit
def test_by_default_the_raters_pace_themselves_under_the_servers_flood_limit(
    live_server_url, settings
):
    # 2 messages a trial: 36 untimed trials are 73 messages a socket, over the 60 in 5 s the
    # server allows at once; the default pace spreads them out and nobody is cut off.
    settings.HYPE_RATER_FLOOD_LIMIT = (60, 5.0)
    study = live_study_make(
        models=("sharp", "blurry"), method=Study.Method.INF, qualification_trials=0, inf_trials=36
    )
    output = simulate(study=study.public_id, n=2, url=live_server_url, think_ms=0)

    assert "2/2 raters completed, 72 answers stored" in output
    assert not RaterSession.objects.filter(study=study).exclude(status="completed").exists()


@pytest.mark.django_db
def test_it_names_the_models_of_the_study_when_given_an_unknown_one():
    study = live_study_make(models=("sharp", "blurry"), real=2, fakes_per_model=2, masks=0)
    with pytest.raises(CommandError, match="no model 'crisp'; its models are blurry, sharp"):
        simulate(study=study.public_id, n=1, model=["crisp=300"])


@pytest.mark.django_db
def test_it_refuses_a_study_that_is_not_live():
    study = live_study_make(real=2, fakes_per_model=2, masks=0)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
    with pytest.raises(CommandError, match="is draft, not live"):
        simulate(study=study.public_id, n=1)


@pytest.mark.django_db
def test_it_says_so_when_no_server_answers_at_the_url():
    study = live_study_make(real=2, fakes_per_model=2, masks=0)
    sock = listening_socket()
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(CommandError, match="no HYPE server answers"):
        simulate(study=study.public_id, n=1, url=f"http://127.0.0.1:{port}")


@pytest.mark.django_db
def test_it_refuses_an_untimed_error_that_no_exposure_could_bring_to_the_staircases_target():
    study = live_study_make(models=("sharp",), real=2, fakes_per_model=2, masks=0)
    with pytest.raises(CommandError, match="below the staircase's target accuracy"):
        simulate(study=study.public_id, n=1, inf_error=["sharp=0.45"])
