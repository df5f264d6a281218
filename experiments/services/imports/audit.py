"""The leak audit of a study: can anything but the picture tell a real image from a fake?

Reopens every stored file and compares the real images with each model's fakes separately (a
model whose files stand out is found even when all fakes pooled look like the reals) on
format, dimensions, colour mode, surviving metadata, file names and file sizes; the verdict is
pass, warn or fail with reasons.
"""

from __future__ import annotations

import io
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from PIL import Image as PILImage
from scipy import stats

from experiments.models import Image, Study
from experiments.services.imports.normalise import png_canonical_size

PASS, WARN, FAIL = "pass", "warn", "fail"
_RANK = {PASS: 0, WARN: 1, FAIL: 2}

# File sizes leak when someone could tell real from fake by them noticeably better than chance
# (one chance in five better on a random real/fake pair) and the difference is not noise.
SIZE_AUC_MARGIN = 0.1
SIZE_P_VALUE = 0.01

# How a file was encoded, not what it says about its origin: not reported as metadata.
_STRUCTURAL_INFO = {
    "interlace",
    "compression",
    "progressive",
    "progression",
    "duration",
    "loop",
    "background",
    "version",
    "extension",
    "disposal",
    "adobe",
    "adobe_transform",
    "jfif",
    "jfif_version",
    "jfif_unit",
    "jfif_density",
}


@dataclass(frozen=True)
class AuditCheck:
    name: str
    verdict: str
    message: str


@dataclass(frozen=True)
class SizeComparison:
    """Stored file sizes of one model's fakes (or all fakes) against the real images. auc: the
    probability that a random fake file is larger than a random real one (ties count half;
    0.5 = no information); accuracy: how often the best single size threshold is right."""

    fakes: str  # the model's name, or "all fakes"
    auc: float
    accuracy: float
    p_value: float
    median_real: float
    median_fake: float

    @property
    def telling(self) -> bool:
        return abs(self.auc - 0.5) >= SIZE_AUC_MARGIN and self.p_value < SIZE_P_VALUE


@dataclass(frozen=True)
class AuditReport:
    """What the audit found. size_auc and size_accuracy: all fakes pooled against the reals;
    size_by_model: each model's fakes against the reals (SizeComparison)."""

    study: Study
    verdict: str
    checks: list[AuditCheck]
    real: int
    fake: int
    masks: int
    size_auc: float | None = None
    size_accuracy: float | None = None
    size_by_model: dict[str, SizeComparison] = field(default_factory=dict)

    @property
    def reasons(self) -> list[str]:
        return [f"{c.name}: {c.message}" for c in self.checks if c.verdict != PASS]

    def summary(self) -> str:
        lines = [
            f'Leak audit of study "{self.study.name}" (public id {self.study.public_id}): '
            f"{self.verdict.upper()}",
            f"{self.real + self.fake} images ({self.real} real, {self.fake} fake) and "
            f"{self.masks} masks, reopened from storage.",
        ]
        if self.reasons:
            lines.append("Reasons:")
            lines += [f"  - {reason}" for reason in self.reasons]
        lines.append("Checks:")
        lines += [f"  [{c.verdict}] {c.name}: {c.message}" for c in self.checks]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """For the study page: plain values only."""
        return {
            "verdict": self.verdict,
            "reasons": self.reasons,
            "checks": [
                {"name": c.name, "verdict": c.verdict, "message": c.message} for c in self.checks
            ],
            "real": self.real,
            "fake": self.fake,
            "masks": self.masks,
            "size_auc": self.size_auc,
            "size_accuracy": self.size_accuracy,
            "size_by_model": {
                name: {"auc": c.auc, "accuracy": c.accuracy, "p_value": c.p_value}
                for name, c in self.size_by_model.items()
            },
        }


@dataclass
class _Stored:
    image: Image
    label: str  # "real", "fake" or "mask"
    model: str = ""  # the name of the model that made a fake
    bytes: int = 0
    canonical: bool = False  # stored in the form it is served in
    format: str = ""
    size: tuple[int, int] = (0, 0)
    mode: str = ""
    metadata: list[str] = field(default_factory=list)
    error: str = ""


