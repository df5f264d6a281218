"""Create a study from folders of images: normalise every image so that nothing but the picture
differs between real and fake, store each under a random name, and make the backward masks.
An import either completes or leaves nothing behind: no rows, no files.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image as PILImage
from PIL import ImageCms, UnidentifiedImageError

from experiments.models import GenerativeModel, Image, Study
from experiments.services.raters import task_blocks
from hype.science.masks import phase_scramble_full

# Decided by content, never by extension: a PNG named .jpg is a PNG, a text file named .jpg
# is skipped. Other decoders Pillow has (PSD, EPS, ICO...) are not offered the file at all.
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
# Read from the header before anything is decoded: 50 megapixels (about 8660 x 5770) is more
# than any display size needs; larger files are refused as possible decompression bombs.
MAX_PIXELS = 50_000_000
MAX_DISPLAY_SIDE = 4096
MAX_MASKS = 1000
# Transparent pixels are composited over a neutral grey: the same for real and fake, and
# neither black nor white, which a model's or a camera's backgrounds might favour.
GREY = (128, 128, 128)
# One encoder and one setting for every image of every study.
PNG_OPTIONS = {"format": "PNG", "compress_level": 6, "optimize": False}

# Study fields that are not protocol parameters: set by study_create's own arguments or by
# the database.
_NOT_PARAMETERS = {"id", "owner", "name", "method", "status", "public_id"}
_NOT_PARAMETERS |= {"created_at", "updated_at", "served_image_bytes"}
STUDY_PARAMETERS = tuple(
    f.name for f in Study._meta.concrete_fields if f.name not in _NOT_PARAMETERS
)
IMPORT_STATUSES = (Study.Status.DRAFT, Study.Status.LIVE)

# Pillow keys that describe how a file was encoded rather than anything about the picture or
# where it came from; they disappear with re-encoding and are not listed as metadata.
_STRUCTURAL_INFO = {
    "transparency",
    "duration",
    "loop",
    "background",
    "version",
    "interlace",
    "compression",
    "progressive",
    "progression",
    "extension",
    "disposal",
    "adobe",
    "adobe_transform",
    "mpoffset",
}
_ORIENTATION_TAG = 0x0112
_GPS_IFD = 0x8825
_TRANSPOSE = {
    2: PILImage.Transpose.FLIP_LEFT_RIGHT,
    3: PILImage.Transpose.ROTATE_180,
    4: PILImage.Transpose.FLIP_TOP_BOTTOM,
    5: PILImage.Transpose.TRANSPOSE,
    6: PILImage.Transpose.ROTATE_270,
    7: PILImage.Transpose.TRANSVERSE,
    8: PILImage.Transpose.ROTATE_90,
}
_SRGB = ImageCms.createProfile("sRGB")

Progress = Callable[[int, int], None]


class ImportFailed(Exception):
    """The import could not make a usable study; `problems` says what, file by file."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class ImportReport:
    """What an import stored, what it skipped and why, and anything the researcher should know."""

    study: Study
    real: int
    fakes: dict[str, int]
    qualification: dict[str, int]
    masks: int
    skipped: list[tuple[str, str]]
    display_size: tuple[int, int]
    display_reason: str = ""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        study = self.study
        width, height = self.display_size
        lines = [
            f'Study "{study.name}" ({study.get_method_display()}, {study.status}), '
            f"public id {study.public_id}",
            f"Display size: {width}x{height}"
            + (f" ({self.display_reason})" if self.display_reason else ""),
            f"Real images: {self.real} for the task" + _reserved(self.qualification.get("real", 0)),
        ]
        for name, count in self.fakes.items():
            lines.append(
                f"Model {name}: {count} fakes for the task"
                + _reserved(self.qualification.get(name, 0))
            )
        if study.method == Study.Method.TIME:
            lines.append(f"Masks: {self.masks} (phase-scrambled from the study's own images)")
        else:
            lines.append("Masks: none (HYPE_inf trials are untimed and show no mask)")
        lines += self.notes
        if self.skipped:
            lines.append(f"Skipped ({len(self.skipped)}):")
            lines += [f"  {path}: {reason}" for path, reason in self.skipped]
        else:
            lines.append("Skipped: nothing")
        return "\n".join(lines)


