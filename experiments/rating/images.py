"""The images a rater's browser may fetch, and their bytes: a trial's image once, for the rater
whose current trial it is and only until it is presented; a mask, for a rater of its study.

Every task and qualification image is stored at import as an uncompressed PNG whose length
and layout depend only on the study's image size (experiments.services.imports.normalise,
`png_canonical`), and served as stored: one byte length for the whole study, nothing to pad,
and the same work to serve any of them. A file stored some other way is converted to that
form when served. Masks, which are not labelled, are served as stored.
"""

from __future__ import annotations

import mimetypes
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from experiments.models import Image, Study, Trial
from experiments.rating.lifecycle import rater_session_key
from experiments.rating.sessions import trial_is_current
from experiments.services.imports.normalise import (
    Unusable,
    png_canonical_from_file,
    png_canonical_size,
)

LABELLED_ROLES = (Image.Role.TASK, Image.Role.QUALIFICATION)
PNG_TYPE = "image/png"


def image_served_bytes(image: Image) -> bytes:
    """The file of `image` as served to raters. Task and qualification images: the stored
    bytes when they are in the canonical form at the study's image size (as every import
    stores them), else converted to it; masks: as stored. Raises Unusable if a task or
    qualification file cannot be decoded."""
    with image.file.open("rb") as handle:
        content = handle.read()
    if image.role not in LABELLED_ROLES:
        return content
    study = image.study
    size = (
        (study.display_width, study.display_height)
        if study.display_width and study.display_height
        else None
    )
    found = png_canonical_size(content)
    if found is not None and (size is None or found == size):
        return content
    return png_canonical_from_file(content, size=size)


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
    if image.role in LABELLED_ROLES:
        content_type = PNG_TYPE  # whatever the stored file's name: it is served as a PNG
    else:
        content_type = mimetypes.guess_type(image.file.name)[0] or "application/octet-stream"
    try:
        content = image_served_bytes(image)
    except (Unusable, OSError):
        # A missing or undecodable file: the browser gets "no such image", never a traceback
        # (the leak audit names the file for the researcher).
        raise ImageRefused() from None
    return ServedImage(content=content, content_type=content_type)


def trial_image_serve(*, trial_public_id: str, browser_session: Mapping[str, Any]) -> ServedImage:
    """The current trial's image, for its rater only, until it has been presented."""
    trial = (
        Trial.objects.select_related("session__study", "image__study")
        # Only the columns this needs: a study row is wide, and building and reading every
        # column of two of them was most of the image's cost (still one statement:
        # tests/experiments/rating/test_query_budget.py).
        .only(
            "session_id",
            "image_id",
            "presented_at",
            "session__current_trial_id",
            "session__study__public_id",
            "image__file",
            "image__role",
            "image__study__display_width",
            "image__study__display_height",
        )
        .filter(public_id=trial_public_id)
        .first()
    )
    if trial is None:
        raise ImageRefused()
    if browser_session.get(rater_session_key(trial.session.study.public_id)) != trial.session_id:
        raise ImageRefused()
    if trial.presented_at is not None or not trial_is_current(trial.session, trial):
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