def _metadata_found(picture: PILImage.Image) -> list[str]:
    found = set()
    text = (getattr(picture, "text", None) or {}) if picture.format == "PNG" else {}
    for key in picture.info:
        if key in _STRUCTURAL_INFO:
            continue
        found.add(f"text:{key}" if key in text else key)
    if picture.getexif():
        found.add("exif")
    return sorted(found)


def _reopen(image: Image) -> _Stored:
    label = "mask" if image.role == Image.Role.MASK else "real" if image.is_real else "fake"
    stored = _Stored(image=image, label=label, model=image.model.name if image.model else "")
    try:
        with image.file.open("rb") as handle:
            data = handle.read()
        stored.bytes = len(data)
        stored.canonical = png_canonical_size(data) is not None
        with PILImage.open(io.BytesIO(data)) as picture:
            picture.load()
            stored.format = picture.format or "?"
            stored.size = picture.size
            stored.mode = picture.mode
            stored.metadata = _metadata_found(picture)
    except Exception as error:  # noqa: BLE001 - any failure to reopen is the finding itself.
        stored.error = f"{type(error).__name__}: {error}"
    return stored


def _tally(values: Iterable[Any]) -> str:
    return ", ".join(f"{value} ({count})" for value, count in Counter(values).most_common())


def _by_model(fake: list[_Stored]) -> dict[str, list[_Stored]]:
    groups: dict[str, list[_Stored]] = {}
    for s in fake:
        groups.setdefault(s.model, []).append(s)
    return dict(sorted(groups.items()))


def _fakes_label(model: str, models: int) -> str:
    """How a message names one model's fakes: just "fakes" when the study has one model."""
    return "fakes" if models == 1 else f"fakes of {model}"


def _same_everywhere(
    name: str, real: list[_Stored], fake: list[_Stored], attribute: str, show=str
) -> AuditCheck:
    """Real against each model's fakes: every model that differs from the reals is named."""
    real_values = [show(getattr(s, attribute)) for s in real]
    groups = _by_model(fake)
    everything = set(real_values) | {show(getattr(s, attribute)) for s in fake}
    if len(everything) == 1:
        return AuditCheck(name, PASS, f"every image is {everything.pop()}")
    parts = []
    for model, group in groups.items():
        values = [show(getattr(s, attribute)) for s in group]
        if len(set(real_values) | set(values)) == 1:
            continue
        if set(real_values).isdisjoint(values):
            detail = "this alone tells them apart"
        else:
            detail = "this can give some of them away"
        parts.append(f"{_fakes_label(model, len(groups))}: {_tally(values)}; {detail}")
    if not parts:  # the models differ from one another, each like the reals: cannot happen
        parts.append("the fakes differ among themselves")
    return AuditCheck(name, FAIL, f"real images: {_tally(real_values)}; " + "; ".join(parts))