def _reserved(count: int) -> str:
    return f", {count} reserved for the qualification" if count else ""


class _Skip(Exception):
    """A file that cannot be used; the import goes on without it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Source:
    path: Path
    original_name: str
    group: str  # "real" or a model's name
    role: str
    size: tuple[int, int] = (0, 0)  # after EXIF orientation


@dataclass(frozen=True)
class _Normalised:
    png: bytes
    sha256: str
    changes: dict[str, Any]


@dataclass(frozen=True)
class _Needs:
    """Images one rater needs: the qualification's reals and each model's share of its fakes,
    and the task's reals and fakes (the task fakes all come from the rater's one model)."""

    qualification_real: int
    qualification_fake_share: int
    task_real: int
    task_fake: int


# --- Reading one file ----------------------------------------------------------------------


def _open(path: Path) -> PILImage.Image:
    try:
        if path.stat().st_size == 0:
            raise _Skip("empty file (0 bytes)")
    except OSError as error:
        raise _Skip(f"unreadable: {error.strerror or error}") from None
    with warnings.catch_warnings():
        # Pillow warns above its own pixel limit and refuses above twice that; both are skips.
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            picture = PILImage.open(path, formats=ACCEPTED_FORMATS)
        except (PILImage.DecompressionBombWarning, PILImage.DecompressionBombError) as error:
            raise _Skip(
                f"too large to decode safely (a possible decompression bomb): {error}"
            ) from None
        except UnidentifiedImageError:
            raise _Skip(
                "not an image: its content is not PNG, JPEG, WebP, BMP, GIF or TIFF"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise _Skip(f"unreadable: {error}") from None
    width, height = picture.size
    if width * height > MAX_PIXELS:
        picture.close()
        raise _Skip(
            f"too large to decode safely: {width}x{height} = {width * height:,} pixels, over "
            f"the limit of {MAX_PIXELS:,} (a possible decompression bomb)"
        )
    if width < 1 or height < 1:
        picture.close()
        raise _Skip(f"not an image: its size is {width}x{height}")
    return picture


def _orientation(picture: PILImage.Image) -> int:
    try:
        value = picture.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block only means "no orientation".
        return 1
    return value if value in _TRANSPOSE else 1


def _probe(path: Path) -> tuple[int, int]:
    """The size the picture will have once its EXIF orientation is applied (header only)."""
    with _open(path) as picture:
        width, height = picture.size
        if _orientation(picture) in (5, 6, 7, 8):
            width, height = height, width
        return width, height


def _metadata_labels(picture: PILImage.Image) -> list[str]:
    text_keys = set(getattr(picture, "text", None) or {}) if picture.format == "PNG" else set()
    labels = set()
    for key in picture.info:
        if key in _STRUCTURAL_INFO:
            continue
        if key.startswith("jfif"):
            labels.add("jfif")
        elif key in text_keys:
            labels.add(f"text:{key}")
        else:
            labels.add(key)
    try:
        exif = picture.getexif()
        if exif:
            labels.add("exif")
            if exif.get_ifd(_GPS_IFD):
                labels.add("gps")
    except Exception:  # noqa: BLE001 - an unreadable EXIF block is dropped all the same.
        labels.add("exif")
    return sorted(labels)


def _to_8bit_gray(picture: PILImage.Image) -> tuple[PILImage.Image, str]:
    """16-bit, 32-bit integer and float greyscale to 8 bits, by scaling, never by clipping."""
    values = np.asarray(picture).astype(np.float64)
    mode = picture.mode
    if mode.startswith("I;16"):
        scaled, how = values / 257.0, "16-bit values scaled to 8 bits"
    else:
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        if low >= 0 and high <= 255 and mode == "I":
            scaled, how = values, "8-bit values in a 32-bit image"
        elif low >= 0 and high <= 1 and mode == "F":
            scaled, how = values * 255.0, "values 0-1 scaled to 0-255"
        elif low >= 0 and high <= 65535:
            scaled, how = values / 257.0, "16-bit values scaled to 8 bits"
        elif high > low:
            scaled = (values - low) / (high - low) * 255.0
            how = f"values {low:g}..{high:g} stretched to 0-255"
        else:
            scaled, how = np.zeros_like(values), f"constant value {low:g} set to 0"
    pixels = np.clip(np.rint(np.nan_to_num(scaled)), 0, 255).astype(np.uint8)
    return PILImage.fromarray(pixels, "L"), how


def _to_rgb(picture: PILImage.Image, changes: dict[str, Any]) -> PILImage.Image:
    """Any mode to 8-bit RGB; transparency composited over grey, colour profiles to sRGB."""
    mode = picture.mode
    working = picture
    if mode in ("I", "F") or mode.startswith("I;16"):
        working, how = _to_8bit_gray(picture)
        changes["bit_depth"] = how
    elif mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            changes["transparency"] = f"composited over grey {GREY}"
        background = PILImage.new("RGBA", rgba.size, (*GREY, 255))
        background.alpha_composite(rgba)
        working = background.convert("RGB")
    elif mode == "1":
        working = picture.convert("L")
    elif mode == "P":
        working = picture.convert("RGB")
    elif mode not in ("RGB", "L", "CMYK"):
        try:
            working = picture.convert("RGB")
        except ValueError:
            raise _Skip(f"unsupported colour mode {mode}") from None

    profile = picture.info.get("icc_profile")
    if profile and working.mode in ("RGB", "L", "CMYK"):
        # Dropping a profile without converting would shift the colours of, say, an Adobe RGB
        # photo but not of an untagged fake: convert to sRGB first, then drop it.
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            description = ImageCms.getProfileDescription(source).strip() or "embedded profile"
            working = ImageCms.profileToProfile(working, source, _SRGB, outputMode="RGB")
            changes["colour_profile"] = f"{description} -> sRGB"
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as error:
            changes["colour_profile"] = f"unusable ICC profile ignored ({error})"
    if working.mode != "RGB":
        working = working.convert("RGB")
    if mode != "RGB":
        changes["mode"] = f"{mode}->RGB"
    return working


def _crop_box(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int]:
    """The centred box of `size` with the target's aspect ratio."""
    width, height = size
    target_width, target_height = target
    if width * target_height > height * target_width:  # too wide
        kept = max(1, round(height * target_width / target_height))
        left = (width - kept) // 2
        return left, 0, left + kept, height
    kept = max(1, round(width * target_height / target_width))
    top = (height - kept) // 2
    return 0, top, width, top + kept


