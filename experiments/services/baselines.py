"""Automated baselines of a study: Inception features of its images (computed once per image
and network, then cached), and FID, KID and precision/recall of every model's fakes against
the study's real images or a reference `.npz`. The numbers come from hype.science.metrics; the
network from hype.features (an optional extra: torch)."""

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
from hype.science.metrics import (
    DegenerateInput,
    frechet_distance,
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
    (task and qualification), plus FID against `reference` statistics when given. Stores
    (replacing) one Baseline per model and reference."""
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
    rng = np.random.default_rng(study.bootstrap_seed)
    weights: WeightsSource = network.weights
    results = []
    try:
        with transaction.atomic():
            for model in models:
                fake = np.vstack([by_id[i.id] for i in fakes[model.id]])
                fake_stats = statistics_from_features(fake)
                kid = kernel_inception_distance(
                    real, fake, subsets=kid_subsets, subset_size=kid_subset_size, rng=rng
                )
                pr = precision_recall(real, fake, k=NEIGHBOURS)
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
        + ["neighbours"]
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
    precision: float | None
    recall: float | None
    n_real: int
    n_fake: int


@dataclass(frozen=True)
class Correlation:
    """Spearman's rho of HYPE against one metric over the models that have both. `agrees`:
    the sign says the metric ranks the models as people do (negative for FID and KID,
    where lower is better)."""

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


def baselines_summary(study: Study, results) -> BaselinesSummary:
    """The study's stored baselines next to its HYPE scores (a StudyResults), with the rank
    correlation of HYPE against each metric across models (from 3 models: with 2, rho is
    +1 or -1 by construction)."""
    from hype.science.comparisons import spearman

    stored = list(Baseline.objects.filter(study=study).select_related("model"))
    hype = {m.name: (m.score.estimate if m.score else None) for m in results.models}
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
    )