def _size_label(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _metadata_check(real: list[_Stored], fake: list[_Stored]) -> AuditCheck:
    carrying = [s for s in real + fake if s.metadata]
    if not carrying:
        return AuditCheck("metadata", PASS, "no stored file carries metadata")
    parts = []
    groups = _by_model(fake)
    named = [("real", real)] + [
        ("fake" if len(groups) == 1 else f"fake of {model}", group)
        for model, group in groups.items()
    ]
    for label, group in named:
        tally = Counter(key for s in group for key in s.metadata)
        count = sum(1 for s in group if s.metadata)
        if count:
            parts.append(f"{count} {label} ({', '.join(f'{k} {n}' for k, n in tally.items())})")
    return AuditCheck(
        "metadata",
        FAIL,
        f"{len(carrying)} stored files still carry metadata: {'; '.join(parts)}",
    )


def _file_name_check(stored: list[_Stored]) -> AuditCheck:
    wrong = []
    extensions = Counter()
    several = len({s.model for s in stored if s.label == "fake"}) > 1
    for s in stored:
        path = PurePosixPath(s.image.file.name)
        label = f"fake of {s.model}" if several and s.label == "fake" else s.label
        extensions[(label, path.suffix.lower())] += 1
        if path.stem != s.image.public_id:
            wrong.append(path.name)
    suffixes = {suffix for _, suffix in extensions}
    if wrong:
        return AuditCheck(
            "file names",
            FAIL,
            f"{len(wrong)} stored files are not named after their random public id "
            f"(e.g. {wrong[0]!r}): a name can tell real from fake",
        )
    if len(suffixes) > 1:
        tally = ", ".join(f"{label} {suffix} ({n})" for (label, suffix), n in extensions.items())
        return AuditCheck("file names", FAIL, f"the file name extensions differ: {tally}")
    return AuditCheck(
        "file names",
        PASS,
        f"every file is named after its random public id, all {suffixes.pop() or '(none)'}",
    )


def _kilobytes(value: float) -> str:
    return f"{value / 1000:.1f} kB"


def _size_compare(fakes: str, real: list[int], fake: list[int]) -> SizeComparison:
    test = stats.mannwhitneyu(fake, real, alternative="two-sided")
    # The best single file-size threshold is right (1 + KS) / 2 of the time, with half the
    # images real: the largest gap between the two cumulative distributions.
    return SizeComparison(
        fakes=fakes,
        auc=float(test.statistic) / (len(fake) * len(real)),
        accuracy=(1 + float(stats.ks_2samp(fake, real).statistic)) / 2,
        p_value=float(test.pvalue),
        median_real=statistics.median(real),
        median_fake=statistics.median(fake),
    )


def _size_words(c: SizeComparison) -> str:
    ratio = max(c.median_fake, 1) / max(c.median_real, 1)
    if ratio >= 2:
        larger = f"fake files are {ratio:.1f} times larger"
    elif ratio <= 0.5:
        larger = f"fake files are {1 / ratio:.1f} times smaller"
    else:
        larger = "fake files are larger" if c.auc > 0.5 else "real files are larger"
    return (
        f"{larger}: median fake {_kilobytes(c.median_fake)}, real {_kilobytes(c.median_real)}, "
        f"and a random fake file is larger than a random real one with probability {c.auc:.2f} "
        "(0.5 = no information)"
    )


def _file_size_check(
    real: list[_Stored], fake: list[_Stored]
) -> tuple[AuditCheck, SizeComparison | None, dict[str, SizeComparison]]:
    """Stored sizes of the reals against each model's fakes, and against all fakes pooled.
    Sizes that tell real from fake warn: raters get every image converted to one length, but
    converting a file takes longer than reading one stored in the served form."""
    images = real + fake
    if len({s.bytes for s in images}) == 1:
        how = "stored as served, uncompressed" if all(s.canonical for s in images) else "stored"
        message = f"every image is {how}, {images[0].bytes:,} bytes: sizes say nothing"
        return AuditCheck("file sizes", PASS, message), None, {}
    if len(real) < 2 or len(fake) < 2:
        return AuditCheck("file sizes", PASS, "too few images to compare file sizes"), None, {}
    real_sizes = [s.bytes for s in real]
    groups = _by_model(fake)
    pooled = _size_compare("all fakes", real_sizes, [s.bytes for s in fake])
    by_model = {
        model: _size_compare(model, real_sizes, [s.bytes for s in group])
        for model, group in groups.items()
        if len(group) >= 2
    }
    one_model = len(groups) == 1
    # Each model on its own, then the pool (which can tell when every model has few images).
    compared = list(by_model.values()) + ([] if one_model else [pooled])

    def who(c: SizeComparison) -> str:
        if one_model:
            return "real vs fake"
        return "real vs fake (all fakes pooled)" if c is pooled else f"real vs {c.fakes}"

    telling = [c for c in compared if c.telling]
    if telling:
        verdict = WARN
        message = "Stored file sizes would let someone guess " + "; ".join(
            f"{who(c)} {c.accuracy:.0%} of the time with one size threshold (50% is chance): "
            f"{_size_words(c)}"
            for c in telling
        )
    else:
        verdict = PASS
        wide = [c for c in compared if abs(c.auc - 0.5) >= SIZE_AUC_MARGIN]
        if wide:
            c = wide[0]
            message = (
                f"No clear file-size difference, {who(c)}: {_size_words(c)}; with "
                f"{len(real_sizes)} real images this may be chance (p = {c.p_value:.2g})"
            )
        else:
            each = "" if one_model else ", for each model and all fakes pooled"
            message = (
                f"File sizes give nothing away{each} (a random fake file is larger than a "
                f"random real one with probability {pooled.auc:.2f}, where 0.5 = no information)"
            )
    stale = sum(1 for s in images if not s.canonical)
    if stale:
        message += (
            f". {stale} of {len(images)} files are not stored in the form they are served in "
            "(an uncompressed PNG of one length for the whole study, as every import stores "
            "them): raters get one length all the same, but the server converts these files "
            "each time it serves them, which takes longer than reading one"
        )
    return AuditCheck("file sizes", verdict, message + "."), pooled, by_model


def _masks_check(study: Study, masks: list[_Stored], images: list[_Stored]) -> AuditCheck:
    if study.method != Study.Method.TIME:
        return AuditCheck("masks", PASS, f"{len(masks)} masks (HYPE_inf shows none)")
    if not masks:
        return AuditCheck("masks", WARN, "no masks: HYPE_time trials will show no backward mask")
    looks = {(s.format, s.size, s.mode) for s in images}
    odd = [s for s in masks if (s.format, s.size, s.mode) not in looks]
    if odd:
        return AuditCheck(
            "masks",
            WARN,
            f"{len(odd)} of {len(masks)} masks differ from the images in format, size or mode",
        )
    return AuditCheck(
        "masks", PASS, f"{len(masks)} masks, same format, size and mode as the images"
    )


def study_audit(*, study: Study) -> AuditReport:
    """Reopen every stored file of `study` and look for anything that tells real from fake."""
    images = Image.objects.filter(study=study).select_related("model").order_by("id")
    stored = [_reopen(image) for image in images]
    broken = [s for s in stored if s.error]
    readable = [s for s in stored if not s.error]
    real = [s for s in readable if s.label == "real"]
    fake = [s for s in readable if s.label == "fake"]
    masks = [s for s in readable if s.label == "mask"]
    checks: list[AuditCheck] = []
    if broken:
        checks.append(
            AuditCheck(
                "readable",
                FAIL,
                f"{len(broken)} stored files cannot be opened, e.g. {broken[0].image.public_id}: "
                f"{broken[0].error}",
            )
        )
    pooled, by_model = None, {}
    if not real or not fake:
        checks.append(
            AuditCheck(
                "images",
                FAIL,
                f"the study has {len(real)} real and {len(fake)} fake images; it needs both",
            )
        )
    else:
        checks.append(_same_everywhere("format", real, fake, "format"))
        dimensions = _same_everywhere("dimensions", real, fake, "size", show=_size_label)
        display = (study.display_width, study.display_height)
        if dimensions.verdict == PASS and display[0] and real[0].size != display:
            dimensions = AuditCheck(
                "dimensions",
                WARN,
                f"every image is {_size_label(real[0].size)}, but the study's display size is "
                f"{_size_label(display)}",
            )
        checks.append(dimensions)
        checks.append(_same_everywhere("mode", real, fake, "mode"))
        checks.append(_metadata_check(real, fake))
        checks.append(_file_name_check(real + fake))
        size_check, pooled, by_model = _file_size_check(real, fake)
        checks.append(size_check)
        checks.append(_masks_check(study, masks, real + fake))
    verdict = max((c.verdict for c in checks), key=_RANK.__getitem__, default=PASS)
    return AuditReport(
        study=study,
        verdict=verdict,
        checks=checks,
        real=len(real),
        fake=len(fake),
        masks=len(masks),
        size_auc=pooled.auc if pooled else None,
        size_accuracy=pooled.accuracy if pooled else None,
        size_by_model=by_model,
    )
