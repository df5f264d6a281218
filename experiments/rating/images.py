"""The images a rater's browser may fetch, and their bytes: a trial's image once, for the rater
whose current trial it is and only until it is presented; a mask, for a rater of its study.
Every task and qualification image of a study is served at one byte length, so the network
tab's sizes say nothing about real or fake.

Re-encoded PNGs still differ in size (a real image that began as a JPEG compresses better than
a noisy fake), and `Content-Length` would show it. Each served PNG therefore carries a private
ancillary chunk of zeros before IEND that brings it to the study's served length: decoders skip
unknown ancillary chunks, so the picture is unchanged.
"""

from __future__ import annotations

import mimetypes
import secrets
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from experiments.models import Image, Study, Trial
from experiments.rating.lifecycle import rater_session_key
from experiments.rating.sessions import trial_current

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


# --- Which image a browser may have ---------------------------------------------------------


class ImageRefused(Exception):
    """The browser may not have this image: `gone` (HTTP 410) when it was its own trial's image
    and has been shown already or the trial is no longer current; otherwise there is no such
    image for this browser (404), and it learns nothing more."""

    def __init__(self, *, gone: bool = False):
        super().__init__("gone" if gone else "not found")
        self.gone = gone


@dataclass(frozen=True)
class ServedImage:
    content: bytes
    content_type: str


def _served(image: Image) -> ServedImage:
    content_type = mimetypes.guess_type(image.file.name)[0] or "application/octet-stream"
    return ServedImage(content=image_served_bytes(image), content_type=content_type)


def trial_image_serve(*, trial_public_id: str, browser_session: Mapping[str, Any]) -> ServedImage:
    """The current trial's image, for its rater only, until it has been presented."""
    trial = (
        Trial.objects.select_related("session__study", "image__study")
        .filter(public_id=trial_public_id)
        .first()
    )
    if trial is None:
        raise ImageRefused()
    if browser_session.get(rater_session_key(trial.session.study.public_id)) != trial.session_id:
        raise ImageRefused()
    current = trial_current(trial.session)
    if current is None or current.id != trial.id or trial.presented_at is not None:
        raise ImageRefused(gone=True)
    return _served(trial.image)


def mask_image_serve(*, mask_public_id: str, browser_session: Mapping[str, Any]) -> ServedImage:
    """A backward mask, for a browser that holds a rater session of the mask's study."""
    image = (
        Image.objects.select_related("study")
        .filter(public_id=mask_public_id, role=Image.Role.MASK)
        .first()
    )
    if image is None or browser_session.get(rater_session_key(image.study.public_id)) is None:
        raise ImageRefused()
    return _served(image)


def example_image_serve(*, study: Study) -> ServedImage:
    """One of the study's task images, for MTurk's preview, each equally likely: shown
    unlabelled, it says nothing about which images are real, and however often it is asked
    for, no image comes up more often than another."""
    images = Image.objects.select_related("study").filter(study=study, role=Image.Role.TASK)
    count = images.count()
    if not count:
        raise ImageRefused()
    return _served(images.order_by("id")[secrets.randbelow(count)])
