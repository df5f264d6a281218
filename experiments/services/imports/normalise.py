"""One image file of an import: read it safely (content decides the format, decompression
bombs are refused) and normalise it, so that nothing but the picture differs between real
and fake: oriented, converted to 8-bit sRGB, cropped and resized to the study's display size,
stripped of metadata and stored as an uncompressed PNG whose every byte but the pixels and
their checksums depends only on the width and height (`png_canonical`)."""

from __future__ import annotations

import hashlib
import io
import math
import struct
import warnings
import zlib
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
# Masks (which are not labelled) are stored compressed, with one encoder and one setting.
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


# Rows converted at a time: a strip of a 7000-pixel-wide image in float64 is 14 MB, where a
# copy of the whole image would be 400 MB (docs/importing.md, bench/import_memory.py).
STRIP_ROWS = 256


def _strips(picture: PILImage.Image):
    """The picture's values, STRIP_ROWS rows at a time, as numpy arrays (each a copy of its
    strip only)."""
    width, height = picture.size
    for top in range(0, height, STRIP_ROWS):
        yield top, np.asarray(picture.crop((0, top, width, min(height, top + STRIP_ROWS))))


def _value_range(picture: PILImage.Image) -> tuple[float, float]:
    """The lowest and highest value, NaN left out (NaN, NaN when there are only NaN)."""
    low, high = math.inf, -math.inf
    for _, values in _strips(picture):
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    return (low, high) if low <= high else (math.nan, math.nan)


def _to_8bit_gray(picture: PILImage.Image) -> tuple[PILImage.Image, str]:
    """16-bit, 32-bit integer and float greyscale to 8 bits, by scaling, never by clipping;
    strip by strip, so that memory stays near the decoded image's own size."""
    mode = picture.mode
    # scaled = (value - offset) / divisor * factor, the same arithmetic whatever the strip.
    offset, divisor, factor = 0.0, 1.0, 1.0
    if mode.startswith("I;16"):
        divisor, how = 257.0, "16-bit values scaled to 8 bits"
    else:
        low, high = _value_range(picture)
        if low >= 0 and high <= 255 and mode == "I":
            how = "8-bit values in a 32-bit image"
        elif low >= 0 and high <= 1 and mode == "F":
            factor, how = 255.0, "values 0-1 scaled to 0-255"
        elif low >= 0 and high <= 65535:
            divisor, how = 257.0, "16-bit values scaled to 8 bits"
        elif high > low:
            offset, divisor, factor = low, high - low, 255.0
            how = f"values {low:g}..{high:g} stretched to 0-255"
        else:
            factor, how = 0.0, f"constant value {low:g} set to 0"
    width, height = picture.size
    pixels = np.empty((height, width), dtype=np.uint8)
    for top, values in _strips(picture):
        scaled = (values.astype(np.float64) - offset) / divisor * factor
        pixels[top : top + len(values)] = np.clip(np.rint(np.nan_to_num(scaled)), 0, 255)
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

    # Written from the raw pixels alone, so nothing of the source file can ride along (Pillow
    # would write an ICC profile left in .info back into a PNG it saves).
    raw = rgb.tobytes()
    if source_format != "PNG":
        changes["format"] = f"{source_format}->PNG"
    if frames > 1:
        changes["frames_dropped"] = frames - 1
    if metadata:
        changes["metadata_removed"] = metadata
    return Normalised(
        png=png_canonical(raw, width=rgb.size[0], height=rgb.size[1]),
        sha256=hashlib.sha256(raw).hexdigest(),
        changes=changes,
    )


