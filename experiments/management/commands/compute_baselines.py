"""`manage.py compute_baselines STUDY`: FID, KID and precision/recall of every model of a study
against its real images (and optionally a reference `.npz`), and the Inception Score where the
weights carry the classifier, with a progress bar. Features are computed once per image and
cached, so a second run is fast."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from experiments.management.studies import ProgressBar, study_argument_add, study_from_argument
from experiments.services.baselines import (
    IS_NEEDS_CLASSIFIER,
    KID_SUBSET_SIZE,
    KID_SUBSETS,
    BaselinesFailed,
    baselines_compute,
    network_load,
    real_images_inception_score,
)
from hype.features import FeaturesUnavailable


class Command(BaseCommand):
    help = (
        "Compute FID, KID and precision/recall of every generative model of a study against "
        "the study's real images (Inception pool3 features, TF1 preprocessing), and against "
        "reference statistics (--reference stats.npz) when given; and the Inception Score "
        "when the weights carry the classifier."
    )

    def add_arguments(self, parser):
        study_argument_add(parser)
        parser.add_argument(
            "--reference", type=Path, help="A .npz of reference statistics (keys mu, sigma)."
        )
        parser.add_argument("--device", help="torch device (default: cuda if present, else cpu)")
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument("--kid-subsets", type=int, default=KID_SUBSETS)
        parser.add_argument("--kid-subset-size", type=int, default=KID_SUBSET_SIZE)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, study: str, **options):
        found = study_from_argument(study)
        reference = options["reference"]
        if reference is not None and not reference.is_file():
            raise CommandError(f"--reference {reference}: no such file.")
        try:
            network = network_load(device=options["device"], batch_size=options["batch_size"])
        except FeaturesUnavailable as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Network: Inception-v3 pool3, {network.weights.describe()}")
        progress = ProgressBar("Features", disable=options["no_progress"])

        try:
            baselines = baselines_compute(
                found,
                network=network,
                reference=reference,
                kid_subsets=options["kid_subsets"],
                kid_subset_size=options["kid_subset_size"],
                progress=progress,
            )
        except BaselinesFailed as error:
            raise CommandError(f"No baselines computed: {error}") from None
        finally:
            progress.close()
        self.stdout.write(
            f"{'model':<24} {'reference':<28} {'FID':>9} {'KID x1e3':>14} "
            f"{'IS':>12} {'precision':>9} {'recall':>7} {'n real':>6} {'n fake':>6}"
        )
        for b in baselines:
            kid = "-" if b.kid_mean is None else f"{1e3 * b.kid_mean:.2f}"
            if b.kid_sd is not None:
                kid += f"±{1e3 * b.kid_sd:.2f}"
            score = "-" if b.inception_score is None else f"{b.inception_score:.2f}"
            if b.inception_score_sd is not None:
                score += f"±{b.inception_score_sd:.2f}"
            precision = f"{b.precision:.3f}" if b.precision is not None else "-"
            recall = f"{b.recall:.3f}" if b.recall is not None else "-"
            self.stdout.write(
                f"{b.model.name:<24} {b.reference[:28]:<28} {b.fid:9.3f} {kid:>14} "
                f"{score:>12} {precision:>9} {recall:>7} {b.n_real:>6} {b.n_fake:>6}"
            )
        if not network.has_classifier:
            self.stdout.write(f"No Inception Score: {IS_NEEDS_CLASSIFIER}; these stop at pool3.")
        elif (real := real_images_inception_score(found, network=network)) is not None:
            # From the cached features: no second pass. A reference for the models' scores
            # on this kind of picture; not stored, it belongs to no model.
            sd = "" if real.sd is None else f" ± {real.sd:.2f}"
            self.stdout.write(f"Inception Score of the real images: {real.mean:.2f}{sd}")
