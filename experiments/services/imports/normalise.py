"""One image file of an import: read it safely (content decides the format, decompression
bombs are refused) and normalise it, so that nothing but the picture differs between real
and fake: oriented, converted to 8-bit sRGB, cropped and resized to the study's display size,
stripped of metadata and re-encoded as PNG with one encoder setting."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageCms, UnidentifiedImageError

# Decided by content, never by extension: a PNG named .jpg is a PNG, a text file named .jpg
# is skipped. Other decoders Pillow has (PSD, EPS, ICO...) are not offered the file at all.
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
# Read from the header before anything is decoded: 50 megapixels (about 8660 x 5770) is more
# than any display size needs; larger files are refused as possible decompression bombs.
MAX_PIXELS = 50_000_000
# Transparent pixels are composited over a neutral grey: the same for real and fake, and
# neither black nor white, which a model's or a camera's backgrounds might favour.
GREY = (128, 128, 128)
# One encoder and one setting for every image of every study.
PNG_OPTIONS = {"format": "PNG", "compress_level": 6, "optimize": False}

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


class Unusable(Exception):
    """A file that cannot be used, and why; the import goes on without it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Normalised:
    png: bytes
    sha256: str
    changes: dict[str, Any]


# --- Reading one file ----------------------------------------------------------------------


def _open(path: Path) -> PILImage.Image:
    try:
        if path.stat().st_size == 0:
            raise Unusable("empty file (0 bytes)")
    except OSError as error:
        raise Unusable(f"unreadable: {error.strerror or error}") from None
    with warnings.catch_warnings():
        # Pillow warns above its own pixel limit and refuses above twice that; both are skips.
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            picture = PILImage.open(path, formats=ACCEPTED_FORMATS)
        except (PILImage.DecompressionBombWarning, PILImage.DecompressionBombError) as error:
            raise Unusable(
                f"too large to decode safely (a possible decompression bomb): {error}"
            ) from None
        except UnidentifiedImageError:
            raise Unusable(
                "not an image: its content is not PNG, JPEG, WebP, BMP, GIF or TIFF"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise Unusable(f"unreadable: {error}") from None
    width, height = picture.size
    if width * height > MAX_PIXELS:
        picture.close()
        raise Unusable(
            f"too large to decode safely: {width}x{height} = {width * height:,} pixels, over "
            f"the limit of {MAX_PIXELS:,} (a possible decompression bomb)"
        )
    if width < 1 or height < 1:
        picture.close()
        raise Unusable(f"not an image: its size is {width}x{height}")
    return picture


def _orientation(picture: PILImage.Image) -> int:
    try:
        value = picture.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block only means "no orientation".
        return 1
    return value if value in _TRANSPOSE else 1


def image_probe(path: Path) -> tuple[int, int]:
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
            raise Unusable(f"unsupported colour mode {mode}") from None

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


def image_normalise(path: Path, target: tuple[int, int]) -> Normalised:
    """Decode, orient, convert, crop, resize and re-encode one file; or Unusable with a reason."""
    changes: dict[str, Any] = {}
    with _open(path) as picture:
        try:
            picture.load()
        except PILImage.DecompressionBombError as error:
            raise Unusable(
                f"too large to decode safely (a possible decompression bomb): {error}"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise Unusable(f"unreadable (truncated or corrupt): {error}") from None
        source_format = picture.format
        frames = getattr(picture, "n_frames", 1)
        metadata = _metadata_labels(picture)
        orientation = _orientation(picture)
        try:
            rgb = _to_rgb(picture, changes)
        except (OSError, ValueError) as error:
            raise Unusable(f"unreadable: {error}") from None

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
    return Normalised(
        png=buffer.getvalue(), sha256=hashlib.sha256(raw).hexdigest(), changes=changes
    )


# --- Checking the arguments ----------------------------------------------------------------


# --- The import ----------------------------------------------------------------------------
