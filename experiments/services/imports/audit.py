"""The leak audit of a study: can anything but the picture tell a real image from a fake?

Reopens every stored file and compares real and fake on format, dimensions, colour mode,
surviving metadata, file names and file sizes; the verdict is pass, warn or fail with reasons.
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
class AuditReport:
    """What the audit found. size_auc: the probability that a random fake file is larger than
    a random real one (ties count half; 0.5 = no information)."""

    study: Study
    verdict: str
    checks: list[AuditCheck]
    real: int
    fake: int
    masks: int
    size_auc: float | None = None
    size_accuracy: float | None = None

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
        }


@dataclass
class _Stored:
    image: Image
    label: str  # "real", "fake" or "mask"
    bytes: int = 0
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
    stored = _Stored(image=image, label=label)
    try:
        with image.file.open("rb") as handle:
            data = handle.read()
        stored.bytes = len(data)
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


def _same_everywhere(
    name: str, real: list[_Stored], fake: list[_Stored], attribute: str, show=str
) -> AuditCheck:
    real_values = [show(getattr(s, attribute)) for s in real]
    fake_values = [show(getattr(s, attribute)) for s in fake]
    everything = set(real_values) | set(fake_values)
    if len(everything) == 1:
        return AuditCheck(name, PASS, f"every image is {everything.pop()}")
    if set(real_values).isdisjoint(fake_values):
        detail = "this alone tells them apart"
    else:
        detail = "this can give some of them away"
    return AuditCheck(
        name, FAIL, f"real images: {_tally(real_values)}; fakes: {_tally(fake_values)}; {detail}"
    )


def _size_label(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _metadata_check(real: list[_Stored], fake: list[_Stored]) -> AuditCheck:
    carrying = [s for s in real + fake if s.metadata]
    if not carrying:
        return AuditCheck("metadata", PASS, "no stored file carries metadata")
    parts = []
    for label, group in (("real", real), ("fake", fake)):
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
    for s in stored:
        path = PurePosixPath(s.image.file.name)
        extensions[(s.label, path.suffix.lower())] += 1
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


def _kilobytes(values: list[int]) -> str:
    return f"{statistics.median(values) / 1000:.1f} kB"


def _file_size_check(
    real: list[_Stored], fake: list[_Stored]
) -> tuple[AuditCheck, float | None, float | None]:
    real_sizes = [s.bytes for s in real]
    fake_sizes = [s.bytes for s in fake]
    if len(real_sizes) < 2 or len(fake_sizes) < 2:
        return AuditCheck("file sizes", PASS, "too few images to compare file sizes"), None, None
    test = stats.mannwhitneyu(fake_sizes, real_sizes, alternative="two-sided")
    auc = float(test.statistic) / (len(fake_sizes) * len(real_sizes))
    # The best single file-size threshold is right (1 + KS) / 2 of the time, with half the
    # images real: the largest gap between the two cumulative distributions.
    accuracy = (1 + float(stats.ks_2samp(fake_sizes, real_sizes).statistic)) / 2
    medians = f"median fake {_kilobytes(fake_sizes)}, real {_kilobytes(real_sizes)}"
    odds = (
        f"a random fake file is larger than a random real one with probability {auc:.2f}, "
        "where 0.5 = no information"
    )
    if abs(auc - 0.5) < SIZE_AUC_MARGIN:
        message = f"File sizes give nothing away ({odds}; {medians})."
        return AuditCheck("file sizes", PASS, message), auc, accuracy
    if test.pvalue >= SIZE_P_VALUE:
        message = (
            f"No clear file-size difference ({odds}; {medians}); with {len(real_sizes)} real "
            f"and {len(fake_sizes)} fake images this may be chance (p = {test.pvalue:.2g})."
        )
        return AuditCheck("file sizes", PASS, message), auc, accuracy
    larger = "fake files are larger" if auc > 0.5 else "real files are larger"
    # Raters never see these sizes: experiments.services.served_images pads every task and
    # qualification image to one length per study. Reported, since the stored files (an
    # exported image set, say) still differ.
    message = (
        f"Stored file sizes would let someone guess real vs fake {accuracy:.0%} of the time "
        f"with one size threshold (50% is chance): {larger} ({medians}; {odds}). Raters "
        "cannot use this: every image is served padded to one length, so the browser's "
        "network tab shows the same size for all."
    )
    return AuditCheck("file sizes", PASS, message), auc, accuracy


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
    stored = [_reopen(image) for image in Image.objects.filter(study=study).order_by("id")]
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
    auc = accuracy = None
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
        size_check, auc, accuracy = _file_size_check(real, fake)
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
        size_auc=auc,
        size_accuracy=accuracy,
    )
