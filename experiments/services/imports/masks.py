"""The backward masks of a HYPE_time study: phase-scrambled noise made from the study's own
images (hype.science.masks), so the masks share the images' amplitude spectrum."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage

from experiments.models import Image
from experiments.services.imports.normalise import PNG_OPTIONS
from hype.science.masks import phase_scramble_full


@dataclass(frozen=True)
class Mask:
    """A mask made from one study image, ready to store."""

    png: bytes
    sha256: str
    width: int
    height: int
    contrast: float


def _png_pixels(image: Image) -> np.ndarray:
    with image.file.open("rb") as handle, PILImage.open(handle) as picture:
        return np.asarray(picture.convert("RGB"))


def mask_make(source: Image, rng: np.random.Generator) -> Mask:
    """A phase-scrambled mask of the stored image `source`."""
    result = phase_scramble_full(_png_pixels(source), rng)
    pixels = result.pixels
    buffer = io.BytesIO()
    PILImage.fromarray(pixels, "RGB").save(buffer, **PNG_OPTIONS)
    return Mask(
        png=buffer.getvalue(),
        sha256=hashlib.sha256(pixels.tobytes()).hexdigest(),
        width=pixels.shape[1],
        height=pixels.shape[0],
        contrast=result.contrast,
    )


def mask_sources(count: int, stored: int, rng: np.random.Generator) -> list[int]:
    """Indices into the stored images to make masks from, in order: at least 2 * count of
    them (a flat source gives back itself, so some may be passed over), each image once per
    round, the rounds at random (real or fake alike: a mask follows every trial, so its source
    says nothing about the trial's image)."""
    order = list(rng.permutation(stored))
    while len(order) < 2 * count:
        order += list(rng.permutation(stored))
    return order


def mask_notes(*, made: int, count: int, contrasts: list[float]) -> list[str]:
    """What the researcher should know about the masks made."""
    notes = []
    if made < count:
        notes.append(f"Only {made} of {count} masks: the other sources gave duplicate masks.")
    if contrasts:
        notes.append(
            f"Masks keep their source's amplitude spectrum; fitting them into 0-255 lowered "
            f"their contrast to {min(contrasts):.0%}-{max(contrasts):.0%} of the source's."
        )
    return notes