def _normalise(path: Path, target: tuple[int, int]) -> _Normalised:
    """Decode, orient, convert, crop, resize and re-encode one file; or _Skip with a reason."""
    changes: dict[str, Any] = {}
    with _open(path) as picture:
        try:
            picture.load()
        except PILImage.DecompressionBombError as error:
            raise _Skip(
                f"too large to decode safely (a possible decompression bomb): {error}"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise _Skip(f"unreadable (truncated or corrupt): {error}") from None
        source_format = picture.format
        frames = getattr(picture, "n_frames", 1)
        metadata = _metadata_labels(picture)
        orientation = _orientation(picture)
        try:
            rgb = _to_rgb(picture, changes)
        except (OSError, ValueError) as error:
            raise _Skip(f"unreadable: {error}") from None

    if orientation != 1:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
        changes["orientation"] = orientation
    box = _crop_box(rgb.size, target)
    cropped_size = (box[2] - box[0], box[3] - box[1])
    if cropped_size != rgb.size:
        changes["cropped"] = list(box)
    if cropped_size != target:
        # Lanczos: the sharpest of Pillow's filters without visible ringing on photographs.
        rgb = rgb.resize(target, PILImage.Resampling.LANCZOS, box=box)
        changes["resized"] = {"from": list(cropped_size), "to": list(target)}
        if cropped_size[0] < target[0] or cropped_size[1] < target[1]:
            changes["enlarged"] = True
    elif cropped_size != rgb.size:
        rgb = rgb.crop(box)

    # A new image from the raw pixels carries nothing of the source file: Pillow would
    # otherwise write an ICC profile left in .info back into the PNG.
    clean = PILImage.frombytes("RGB", rgb.size, rgb.tobytes())
    raw = clean.tobytes()
    buffer = io.BytesIO()
    clean.save(buffer, **PNG_OPTIONS)
    if source_format != "PNG":
        changes["format"] = f"{source_format}->PNG"
    if frames > 1:
        changes["frames_dropped"] = frames - 1
    if metadata:
        changes["metadata_removed"] = metadata
    return _Normalised(
        png=buffer.getvalue(), sha256=hashlib.sha256(raw).hexdigest(), changes=changes
    )


def _png_pixels(image: Image) -> np.ndarray:
    with image.file.open("rb") as handle, PILImage.open(handle) as picture:
        return np.asarray(picture.convert("RGB"))


# --- Checking the arguments ----------------------------------------------------------------


def _study_build(
    *,
    owner: AbstractBaseUser | None,
    name: str,
    method: str,
    status: str,
    params: Mapping[str, Any],
    display_size: tuple[int, int] | None,
    masks: int,
    problems: list[str],
) -> Study:
    """An unsaved Study with the given parameters; every invalid value goes to `problems`."""
    unknown = sorted(set(params) - set(STUDY_PARAMETERS))
    if unknown:
        problems.append(
            f"unknown study parameter(s): {', '.join(unknown)} "
            f"(known: {', '.join(STUDY_PARAMETERS)})"
        )
    known = {key: value for key, value in params.items() if key in STUDY_PARAMETERS}
    if status not in IMPORT_STATUSES:
        problems.append(f"status: {status!r} is not one of {', '.join(IMPORT_STATUSES)}")
    if owner is None or getattr(owner, "pk", None) is None:
        problems.append("owner: an existing user must own the study")
    study = Study(name=str(name).strip(), method=method, status=status, **known)
    if owner is not None and getattr(owner, "pk", None) is not None:
        study.owner = owner
    invalid: set[str] = set()
    try:
        # The staircase bounds are checked below with a clearer message than the constraint's.
        exclude = ["owner"] if status in IMPORT_STATUSES else ["owner", "status"]
        study.full_clean(exclude=exclude, validate_constraints=False)
    except ValidationError as error:
        for field_name, messages in error.message_dict.items():
            problems.append(f"{field_name}: {' '.join(messages)}")
            invalid.add(field_name)
    # Further checks only on fields that passed, so that every message is about one mistake.
    staircase = {"staircase_floor_ms", "staircase_start_ms", "staircase_ceiling_ms"}
    if not staircase & invalid and not (
        study.staircase_floor_ms <= study.staircase_start_ms <= study.staircase_ceiling_ms
    ):
        problems.append(
            "staircase: it must start inside its bounds (floor <= start <= ceiling), got "
            f"{study.staircase_floor_ms} <= {study.staircase_start_ms} <= "
            f"{study.staircase_ceiling_ms}"
        )
    if {"display_width", "display_height"} & invalid:
        given: tuple = (None, None)
    else:
        given = (study.display_width, study.display_height)
    if (given[0] is None) != (given[1] is None):
        problems.append("display_width and display_height: give both or neither")
    elif display_size is not None and given[0] is not None and tuple(display_size) != given:
        problems.append(
            f"display size: {display_size[0]}x{display_size[1]} and display_width/height "
            f"{given[0]}x{given[1]} disagree"
        )
    size = tuple(display_size) if display_size is not None else given
    if size[0] is not None:
        if len(size) != 2 or not all(
            isinstance(side, int) and 1 <= side <= MAX_DISPLAY_SIDE for side in size
        ):
            problems.append(
                f"display size: {size!r} must be two whole numbers from 1 to {MAX_DISPLAY_SIDE}"
            )
        else:
            study.display_width, study.display_height = size
    if isinstance(masks, bool) or not isinstance(masks, int) or not 0 <= masks <= MAX_MASKS:
        problems.append(f"masks: {masks!r} must be a whole number from 0 to {MAX_MASKS}")
    elif {"method", "mask_count"} & invalid:
        pass
    elif study.method == Study.Method.TIME and study.mask_count and masks < study.mask_count:
        problems.append(
            f"masks: {masks} generated, but every HYPE_time trial shows mask_count="
            f"{study.mask_count} of them; generate at least that many (or set mask_count)"
        )
    return study


def _needs(study: Study, models: int) -> _Needs:
    # The same rounding as the blocks in experiments.services.raters._block_create.
    qualification_real = round(study.qualification_trials * study.real_fraction)
    qualification_fake = study.qualification_trials - qualification_real
    blocks, per_block = task_blocks(study)
    real_per_block = round(per_block * study.real_fraction)
    return _Needs(
        qualification_real=qualification_real,
        # The fakes are split evenly, the remainder to models at random: a model may owe one more.
        qualification_fake_share=math.ceil(qualification_fake / models) if models else 0,
        task_real=blocks * real_per_block,
        task_fake=blocks * (per_block - real_per_block),
    )


def _folder_list(
    folder: Path, *, group: str, role: str, prefix: str, skipped: list[tuple[str, str]]
) -> list[_Source]:
    """The files at the top level of `folder`; subfolders and hidden files are reported."""
    sources = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            skipped.append((str(entry), "hidden file or folder, ignored"))
        elif entry.is_dir():
            nested = sum(1 for p in entry.rglob("*") if p.is_file())
            skipped.append(
                (
                    str(entry),
                    f"a subfolder ({nested} files) ignored: only the top level of a folder is read",
                )
            )
        elif entry.is_file():
            sources.append(
                _Source(
                    path=entry,
                    original_name=f"{prefix}{entry.name}"[:500],
                    group=group,
                    role=role,
                )
            )
        else:
            skipped.append((str(entry), "not a regular file"))
    return sources


def _folders_check(
    *,
    real_dir: Path,
    model_dirs: Mapping[str, Path],
    qualification_fakes_dir: Path | None,
    study: Study,
    problems: list[str],
) -> None:
    if not Path(real_dir).is_dir():
        problems.append(f"{real_dir}: the real images folder does not exist")
    if not model_dirs:
        problems.append("models: give at least one model folder")
    for name, folder in model_dirs.items():
        if not name or not name.strip() or len(name) > 200:
            problems.append(f"model name {name!r}: must be 1 to 200 characters")
        if not Path(folder).is_dir():
            problems.append(f"{folder}: the folder of model {name} does not exist")
    if qualification_fakes_dir is None:
        return
    if not study.qualification_trials:
        problems.append(
            f"{qualification_fakes_dir}: qualification fakes were given, but the study has no "
            "qualification (qualification_trials is 0)"
        )
    if not Path(qualification_fakes_dir).is_dir():
        problems.append(f"{qualification_fakes_dir}: the qualification fakes folder does not exist")
        return
    subfolders = {
        p.name for p in Path(qualification_fakes_dir).iterdir() if p.is_dir() and p.name[0] != "."
    }
    for extra in sorted(subfolders - set(model_dirs)):
        problems.append(
            f"{Path(qualification_fakes_dir) / extra}: no model is named {extra!r} "
            f"(models: {', '.join(model_dirs)}); name each subfolder after a model"
        )
    for missing in [m for m in model_dirs if m not in subfolders]:
        problems.append(
            f"{qualification_fakes_dir}: no subfolder for model {missing!r}; the qualification "
            "needs fakes from every model"
        )


def _counts_check(
    counts: Counter,
    *,
    study: Study,
    folders: Mapping[str, str],
    model_names: list[str],
    separate_qualification: bool,
    listed: Counter,
    skipped: Counter,
    problems: list[str],
) -> None:
    """Enough usable images in every folder for one rater, or a problem for each folder."""
    needs = _needs(study, len(model_names))

    def check(key: tuple[str, str], need: int, what: str) -> None:
        have = counts[key]
        if not listed[key]:
            problems.append(f"{folders[key]}: the folder is empty (no file at its top level)")
        elif have == 0 or have < need:
            dropped = f" ({skipped[key]} skipped)" if skipped[key] else ""
            detail = f"one rater needs {need}: {what}" if need else "no usable image"
            problems.append(f"{folders[key]}: {have} usable images{dropped}, but {detail}")

    real_need = needs.qualification_real + needs.task_real
    check(
        ("real", Image.Role.TASK),
        real_need,
        f"{needs.qualification_real} for the qualification + {needs.task_real} for the task",
    )
    for name in model_names:
        if separate_qualification:
            check((name, Image.Role.TASK), needs.task_fake, f"{needs.task_fake} for the task")
            check(
                (name, Image.Role.QUALIFICATION),
                needs.qualification_fake_share,
                f"its share of the qualification's fakes, {needs.qualification_fake_share}",
            )
        else:
            need = needs.task_fake + needs.qualification_fake_share
            check(
                (name, Image.Role.TASK),
                need,
                f"{needs.task_fake} for the task + its share of the qualification's fakes, "
                f"{needs.qualification_fake_share}",
            )


def _display_size_pick(sources: list[_Source]) -> tuple[tuple[int, int], str]:
    """The most common size of the fakes; on a tie the smaller, so fewer images are enlarged."""
    sizes = Counter(s.size for s in sources if s.group != "real")
    (width, height), count = min(sizes.items(), key=lambda kv: (-kv[1], kv[0][0] * kv[0][1]))
    total = sum(sizes.values())
    return (width, height), f"the most common size of the fakes: {count} of {total}"


# --- The import ----------------------------------------------------------------------------


def study_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    method: str,
    real_dir: Path,
    model_dirs: Mapping[str, Path],
    qualification_fakes_dir: Path | None = None,
    params: Mapping[str, Any] | None = None,
    display_size: tuple[int, int] | None = None,
    masks: int = 20,
    status: str = "draft",
    progress: Progress | None = None,
    rng: np.random.Generator | None = None,
) -> ImportReport:
    """Create a study with its models, normalised images and (HYPE_time) masks.

    Raises ImportFailed, listing every problem, when the arguments are invalid or a folder
    lacks the images one rater needs; nothing is then left behind, neither rows nor files.
    """
    rng = rng if rng is not None else np.random.default_rng()
    problems: list[str] = []
    study = _study_build(
        owner=owner,
        name=name,
        method=method,
        status=status,
        params=dict(params or {}),
        display_size=display_size,
        masks=masks,
        problems=problems,
    )
    model_dirs = {str(k): Path(v) for k, v in model_dirs.items()}
    real_dir = Path(real_dir)
    qual_dir = Path(qualification_fakes_dir) if qualification_fakes_dir is not None else None
    _folders_check(
        real_dir=real_dir,
        model_dirs=model_dirs,
        qualification_fakes_dir=qual_dir,
        study=study,
        problems=problems,
    )
    if problems:
        raise ImportFailed(problems)

    skipped: list[tuple[str, str]] = []
    folders: dict[tuple[str, str], str] = {("real", Image.Role.TASK): str(real_dir)}
    sources = _folder_list(real_dir, group="real", role=Image.Role.TASK, prefix="", skipped=skipped)
    for model_name, folder in model_dirs.items():
        folders[(model_name, Image.Role.TASK)] = str(folder)
        sources += _folder_list(
            folder, group=model_name, role=Image.Role.TASK, prefix="", skipped=skipped
        )
    if qual_dir is not None:
        for entry in sorted(qual_dir.iterdir()):
            if entry.is_file() and not entry.name.startswith("."):
                skipped.append((str(entry), "not in a model's subfolder, ignored"))
        for model_name in model_dirs:
            folder = qual_dir / model_name
            folders[(model_name, Image.Role.QUALIFICATION)] = str(folder)
            sources += _folder_list(
                folder,
                group=model_name,
                role=Image.Role.QUALIFICATION,
                prefix=f"{model_name}/",
                skipped=skipped,
            )

    # First pass, headers only: what can be read, and the sizes (for the display size).
    usable: list[_Source] = []
    skip_counts: Counter = Counter()
    for source in sources:
        try:
            source.size = _probe(source.path)
        except _Skip as skip:
            skipped.append((str(source.path), skip.reason))
            skip_counts[(source.group, source.role)] += 1
        else:
            usable.append(source)
    check_args = {
        "study": study,
        "folders": folders,
        "model_names": list(model_dirs),
        "separate_qualification": qual_dir is not None,
        "listed": Counter((s.group, s.role) for s in sources),
        "skipped": skip_counts,
        "problems": problems,
    }
    _counts_check(Counter((s.group, s.role) for s in usable), **check_args)
    if problems:
        raise ImportFailed(problems)

    notes: list[str] = []
    if study.display_width is not None:
        target, why = (study.display_width, study.display_height), "as given"
    else:
        target, why = _display_size_pick(usable)
        study.display_width, study.display_height = target

    n_masks = masks if study.method == Study.Method.TIME else 0
    total = len(usable) + n_masks
    stored_files: list[str] = []
    storage = Image._meta.get_field("file").storage
    try:
        with transaction.atomic():
            report = _store(
                study=study,
                usable=usable,
                target=target,
                n_masks=n_masks,
                total=total,
                separate_qualification=qual_dir is not None,
                check_args=check_args,
                skipped=skipped,
                skip_counts=skip_counts,
                display_reason=why,
                notes=notes,
                stored_files=stored_files,
                progress=progress,
                rng=rng,
            )
    except BaseException:
        _files_delete(storage, stored_files, study)
        raise
    return report


