"""The researcher's dashboard in a browser: logging in through the form, the studies list, a
HYPE_time and a HYPE_inf study page with their charts, and a colleague's read-only view.
Screenshots go to /tmp/shots/ so that people can look at the pages."""

import hashlib
import itertools
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.utils import timezone

from experiments.models import Answer, Block, Image, RaterSession, Study, Trial
from experiments.services.scores import study_results
from hype.science.observers import SimulatedObserver, simulate_inf_rater, simulate_time_rater
from tests.factories import study_make, user_make

pytestmark = [pytest.mark.browser]

PASSWORD = "pw-for-tests-1"  # tests.factories.user_make's
SHOTS = Path("/tmp/shots")
_ids = itertools.count()


# --- Studies with simulated raters, written straight to the database --------------------


def _images(study, model, count):
    images = []
    for _ in range(count):
        n = next(_ids)
        images.append(
            Image(
                study=study,
                model=model,
                is_real=model is None,
                sha256=hashlib.sha256(str(n).encode()).hexdigest(),
                width=64,
                height=64,
                file=f"studies/{study.public_id}/{n}.png",  # never fetched by these pages
            )
        )
    return Image.objects.bulk_create(images)


def _completed_rater(study, model, blocks, *, reals, fakes, finished_at, timed):
    """A completed rater whose blocks are lists of (requested_ms or None, is_real, correct)."""
    session = RaterSession.objects.create(
        study=study,
        model=model,
        external_id=f"sim-{next(_ids)}",
        status=RaterSession.Status.COMPLETED,
        finished_at=finished_at,
    )
    real_pool, fake_pool = iter(reals), iter(fakes)
    trials, correct_of = [], []
    index = 0
    for number, answers in enumerate(blocks):
        block = Block.objects.create(
            session=session,
            index=number,
            kind=Block.Kind.TASK,
            timed=timed,
            trial_count=len(answers),
        )
        for position, (requested_ms, is_real, correct) in enumerate(answers):
            image = next(real_pool) if is_real else next(fake_pool)
            trials.append(
                Trial(
                    session=session,
                    block=block,
                    index=index,
                    position=position,
                    image=image,
                    is_real=is_real,
                    requested_ms=requested_ms,
                )
            )
            correct_of.append((is_real, correct))
            index += 1
    trials = Trial.objects.bulk_create(trials)
    Answer.objects.bulk_create(
        Answer(
            trial=trial,
            response="real" if is_real == correct else "fake",
            correct=correct,
            rt_ms=600,
        )
        for trial, (is_real, correct) in zip(trials, correct_of, strict=True)
    )


