"""`manage.py load_demo`: the two demo studies behind `make demo` (handwritten digits from two
generative models trained on the spot), taken by simulated raters over the real protocol."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test.utils import override_settings
from django.urls import reverse

from experiments.dashboard.formatting import score_lines
from experiments.models import RaterSession, Study
from experiments.services.imports.study import study_create
from experiments.services.problems import InputProblems
from experiments.services.scores import study_results
from experiments.simulation.client import simulation_run
from experiments.simulation.plan import SimulationError, plan_make
from experiments.simulation.server import server_in_thread
from hype.science.demo_models import GOOD_MODEL, POOR_MODEL, demo_images_write

# Short enough for a person trying the link (a 10-image qualification, then 40 untimed images
# or 2 x 60 timed ones: about 5 minutes), long enough for the scores to separate the models.
COMMON = {"qualification_trials": 10, "raters_per_model": 5}


@dataclass(frozen=True)
class DemoStudy:
    name: str
    method: str
    params: dict[str, Any]


DEMO_STUDIES = (
    DemoStudy(
        name="Demo: handwritten digits (HYPE_inf)",
        method=Study.Method.INF,
        params={**COMMON, "inf_trials": 40},
    ),
    DemoStudy(
        name="Demo: handwritten digits (HYPE_time)",
        method=Study.Method.TIME,
        params={**COMMON, "time_blocks": 2, "time_trials_per_block": 60},
    ),
)
# How the simulated raters see each model (the same observers in both studies): wrong 30% and
# 3% of the time without a time limit, and 63% right (the staircase's target) at 400 and
# 150 ms. They stand in for people; what people make of the models, the links will tell.
DEMO_THRESHOLDS_MS = {GOOD_MODEL: 400.0, POOR_MODEL: 150.0}
DEMO_INF_ERRORS = {GOOD_MODEL: 0.30, POOR_MODEL: 0.03}
# 8x8 digits, smoothly enlarged to a size a rater can see on a screen.
DISPLAY_SIDE = 128
# The demo's own server serves only its simulated raters, who answer at machine speed.
MACHINE_SPEED_FLOOD_LIMIT = (100_000, 1.0)


def _demo_ids(raters: int) -> list[str]:
    # Fixed external ids: a second run resumes (or finds finished) the same raters.
    return [f"demo-{i:04d}" for i in range(raters)]


class Command(BaseCommand):
    help = (
        "Create the demo studies (idempotent) from digits generated on the spot and let "
        "simulated raters take them through the real websocket protocol."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--owner", default="researcher", help="The researcher's username.")
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000", help="Where the links will be served."
        )
        parser.add_argument(
            "--images", type=int, default=200, help="Real digits, and samples per model."
        )
        parser.add_argument(
            "--raters", type=int, default=4, help="Simulated raters per model and study."
        )
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, owner: str, url: str, images: int, raters: int, seed: int, **opts):
        self.verbosity = opts["verbosity"]
        if raters < 0:
            raise CommandError("--raters must not be negative.")
        user = get_user_model().objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"No user {owner!r}: create it first (manage.py ensure_researcher).")
        studies = self._studies_ensure(owner=user, images=images, seed=seed)
        self._raters_simulate(studies, raters=raters, seed=seed)

        url = url.rstrip("/")
        self.stdout.write("")
        for study in studies:
            self.stdout.write(f"{study.name}")
            link = reverse("experiments:rater_landing", args=[study.public_id])
            results = reverse("experiments:study_detail", args=[study.public_id])
            self.stdout.write(f"  Rater link: {url}{link}")
            self.stdout.write(f"  Results:    {url}{results}")
            for line in score_lines(study_results(study)):
                self.stdout.write(f"  {line.strip()}")
        self.stdout.write(f"Researcher login: {url}{reverse('login')} as {owner!r}")

    def _studies_ensure(self, *, owner, images: int, seed: int) -> list[Study]:
        found = {s.name: s for s in Study.objects.filter(owner=owner, name__startswith="Demo: ")}
        missing = [d for d in DEMO_STUDIES if d.name not in found]
        if not missing:
            self.stdout.write("The demo studies exist already.")
            return [found[d.name] for d in DEMO_STUDIES]
        rng = np.random.default_rng(seed)
        with tempfile.TemporaryDirectory(prefix="hype-demo-") as folder:
            self.stdout.write(
                f"Training {GOOD_MODEL} and {POOR_MODEL} on scikit-learn's digits and writing "
                f"{images} real digits and {images} samples of each..."
            )
            try:
                written = demo_images_write(
                    folder=Path(folder), n=images, rng=rng, size=DISPLAY_SIDE
                )
            except ValueError as error:
                raise CommandError(str(error)) from None
            for demo in missing:
                try:
                    report = study_create(
                        owner=owner,
                        name=demo.name,
                        method=demo.method,
                        real_dir=written.real_dir,
                        model_dirs=written.model_dirs,
                        params=demo.params,
                        display_size=(DISPLAY_SIDE, DISPLAY_SIDE),
                        status=Study.Status.LIVE,
                        rng=rng,
                    )
                except InputProblems as error:
                    raise CommandError(
                        f"Could not create {demo.name!r}:\n" + "\n".join(error.problems)
                    ) from None
                found[demo.name] = report.study
                self.stdout.write(
                    f"Created {demo.name!r}: {report.real} real digits, "
                    + ", ".join(f"{n} {name}" for name, n in report.fakes.items())
                    + (f", {report.masks} masks" if report.masks else "")
                )
        return [found[d.name] for d in DEMO_STUDIES]

    def _raters_simulate(self, studies: list[Study], *, raters: int, seed: int) -> None:
        todo = []
        for study in studies:
            ids = _demo_ids(raters * study.models.count())
            finished = RaterSession.objects.filter(
                study=study, external_id__in=ids, status__in=RaterSession.ENDED
            ).count()
            if finished < len(ids):
                todo.append((study, len(ids)))
        if not todo:
            return
        flood_limit = override_settings(HYPE_RATER_FLOOD_LIMIT=MACHINE_SPEED_FLOOD_LIMIT)
        with flood_limit, server_in_thread() as base_url:
            for study, n in todo:
                self._simulate(study, raters=n, base_url=base_url, seed=seed)

    def _simulate(self, study: Study, *, raters: int, base_url: str, seed: int) -> None:
        self.stdout.write(
            f"Simulated raters take {study.name!r} over the real protocol ({raters} raters)..."
        )
        try:
            plan = plan_make(
                study,
                base_url=base_url,
                raters=raters,
                thresholds_ms=DEMO_THRESHOLDS_MS,
                inf_errors=DEMO_INF_ERRORS,
                think_ms=0,
                pace=None,
                seed=seed,
                run_id="demo",
            )
            report = simulation_run(
                plan=plan, report=self.stdout.write if self.verbosity >= 2 else lambda _: None
            )
        except SimulationError as error:
            raise CommandError(str(error)) from None
        if report.failures:
            raise CommandError(
                f"{len(report.failures)} simulated raters failed: "
                + "; ".join(r.error for r in report.failures[:3])
            )
        answers = sum(r.answers for r in report.raters)
        self.stdout.write(f"  {answers} answers in {report.seconds:.1f} s")