def _store(
    *,
    study: Study,
    usable: list[_Source],
    target: tuple[int, int],
    n_masks: int,
    total: int,
    separate_qualification: bool,
    check_args: dict[str, Any],
    skipped: list[tuple[str, str]],
    skip_counts: Counter,
    display_reason: str,
    notes: list[str],
    stored_files: list[str],
    progress: Progress | None,
    rng: np.random.Generator,
) -> ImportReport:
    """The second pass, inside the import's transaction: normalise and store every image."""
    study.save()
    models = {
        group: GenerativeModel.objects.create(study=study, name=group)
        for group in check_args["model_names"]
    }
    first_of: dict[str, str] = {}
    stored: list[Image] = []
    tallies: dict[str, Counter] = {}
    done = 0
    for source in usable:
        try:
            normalised = _normalise(source.path, target)
        except _Skip as skip:
            skipped.append((str(source.path), skip.reason))
            skip_counts[(source.group, source.role)] += 1
            normalised = None
        if normalised is not None and normalised.sha256 in first_of:
            skipped.append(
                (
                    str(source.path),
                    f"duplicate of {first_of[normalised.sha256]} (the same pixels once "
                    "normalised); kept once",
                )
            )
            skip_counts[(source.group, source.role)] += 1
        elif normalised is not None:
            first_of[normalised.sha256] = str(source.path)
            image = Image(
                study=study,
                model=models.get(source.group),
                is_real=source.group == "real",
                role=source.role,
                sha256=normalised.sha256,
                width=target[0],
                height=target[1],
                original_name=source.original_name,
                changes=normalised.changes,
            )
            # The name passed here only gives the extension: image_upload_to names the file
            # after the image's random public id.
            image.file.save("image.png", ContentFile(normalised.png), save=False)
            stored_files.append(image.file.name)
            image.save()
            stored.append(image)
            tally = tallies.setdefault(source.group, Counter())
            tally["images"] += 1
            tally.update(normalised.changes.keys())
        done += 1
        if progress:
            progress(done, total)

    problems: list[str] = []
    names = {model.id: name for name, model in models.items()}
    counts = Counter(
        ("real" if image.is_real else names[image.model_id], image.role) for image in stored
    )
    _counts_check(counts, **{**check_args, "skipped": skip_counts, "problems": problems})
    if problems:
        raise ImportFailed(problems)

    qualification: dict[str, int] = {}
    if separate_qualification:
        # As many real images as one qualification block shows, chosen at random, so that no
        # qualification image ever appears in the task.
        needs = _needs(study, len(models))
        reals = [image.id for image in stored if image.is_real]
        chosen = rng.choice(len(reals), size=needs.qualification_real, replace=False)
        reserved = [reals[i] for i in sorted(chosen)]
        Image.objects.filter(id__in=reserved).update(role=Image.Role.QUALIFICATION)
        qualification["real"] = len(reserved)
        for name in models:
            qualification[name] = counts[(name, Image.Role.QUALIFICATION)]
    else:
        reserved = []

    made = _masks_make(
        study=study,
        stored=stored,
        count=n_masks,
        taken=set(first_of),
        stored_files=stored_files,
        progress=progress,
        done=done,
        total=total,
        rng=rng,
        notes=notes,
    )
    notes += _tally_notes(tallies, target)
    real_task = sum(1 for image in stored if image.is_real) - len(reserved)
    return ImportReport(
        study=study,
        real=real_task,
        fakes={name: counts[(name, Image.Role.TASK)] for name in models},
        qualification=qualification,
        masks=made,
        skipped=skipped,
        display_size=target,
        display_reason=display_reason,
        notes=notes,
    )