def time_study_make(owner, *, thresholds, raters, name, per_block=60, seed=1):
    """A live HYPE_time study whose raters are simulated observers on the real staircase."""
    study = study_make(
        owner=owner,
        models=tuple(thresholds),
        name=name,
        method=Study.Method.TIME,
        status=Study.Status.LIVE,
        raters_per_model=20,
        time_trials_per_block=per_block,
    )
    rng = np.random.default_rng(seed)
    rule = study.staircase_rule()
    reals = _images(study, None, 3 * per_block)
    start = timezone.now() - timedelta(days=2)
    for number in range(raters):
        for model_name, threshold in thresholds.items():
            model = study.models.get(name=model_name)
            fakes = _images(study, model, 3 * per_block)
            observer = SimulatedObserver(threshold_ms=rng.normal(threshold, 60), spread_ms=40)
            exposures = simulate_time_rater(
                observer, rule, blocks=3, trials_per_block=per_block, rng=rng
            )
            blocks = [
                [
                    (ms, bool(is_real), bool(rng.random() < 0.7))
                    for ms, is_real in zip(
                        block, rng.permutation(np.arange(per_block) < per_block // 2), strict=True
                    )
                ]
                for block in exposures
            ]
            _completed_rater(
                study,
                model,
                blocks,
                reals=reals,
                fakes=fakes,
                finished_at=start + timedelta(minutes=37 * number + len(model_name)),
                timed=True,
            )
    return study


def inf_study_make(owner, *, errors, raters, name, trials=100, seed=2):
    """A closed HYPE_inf study whose raters are simulated with per-rater error rates."""
    study = study_make(
        owner=owner,
        models=tuple(errors),
        name=name,
        method=Study.Method.INF,
        status=Study.Status.CLOSED,
        raters_per_model=raters,
        inf_trials=trials,
    )
    rng = np.random.default_rng(seed)
    reals = _images(study, None, trials)
    start = timezone.now() - timedelta(days=5)
    for model_name, error in errors.items():
        model = study.models.get(name=model_name)
        fakes = _images(study, model, trials)
        for number in range(raters):
            rater_error = float(np.clip(rng.normal(error, 0.06), 0.0, 0.95))
            observer = SimulatedObserver.with_inf_error(rater_error, threshold_ms=300)
            is_real, correct = simulate_inf_rater(observer, trials=trials, rng=rng)
            answers = [(None, bool(r), bool(c)) for r, c in zip(is_real, correct, strict=True)]
            _completed_rater(
                study,
                model,
                [answers],
                reals=reals,
                fakes=fakes,
                finished_at=start + timedelta(minutes=23 * number),
                timed=False,
            )
    return study


# --- Helpers over the page -------------------------------------------------------------


def log_in(page, base_url, username, *, next_path):
    page.goto(f"{base_url}{next_path}")
    page.wait_for_url("**/accounts/login/**")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(f"**{next_path}")


PAINTED_PIXELS = """(id) => {
  const canvas = document.getElementById(id);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted += 1;
  return painted;
}"""


def chart_drawn(page, canvas_id):
    page.wait_for_function(f"() => window.Chart && window.Chart.getChart('{canvas_id}')")
    return page.evaluate(PAINTED_PIXELS, canvas_id)


# --- The tests -------------------------------------------------------------------------


def test_a_researcher_logs_in_and_the_study_page_shows_the_scores_of_hype_science(
    live_server_url, page
):
    SHOTS.mkdir(exist_ok=True)
    ada = user_make("ada")
    study = time_study_make(
        ada, thresholds={"StyleGAN-trunc": 420, "ProGAN": 300}, raters=8, name="FFHQ faces"
    )
    study_make(owner=ada, models=("diffusion-a", "diffusion-b"), name="LSUN bedrooms (pilot)")
    inf_study_make(ada, errors={"StyleGAN-trunc": 0.45, "ProGAN": 0.3}, raters=6, name="CelebA-64")
    shared = study_make(owner=user_make("grace"), models=("BigGAN",), name="ImageNet dogs")
    shared.viewers.add(ada)

    page.goto(f"{live_server_url}/studies/{study.public_id}/")
    page.wait_for_url("**/accounts/login/**")
    page.screenshot(path=str(SHOTS / "dashboard-login.png"))
    log_in(page, live_server_url, "ada", next_path=f"/studies/{study.public_id}/")

    assert chart_drawn(page, "scores-chart") > 1000
    assert chart_drawn(page, "width-chart") > 1000
    results = study_results(study)
    table = page.inner_text("#results")
    drawn = page.evaluate("() => window.Chart.getChart('scores-chart').data.datasets[1].data")
    for model, estimate in zip(results.models, drawn, strict=True):
        score = model.score
        assert f"{score.estimate:.1f} ms" in table
        assert f"{score.low:.1f} ms – {score.high:.1f} ms" in table
        assert f"{score.sd:.1f} ms" in table
        assert estimate == pytest.approx(score.estimate, abs=1e-9)
    assert "is more realistic than" in page.inner_text("#verdict")
    assert "raters per model" in page.inner_text("#raters-needed")
    page.screenshot(path=str(SHOTS / "dashboard-study-time.png"), full_page=True)

    page.goto(f"{live_server_url}/")
    listing = page.inner_text("#studies")
    for name in ("FFHQ faces", "LSUN bedrooms (pilot)", "CelebA-64", "ImageNet dogs"):
        assert name in listing
    assert "shared with you" in listing
    page.screenshot(path=str(SHOTS / "dashboard-studies.png"), full_page=True)

    page.click("text=Change password")
    page.wait_for_url("**/accounts/password/")
    page.screenshot(path=str(SHOTS / "dashboard-password-change.png"), full_page=True)
    page.click("nav >> text=Log out")
    page.wait_for_url("**/accounts/login/")
    page.goto(f"{live_server_url}/")
    assert "How real do your model's images look to people?" in page.inner_text("main")
    page.screenshot(path=str(SHOTS / "dashboard-home-anonymous.png"))


def test_a_hype_inf_study_shows_error_rates_with_the_chance_line(live_server_url, page):
    SHOTS.mkdir(exist_ok=True)
    ada = user_make("ada")
    study = inf_study_make(
        ada,
        errors={"StyleGAN-trunc": 0.5, "ProGAN": 0.4, "BEGAN": 0.1, "WGAN-GP": 0.04},
        raters=10,
        name="CelebA-64, four GANs",
    )
    log_in(page, live_server_url, "ada", next_path=f"/studies/{study.public_id}/")
    assert chart_drawn(page, "scores-chart") > 1000
    table = page.inner_text("#results")
    for model in study_results(study).models:
        assert f"{100 * model.score.estimate:.1f}%" in table
        assert f"{100 * model.inf.fake_error:.1f}%" in table
    assert "ANOVA" in page.inner_text("#verdict")
    page.screenshot(path=str(SHOTS / "dashboard-study-inf.png"), full_page=True)


def test_a_colleague_sees_the_results_but_no_controls(live_server_url, page):
    SHOTS.mkdir(exist_ok=True)
    study = time_study_make(
        user_make("grace"), thresholds={"A": 380, "B": 340}, raters=3, name="Shared study"
    )
    study.viewers.add(user_make("ada"))
    log_in(page, live_server_url, "ada", next_path=f"/studies/{study.public_id}/")
    assert chart_drawn(page, "scores-chart") > 1000
    assert "read-only" in page.inner_text("#read-only")
    assert page.locator("#status-form").count() == 0
    assert page.locator("#sharing").count() == 0
    page.screenshot(path=str(SHOTS / "dashboard-study-colleague.png"), full_page=True)


def test_the_owner_closes_the_study_and_shares_it_from_the_page(live_server_url, page):
    SHOTS.mkdir(exist_ok=True)
    study = time_study_make(
        user_make("ada"), thresholds={"A": 380, "B": 340}, raters=2, name="Pilot faces"
    )
    user_make("grace")
    log_in(page, live_server_url, "ada", next_path=f"/studies/{study.public_id}/")
    page.click("#status-form button")
    page.wait_for_selector(".message-success")
    assert "is closed" in page.inner_text(".messages")
    assert page.inner_text("#study-status") == "Closed"
    page.fill("#share-username", "nobody")
    page.click("#share-form button")
    page.wait_for_selector("#sharing .message-error")
    assert "no researcher with the username" in page.inner_text("#sharing .messages")
    page.fill("#share-username", "grace")
    page.click("#share-form button")
    page.wait_for_selector("#sharing .message-success")
    assert "grace can now see this study" in page.inner_text("#sharing .messages")
    assert "grace" in page.inner_text("#sharing .viewers")
    assert list(study.viewers.values_list("username", flat=True)) == ["grace"]
    assert Study.objects.get(pk=study.pk).status == Study.Status.CLOSED
    page.screenshot(path=str(SHOTS / "dashboard-study-shared.png"), full_page=True)
