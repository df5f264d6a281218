"""HYPE by image subgroup (tag) and per image, over the raters a study's result counts
(experiments.services.scores): per model and tag the pooled error with its rater bootstrap and
the test of whether the tags differ; per image the share of raters it fooled (soft labels)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Count, Max, Q

from experiments.models import Answer, Block, Image, ImageTag, Study
from experiments.services.scores import (
    DB_CHUNK_ROWS,
    EXCLUSIONS_APPLIED,
    _cached,
    counted_sessions,
)
from hype.science.bootstrap import BootstrapResult, bootstrap_pooled_rate, model_stream_seed
from hype.science.subgroups import TagDifference, tag_difference_test

# A rater's answers on one tag's images: fakes, fakes judged real, reals, reals judged fake.
_N_FAKE, _WRONG_FAKE, _N_REAL, _WRONG_REAL = range(4)


def tag_seed(study: Study, model_name: str, tag: str) -> int:
    """The seed of one (model, tag)'s bootstrap stream: a stream of its own, so adding a tag
    or a model changes no other interval (hype.science.bootstrap.model_stream_seed)."""
    return model_stream_seed(study.bootstrap_seed, f"{model_name}|{tag}")


@dataclass(frozen=True)
class TagResult:
    """One model's error on the images of one tag: its fakes and the reals of the same tag
    its raters answered, pooled over raters. error: the pooled share of wrong answers with its
    bootstrap interval (raters resampled with all their answers on the tag)."""

    tag: str
    n_raters: int
    n_fake: int
    wrong_fake: int
    n_real: int
    wrong_real: int
    error: BootstrapResult

    @property
    def n_answers(self) -> int:
        return self.n_fake + self.n_real

    @property
    def fake_error(self) -> float | None:
        return self.wrong_fake / self.n_fake if self.n_fake else None

    @property
    def real_error(self) -> float | None:
        return self.wrong_real / self.n_real if self.n_real else None


@dataclass(frozen=True)
class ModelSubgroups:
    """One model's tags (those its raters answered), and whether their errors differ (None
    when no rater's answers can tell two tags apart)."""

    model_id: int
    name: str
    tags: tuple[TagResult, ...]
    test: TagDifference | None


@dataclass(frozen=True)
class SubgroupResults:
    study_id: int
    method: str
    tags: tuple[str, ...]  # every tag of the study's images, sorted
    models: tuple[ModelSubgroups, ...]


def _image_tags(study: Study) -> dict[int, tuple[str, ...]]:
    tags: dict[int, list[str]] = defaultdict(list)
    rows = ImageTag.objects.filter(image__study=study).order_by("image_id", "name")
    for image_id, name in rows.values_list("image_id", "name"):
        tags[image_id].append(name)
    return {image_id: tuple(names) for image_id, names in tags.items()}


def _tags_state(study: Study) -> str:
    """What the subgroups depend on beyond the results' fingerprint: the study's tags."""
    state = ImageTag.objects.filter(image__study=study).aggregate(n=Count("id"), last=Max("id"))
    return f"{state['n']}:{state['last']}"


def subgroup_results(study: Study) -> SubgroupResults | None:
    """HYPE per model and tag, from the task answers of the raters the study's result counts
    (exclusions applied); None when no task image of the study has a tag. For HYPE_inf and
    HYPE_time alike the number is the error rate of the answers on the tag's images (for
    HYPE_time at the exposures the staircase chose: no threshold is made per tag)."""
    found, _ = _cached(study, f"subgroups:{_tags_state(study)}", lambda: _subgroups(study))
    return found


def _subgroups(study: Study) -> SubgroupResults | None:
    tags_of = _image_tags(study)
    if not tags_of:
        return None
    # (model id, tag) -> session id -> the rater's counts on the tag's images.
    counts: dict[tuple[int, str], dict[int, list[int]]] = defaultdict(dict)
    answers = (
        Answer.objects.filter(
            trial__block__kind=Block.Kind.TASK,
            trial__session__in=counted_sessions(study, exclusions=EXCLUSIONS_APPLIED).values("id"),
            trial__image_id__in=ImageTag.objects.filter(image__study=study).values("image_id"),
        )
        .order_by()
        .values_list("trial__session_id", "trial__session__model_id", "trial__image_id")
        .annotate(
            n_fake=Count("id", filter=Q(trial__is_real=False)),
            wrong_fake=Count("id", filter=Q(trial__is_real=False, correct=False)),
            n_real=Count("id", filter=Q(trial__is_real=True)),
            wrong_real=Count("id", filter=Q(trial__is_real=True, correct=False)),
        )
    )
    for session_id, model_id, image_id, *tally in answers.iterator(chunk_size=DB_CHUNK_ROWS):
        for tag in tags_of.get(image_id, ()):
            rater = counts[(model_id, tag)].setdefault(session_id, [0, 0, 0, 0])
            for i, value in enumerate(tally):
                rater[i] += value
    all_tags = tuple(sorted({tag for names in tags_of.values() for tag in names}))
    models = [
        _model_subgroups(study, model.id, model.name, all_tags, counts)
        for model in study.models.order_by("name")
    ]
    return SubgroupResults(
        study_id=study.id, method=study.method, tags=all_tags, models=tuple(models)
    )