def _masks_make(
    *,
    study: Study,
    stored: list[Image],
    count: int,
    taken: set[str],
    stored_files: list[str],
    progress: Progress | None,
    done: int,
    total: int,
    rng: np.random.Generator,
    notes: list[str],
) -> int:
    """`count` phase-scrambled masks, each from a study image chosen at random (real or fake:
    a mask follows every trial, so its source says nothing about the trial's image)."""
    if not count or not stored:
        return 0
    order = list(rng.permutation(len(stored)))
    while len(order) < 2 * count:
        order += list(rng.permutation(len(stored)))
    made, contrasts = 0, []
    for index in order:
        if made == count:
            break
        source = stored[index]
        result = phase_scramble_full(_png_pixels(source), rng)
        pixels = result.pixels
        sha = hashlib.sha256(pixels.tobytes()).hexdigest()
        if sha in taken:  # a flat source gives back itself; try another source
            continue
        taken.add(sha)
        buffer = io.BytesIO()
        PILImage.fromarray(pixels, "RGB").save(buffer, **PNG_OPTIONS)
        mask = Image(
            study=study,
            model=None,
            is_real=False,
            role=Image.Role.MASK,
            sha256=sha,
            width=pixels.shape[1],
            height=pixels.shape[0],
            changes={
                "mask": "phase-scrambled",
                "source": source.public_id,
                "contrast": round(result.contrast, 4),
            },
        )
        mask.file.save("mask.png", ContentFile(buffer.getvalue()), save=False)
        stored_files.append(mask.file.name)
        mask.save()
        contrasts.append(result.contrast)
        made += 1
        if progress:
            progress(done + made, total)
    if made < count:
        notes.append(f"Only {made} of {count} masks: the other sources gave duplicate masks.")
    if contrasts:
        notes.append(
            f"Masks keep their source's amplitude spectrum; fitting them into 0-255 lowered "
            f"their contrast to {min(contrasts):.0%}-{max(contrasts):.0%} of the source's."
        )
    return made