# --- The stored and served form of task and qualification images ---------------------------
#
# A compressed file's length follows its content (a real photo that began as a JPEG compresses
# better than a noisy fake), and a browser can read every byte it is served. So task and
# qualification images are stored, and served, as PNGs without compression: 8-bit RGB, one
# IDAT chunk holding a zlib stream of "stored" deflate blocks of a fixed size, no ancillary
# chunk. Every byte apart from the pixels and the checksums over them (Adler-32, CRC-32) is a
# function of width and height alone, so every image of a study has the same length and the
# same layout.

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The largest payload of a stored deflate block.
STORED_BLOCK = 65_535
# zlib header: deflate with a 32 KiB window, "fastest" level, no preset dictionary (0x7801 is
# a multiple of 31, as the zlib format requires).
_ZLIB_HEADER = b"\x78\x01"
# Signature 8, IHDR 12 + 13, IDAT 12, zlib header 2 and Adler-32 4, IEND 12.
PNG_CANONICAL_OVERHEAD = 8 + 25 + 12 + 2 + 4 + 12


def png_canonical_length(*, width: int, height: int) -> int:
    """The length in bytes of every canonical PNG of this size: the pixels (3 bytes each), one
    filter byte per row, 5 bytes per stored block and PNG_CANONICAL_OVERHEAD."""
    raw = height * (1 + 3 * width)
    return raw + 5 * -(-raw // STORED_BLOCK) + PNG_CANONICAL_OVERHEAD


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _canonical_from_rows(rows: bytes, width: int, height: int) -> bytes:
    """The PNG of `rows` (each a 0 filter byte and the row's RGB values)."""
    blocks = []
    for start in range(0, len(rows), STORED_BLOCK):
        payload = rows[start : start + STORED_BLOCK]
        final = start + STORED_BLOCK >= len(rows)
        size = len(payload)
        blocks.append(struct.pack("<BHH", 1 if final else 0, size, size ^ 0xFFFF) + payload)
    stream = _ZLIB_HEADER + b"".join(blocks) + struct.pack(">I", zlib.adler32(rows))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


def png_canonical(pixels: bytes, *, width: int, height: int) -> bytes:
    """The canonical PNG of `pixels`: 8-bit RGB values, row after row (Pillow's tobytes() of an
    RGB image)."""
    if width < 1 or height < 1 or len(pixels) != 3 * width * height:
        raise ValueError(f"{len(pixels)} bytes are not the RGB pixels of a {width}x{height} image")
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)
    rows[:, 1:] = np.frombuffer(pixels, dtype=np.uint8).reshape(height, 3 * width)
    return _canonical_from_rows(rows.tobytes(), width, height)


def png_canonical_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) if `data` is a canonical PNG, byte for byte; otherwise None. Takes the
    same time for any two files of one size, whatever their pixels."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    if not (0 < width <= MAX_PIXELS and 0 < height <= MAX_PIXELS and width * height <= MAX_PIXELS):
        return None
    if len(data) != png_canonical_length(width=width, height=height):
        return None
    rows_length = height * (1 + 3 * width)
    start = 8 + 25 + 8 + 2  # the first stored block's header, after the zlib header
    parts = []
    for offset in range(0, rows_length, STORED_BLOCK):
        size = min(STORED_BLOCK, rows_length - offset)
        at = start + offset + 5 * (offset // STORED_BLOCK) + 5
        parts.append(data[at : at + size])
    rows = b"".join(parts)
    if len(rows) != rows_length or any(rows[:: 1 + 3 * width]):  # every filter byte 0
        return None
    if _canonical_from_rows(rows, width, height) != data:
        return None
    return width, height


def png_canonical_from_file(data: bytes, *, size: tuple[int, int] | None = None) -> bytes:
    """Any stored image file (a PNG written some other way, say) in the canonical form, at
    `size` if given (centre-cropped and resized as at import), else at its own size. Raises
    Unusable if the file cannot be decoded."""
    try:
        with PILImage.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as picture:
            picture.load()
            rgb = picture.convert("RGB")
    except (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError) as error:
        raise Unusable(f"unreadable: {error}") from None
    except PILImage.DecompressionBombError as error:
        raise Unusable(f"too large to decode safely: {error}") from None
    if size is not None and rgb.size != tuple(size):
        rgb = rgb.resize(tuple(size), PILImage.Resampling.LANCZOS, box=_crop_box(rgb.size, size))
    return png_canonical(rgb.tobytes(), width=rgb.size[0], height=rgb.size[1])
