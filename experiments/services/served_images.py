"""The bytes of an image as a rater's browser receives them: every task and qualification
image of a study at one byte length, so the network tab's sizes say nothing about real or fake.

Re-encoded PNGs still differ in size (a real image that began as a JPEG compresses better than
a noisy fake), and `Content-Length` would show it. Each served PNG therefore carries a private
ancillary chunk of zeros before IEND that brings it to the study's served length: decoders skip
unknown ancillary chunks, so the picture is unchanged.
"""

from __future__ import annotations

import struct
import zlib

from experiments.models import Image, Study

# Lowercase first letter: ancillary (decoders may skip it); lowercase second: private; upper
# third: as the PNG specification requires; lowercase fourth: safe to copy.
PADDING_CHUNK = b"hyPe"
CHUNK_OVERHEAD = 12  # length, type and CRC
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PADDED_ROLES = (Image.Role.TASK, Image.Role.QUALIFICATION)


class PaddingError(ValueError):
    """The file cannot be brought to the requested length."""


def png_pad(content: bytes, *, length: int) -> bytes:
    """`content` (a PNG) with a padding chunk that makes it exactly `length` bytes long."""
    if not content.startswith(PNG_SIGNATURE):
        raise PaddingError("not a PNG file")
    data_length = length - len(content) - CHUNK_OVERHEAD
    if data_length < 0:
        raise PaddingError(
            f"a {len(content)}-byte PNG cannot be padded to {length} bytes "
            f"(a chunk needs {CHUNK_OVERHEAD})"
        )
    iend = content.rfind(b"IEND")
    if iend < len(PNG_SIGNATURE) + 4:
        raise PaddingError("the PNG has no IEND chunk")
    data = bytes(data_length)
    chunk = (
        struct.pack(">I", data_length)
        + PADDING_CHUNK
        + data
        + struct.pack(">I", zlib.crc32(PADDING_CHUNK + data))
    )
    start = iend - 4  # IEND's length field
    return content[:start] + chunk + content[start:]


def served_length_compute(study: Study) -> int:
    """The served length of `study`: its largest task or qualification file plus one chunk
    header, so every file, the largest included, carries the padding chunk. Stored on the
    study so that workers agree and files are measured once."""
    images = Image.objects.filter(study=study, role__in=PADDED_ROLES).only("file")
    largest = max((image.file.size for image in images.iterator()), default=0)
    length = largest + CHUNK_OVERHEAD
    Study.objects.filter(pk=study.pk).update(served_image_bytes=length)
    study.served_image_bytes = length
    return length


def image_served_bytes(image: Image) -> bytes:
    """The file of `image` as served to raters: padded for task and qualification images,
    as stored for masks (which are not labelled)."""
    with image.file.open("rb") as handle:
        content = handle.read()
    if image.role not in PADDED_ROLES or not content.startswith(PNG_SIGNATURE):
        return content
    study = image.study
    length = study.served_image_bytes
    if length is None or len(content) + CHUNK_OVERHEAD > length:
        # First image served, or an image added after the length was fixed: measure again.
        length = served_length_compute(study)
    return png_pad(content, length=length)


def served_length_reset(study: Study) -> None:
    """Forget the served length (images were added or removed); the next image served
    measures it again."""
    Study.objects.filter(pk=study.pk).update(served_image_bytes=None)
    study.served_image_bytes = None
