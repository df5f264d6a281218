"""Every task and qualification image of a study reaches the rater's browser at one byte
length, however differently the stored files compress, and decodes to the same picture."""

import hashlib
import io
import zlib

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from experiments.models import Image, Study
from experiments.rating.images import (
    CHUNK_OVERHEAD,
    PaddingError,
    image_served_bytes,
    png_pad,
    served_length_reset,
)
from tests.factories import study_make
from tests.raters import RaterSocket, answer_for, is_real_of, join

pytestmark = [pytest.mark.django_db(transaction=True)]


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def flat(i: int) -> bytes:
    return png(np.full((32, 32, 3), i % 256))


def noisy(i: int) -> bytes:
    return png(np.random.default_rng(i).integers(0, 256, (32, 32, 3)))


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB"))


def stored(study: Study, data: bytes, **fields) -> Image:
    image = Image(
        study=study, sha256=hashlib.sha256(data).hexdigest(), width=32, height=32, **fields
    )
    image.file.save("x.png", ContentFile(data), save=False)
    image.save()
    return image


def leaky_study_make() -> Study:
    """Flat (small) real files and noisy (large) fakes: their stored sizes tell them apart."""
    study = study_make(
        status=Study.Status.LIVE,
        method=Study.Method.INF,
        qualification_trials=0,
        inf_trials=20,
        models=("noisy-gan",),
    )
    model = study.models.get()
    for i in range(30):
        stored(study, flat(i), is_real=True)
        stored(study, noisy(i), is_real=False, model=model)
    return study


def test_padding_brings_a_png_to_the_exact_length_and_keeps_its_pixels():
    data = noisy(1)
    padded = png_pad(data, length=len(data) + 500)
    assert len(padded) == len(data) + 500
    assert (pixels(padded) == pixels(data)).all()
    PILImage.open(io.BytesIO(padded)).verify()  # every chunk's CRC checks out
    assert padded.endswith(data[-12:])  # IEND stays last
    chunk_at = padded.index(b"hyPe")
    body = padded[chunk_at : chunk_at + 4 + 500 - CHUNK_OVERHEAD]
    crc = int.from_bytes(padded[chunk_at + len(body) : chunk_at + len(body) + 4], "big")
    assert crc == zlib.crc32(body)
    assert set(body[4:]) == {0}  # zeros: the padding carries no information


def test_padding_refuses_what_it_cannot_do():
    data = flat(1)
    with pytest.raises(PaddingError, match="cannot be padded"):
        png_pad(data, length=len(data) + CHUNK_OVERHEAD - 1)
    with pytest.raises(PaddingError, match="not a PNG"):
        png_pad(b"GIF89a" + data[6:], length=len(data) + 100)


def test_every_image_of_a_study_is_served_at_one_length_but_masks_are_left_alone():
    study = leaky_study_make()
    images = list(study.images.all())
    sizes = {image.file.size for image in images}
    assert len(sizes) > 2  # the stored files do differ
    served = [image_served_bytes(image) for image in images]
    assert {len(data) for data in served} == {max(sizes) + CHUNK_OVERHEAD}
    for image, data in zip(images, served, strict=True):
        assert (pixels(data) == pixels(image.file.open("rb").read())).all()
    mask = stored(study, noisy(99), is_real=False, role=Image.Role.MASK)
    assert image_served_bytes(mask) == mask.file.open("rb").read()


def test_a_larger_image_added_later_makes_the_length_measured_again():
    study = leaky_study_make()
    first = image_served_bytes(study.images.first())
    big = stored(
        study,
        png(np.random.default_rng(7).integers(0, 256, (64, 64, 3))),
        is_real=False,
        model=study.models.get(),
    )
    served = image_served_bytes(Image.objects.get(pk=big.pk))
    assert len(served) > len(first)
    study.refresh_from_db()
    assert study.served_image_bytes == len(served)
    assert len(image_served_bytes(study.images.first())) == len(served)
    served_length_reset(study)
    study.refresh_from_db()
    assert study.served_image_bytes is None


async def test_a_rater_sees_one_content_length_for_real_and_fake_images():
    study = await sync_to_async(leaky_study_make)()
    client = await sync_to_async(join)(study)
    socket = RaterSocket(study, client)
    await socket.open()
    await socket.hello()
    lengths = {True: set(), False: set()}
    message = await socket.until("trial", "finished")
    while message["type"] == "trial":
        response = await sync_to_async(client.get)(message["image_url"])
        assert response.status_code == 200
        assert int(response["Content-Length"]) == len(response.content)
        is_real = await is_real_of(message["trial"])
        lengths[is_real].add(len(response.content))
        await socket.send({"type": "presented", "trial": message["trial"]})
        await socket.send(answer_for(message, says_real=True))
        message = await socket.until("trial", "finished")
    assert lengths[True] and lengths[False]
    assert lengths[True] == lengths[False] and len(lengths[True]) == 1