def _model_subgroups(
    study: Study,
    model_id: int,
    name: str,
    all_tags: tuple[str, ...],
    counts: dict[tuple[int, str], dict[int, list[int]]],
) -> ModelSubgroups:
    results = []
    for tag in all_tags:
        raters = counts.get((model_id, tag))
        if not raters:
            continue
        # Session order: the bootstrap's draws depend on the order of its input.
        rows = [raters[s] for s in sorted(raters)]
        error = bootstrap_pooled_rate(
            [r[_WRONG_FAKE] + r[_WRONG_REAL] for r in rows],
            [r[_N_FAKE] + r[_N_REAL] for r in rows],
            resamples=study.bootstrap_resamples,
            confidence=study.confidence,
            seed=tag_seed(study, name, tag),
            method=study.interval_method,
        )
        results.append(
            TagResult(
                tag=tag,
                n_raters=len(rows),
                n_fake=sum(r[_N_FAKE] for r in rows),
                wrong_fake=sum(r[_WRONG_FAKE] for r in rows),
                n_real=sum(r[_N_REAL] for r in rows),
                wrong_real=sum(r[_WRONG_REAL] for r in rows),
                error=error,
            )
        )
    return ModelSubgroups(
        model_id=model_id,
        name=name,
        tags=tuple(results),
        test=_tags_test(model_id, results, counts),
    )


def _tags_test(
    model_id: int, results: list[TagResult], counts: dict[tuple[int, str], dict[int, list[int]]]
) -> TagDifference | None:
    """The rater-stratified test over the model's tags. An image with two tags counts under
    both, as in the per-tag errors; the test then compares overlapping groups, which the
    documentation says."""
    if len(results) < 2:
        return None
    tags = [r.tag for r in results]
    sessions = sorted({s for tag in tags for s in counts[(model_id, tag)]})
    wrong, answered = [], []
    for session in sessions:
        rows = [counts[(model_id, tag)].get(session, [0, 0, 0, 0]) for tag in tags]
        wrong.append([r[_WRONG_FAKE] + r[_WRONG_REAL] for r in rows])
        answered.append([r[_N_FAKE] + r[_N_REAL] for r in rows])
    return tag_difference_test(wrong, answered)


# --- Soft labels -------------------------------------------------------------------------


@dataclass(frozen=True)
class SoftLabel:
    """One task image, and how the counted raters judged it: share_judged_real is its soft
    label (Stein et al., NeurIPS 2023); share_fooled the share of wrong answers (for a fake:
    judged real; for a real image: judged fake). None without an answer."""

    image_public_id: str
    file_name: str
    model: str | None
    is_real: bool
    tags: tuple[str, ...]
    answers: int
    judged_real: int

    @property
    def share_judged_real(self) -> float | None:
        return self.judged_real / self.answers if self.answers else None

    @property
    def share_fooled(self) -> float | None:
        if not self.answers:
            return None
        fooled = self.answers - self.judged_real if self.is_real else self.judged_real
        return fooled / self.answers


def image_soft_labels(study: Study) -> Iterator[SoftLabel]:
    """Every task image of the study (reals first, then each model's fakes, by name, each in
    import order) with its answers from the raters the study's result counts (exclusions
    applied, task blocks only, as the scores)."""
    judged: dict[int, tuple[int, int]] = {}
    rows = (
        Answer.objects.filter(
            trial__block__kind=Block.Kind.TASK,
            trial__session__in=counted_sessions(study, exclusions=EXCLUSIONS_APPLIED).values("id"),
        )
        .order_by()
        .values_list("trial__image_id")
        .annotate(n=Count("id"), real=Count("id", filter=Q(response=Answer.Choice.REAL)))
    )
    for image_id, n, real in rows:
        judged[image_id] = (n, real)
    tags_of = _image_tags(study)
    images = (
        Image.objects.filter(study=study, role=Image.Role.TASK)
        .order_by("-is_real", "model__name", "id")
        .values_list("id", "public_id", "original_name", "model__name", "is_real")
    )
    for image_id, public_id, file_name, model, is_real in images.iterator(chunk_size=DB_CHUNK_ROWS):
        n, real = judged.get(image_id, (0, 0))
        yield SoftLabel(
            image_public_id=public_id,
            file_name=file_name,
            model=model,
            is_real=is_real,
            tags=tags_of.get(image_id, ()),
            answers=n,
            judged_real=real,
        )