def _tally_notes(tallies: Mapping[str, Counter], target: tuple[int, int]) -> list[str]:
    labels = {
        "format": "re-encoded to PNG",
        "mode": "converted to RGB",
        "bit_depth": "scaled to 8 bits",
        "transparency": "composited over grey",
        "colour_profile": "converted to sRGB",
        "orientation": "rotated or flipped by EXIF orientation",
        "cropped": "cropped",
        "resized": "resized",
        "metadata_removed": "stripped of metadata",
        "frames_dropped": "cut to their first frame",
    }
    notes = []
    for group, tally in tallies.items():
        parts = [f"{tally[key]} {label}" for key, label in labels.items() if tally[key]]
        who = "real images" if group == "real" else f"images of model {group}"
        if parts:
            notes.append(f"Changed, {who} ({tally['images']} stored): {', '.join(parts)}.")
        else:
            notes.append(f"Changed, {who} ({tally['images']} stored): only re-encoded.")
        if tally["enlarged"]:
            notes.append(
                f"Warning: {tally['enlarged']} {who} were smaller than {target[0]}x{target[1]} "
                "and were enlarged; enlarged images look softer, which raters may notice."
            )
    return notes


def _files_delete(storage, names: list[str], study: Study) -> None:
    """Files are not transactional: remove every file this import wrote, then its folder."""
    for name in names:
        with contextlib.suppress(OSError):
            storage.delete(name)
    folder = f"studies/{study.public_id}"
    try:
        _, leftovers = storage.listdir(folder)
        for leftover in leftovers:
            storage.delete(f"{folder}/{leftover}")
        path = Path(storage.path(folder))
        path.rmdir()
        path.parent.rmdir()  # "studies/", if this import was the first to write there
    except (OSError, NotImplementedError):
        pass
