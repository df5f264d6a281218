"""Every task and qualification image of a study is stored, and reaches the rater's browser, as
an uncompressed PNG whose length and layout depend only on the study's image size, however
differently the pictures would compress, and decodes to the same picture. Masks stay
compressed. A file stored some other way is converted when served, never padded."""

import hashlib
import io
import os
import struct
import zlib

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.core.files.base import ContentFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from PIL import Image as PILImage

from experiments.models import Image, Study
from experiments.rating.images import image_served_bytes
from experiments.services.imports import normalise
from experiments.services.imports.normalise import (
    PNG_CANONICAL_OVERHEAD,
    png_canonical,
    png_canonical_length,
    png_canonical_size,
)
from experiments.services.imports.study import study_create
from tests.factories import study_make, user_make
from tests.pictures import fake_folder, plain_real_folder, save
from tests.raters import RaterSocket, answer_for, is_real_of, join

pytestmark = [pytest.mark.django_db(transaction=True)]


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def flat(i: int, size: int = 32) -> bytes:
    return png(np.full((size, size, 3), i % 256))


def noisy(i: int, size: int = 32) -> bytes:
    return png(np.random.default_rng(i).integers(0, 256, (size, size, 3)))


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB"))


def chunks(data: bytes) -> list[tuple[bytes, int]]:
    """The (type, length) of every chunk of a PNG, in order."""
    found, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        found.append((data[at + 4 : at + 8], length))
        at += 12 + length
    return found


def stored(study: Study, data: bytes, *, size: int = 32, name: str = "x.png", **fields) -> Image:
    """`data` stored as it is, as an image of the study: what an import does not do."""
    image = Image(
        study=study, sha256=hashlib.sha256(data).hexdigest(), width=size, height=size, **fields
    )
    image.file.save(name, ContentFile(data), save=False)
    image.save()
    return image


def leaky_study_make() -> Study:
    """Flat (small) real files and noisy (large) fakes, stored compressed as they came: their
    stored sizes tell them apart."""
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


# --- The canonical form ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (32, 32), (64, 48), (256, 256), (300, 200), (7, 5000)])
def test_the_canonical_png_decodes_to_its_pixels_at_a_length_set_by_its_size(size):
    width, height = size
    picture = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    data = png_canonical(picture.tobytes(), width=width, height=height)
    decoded = PILImage.open(io.BytesIO(data))
    decoded.load()
    assert decoded.mode == "RGB" and decoded.size == size and decoded.info == {}
    assert (np.asarray(decoded) == picture).all()
    # Width x height x 3, a filter byte per row, 5 bytes per stored block of 65,535, 63 more.
    rows = height * (1 + 3 * width)
    assert len(data) == png_canonical_length(width=width, height=height)
    assert len(data) == 3 * width * height + height + 5 * -(-rows // 65_535) + 63
    assert PNG_CANONICAL_OVERHEAD == 63
    # IHDR, one IDAT, IEND: no ancillary chunk; an uncompressed (stored) zlib stream.
    assert chunks(data) == [(b"IHDR", 13), (b"IDAT", len(data) - 57), (b"IEND", 0)]
    assert data[41:43] == b"\x78\x01" and data[43] & 0b110 == 0  # BTYPE 00: stored
    assert png_canonical_size(data) == size


def test_two_pictures_of_one_size_differ_only_in_their_pixels_and_checksums():
    width, height = 200, 120  # 72,120 bytes of rows: two stored blocks
    smooth = np.tile(np.arange(width, dtype=np.uint8)[None, :, None], (height, 1, 3))
    noise = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    a = png_canonical(smooth.tobytes(), width=width, height=height)
    b = png_canonical(noise.tobytes(), width=width, height=height)
    assert len(a) == len(b)
    differ = np.flatnonzero(np.frombuffer(a, np.uint8) != np.frombuffer(b, np.uint8))
    # Where a byte may differ: a pixel (not a filter byte, not a block header) or a checksum.
    rows = height * (1 + 3 * width)
    pixel_at = set()
    for offset in range(rows):
        if offset % (1 + 3 * width):  # not a filter byte
            pixel_at.add(43 + offset + 5 * (offset // 65_535 + 1))
    idat_end = 8 + 25 + 8 + (len(a) - 57)
    checksums = set(range(idat_end - 4, idat_end + 4))  # Adler-32, then IDAT's CRC
    assert set(differ.tolist()) <= pixel_at | checksums
    assert set(differ.tolist()) & pixel_at and set(differ.tolist()) & checksums


def test_only_the_canonical_form_is_taken_for_it():
    picture = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    data = png_canonical(picture.tobytes(), width=16, height=16)
    assert png_canonical_size(data) == (16, 16)
    assert png_canonical_size(png(picture)) is None  # Pillow's, compressed
    assert png_canonical_size(data[:-1]) is None
    assert png_canonical_size(b"GIF89a" + data[6:]) is None
    broken = bytearray(data)
    broken[100] ^= 1  # a pixel changed without its checksums
    assert png_canonical_size(bytes(broken)) is None
    # A valid PNG of the same length whose first row uses the Sub filter: its filter byte
    # would tell a reader something the canonical form never does.
    rows = bytearray(b"".join(b"\x00" + row.tobytes() for row in picture))
    rows[0] = 1
    filtered = normalise._canonical_from_rows(bytes(rows), 16, 16)
    assert len(filtered) == len(data) and PILImage.open(io.BytesIO(filtered)).size == (16, 16)
    assert png_canonical_size(filtered) is None


def test_pixels_of_the_wrong_length_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="10 bytes are not the RGB pixels of a 2x2 image"):
        png_canonical(bytes(10), width=2, height=2)


# --- Stored at import -------------------------------------------------------------------------


def test_an_import_stores_task_and_qualification_images_in_the_served_form_and_masks_compressed(
    tmp_path,
):
    qualification = tmp_path / "qualification"
    fake_folder(qualification, "m", count=2, seed=300)
    # Reals from JPEGs (smooth) and fakes that are pure noise: compressed, they would differ.
    model = tmp_path / "m"
    for i in range(6):
        noise = np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        save(PILImage.fromarray(noise, "RGB"), model / f"seed{i}.png")
    report = study_create(
        owner=user_make(),
        name="Canonical",
        method="time",
        real_dir=plain_real_folder(tmp_path, count=8),
        model_dirs={"m": model},
        qualification_fakes_dir=qualification,
        params={"qualification_trials": 2, "time_blocks": 1, "time_trials_per_block": 4},
        masks=4,
        rng=np.random.default_rng(0),
    )
    images = Image.objects.filter(study=report.study)
    labelled = list(images.exclude(role=Image.Role.MASK))
    assert {image.role for image in labelled} == {"task", "qualification"}
    for image in labelled:
        data = image.file.open("rb").read()
        assert png_canonical_size(data) == (32, 32)
        # sha256 is of the raw pixels, as before.
        assert image.sha256 == hashlib.sha256(pixels(data).tobytes()).hexdigest()
        # Served as stored, byte for byte.
        assert image_served_bytes(image) == data
    assert {image.file.size for image in labelled} == {png_canonical_length(width=32, height=32)}
    masks = list(images.filter(role=Image.Role.MASK))
    assert len(masks) == 4
    for mask in masks:
        data = mask.file.open("rb").read()
        assert png_canonical_size(data) is None and len(data) < 3172
        assert image_served_bytes(mask) == data


# --- Served ---------------------------------------------------------------------------------


def test_files_stored_some_other_way_are_served_converted_at_one_length_but_masks_as_stored():
    study = leaky_study_make()
    images = list(study.images.all())
    sizes = {image.file.size for image in images}
    assert len(sizes) > 2  # the stored files do differ
    served = [image_served_bytes(image) for image in images]
    assert {len(data) for data in served} == {png_canonical_length(width=32, height=32)}
    for image, data in zip(images, served, strict=True):
        assert png_canonical_size(data) == (32, 32)
        assert b"hyPe" not in data  # never padded
        assert (pixels(data) == pixels(image.file.open("rb").read())).all()
    mask = stored(study, noisy(99), is_real=False, role=Image.Role.MASK)
    assert image_served_bytes(mask) == mask.file.open("rb").read()


def test_a_stored_file_of_another_size_is_served_at_the_studys_image_size():
    study = study_make(display_width=32, display_height=32)
    odd = stored(study, noisy(5, size=48), size=48, is_real=True)
    served = image_served_bytes(odd)
    assert png_canonical_size(served) == (32, 32)
    assert len(served) == png_canonical_length(width=32, height=32)


def test_a_jpeg_stored_some_other_way_is_served_as_a_png():
    study = leaky_study_make()
    buffer = io.BytesIO()
    PILImage.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(buffer, format="JPEG")
    jpeg = stored(study, buffer.getvalue(), name="x.jpg", is_real=True)
    assert png_canonical_size(image_served_bytes(jpeg)) == (32, 32)


async def test_a_rater_gets_one_length_and_the_same_headers_for_real_and_fake_images():
    study = await sync_to_async(leaky_study_make)()
    client = await sync_to_async(join)(study)
    socket = RaterSocket(study, client)
    await socket.open()
    await socket.hello()
    lengths = {True: set(), False: set()}
    headers = {True: set(), False: set()}
    message = await socket.until("trial", "finished")
    while message["type"] == "trial":
        response = await sync_to_async(client.get)(message["image_url"])
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert int(response["Content-Length"]) == len(response.content)
        assert "ETag" not in response and "Last-Modified" not in response
        is_real = await is_real_of(message["trial"])
        lengths[is_real].add(len(response.content))
        headers[is_real].add(tuple(sorted(response.headers.items())))
        await socket.send({"type": "presented", "trial": message["trial"]})
        await socket.send(answer_for(message, says_real=True))
        message = await socket.until("trial", "finished")
    assert lengths[True] == lengths[False] == {png_canonical_length(width=32, height=32)}
    # Content-Length included: every header of every image response is the same.
    assert headers[True] == headers[False] and len(headers[True]) == 1


async def test_an_unreadable_stored_file_gets_no_such_image_and_no_traceback():
    study = await sync_to_async(leaky_study_make)()

    @sync_to_async
    def spoil_every_file():
        for image in Image.objects.filter(study=study):
            with image.file.storage.open(image.file.name, "wb") as handle:
                handle.write(b"not an image at all")

    client = await sync_to_async(join)(study)
    await spoil_every_file()
    socket = RaterSocket(study, client)
    await socket.open()
    await socket.hello()
    trial = await socket.until("trial")
    response = await sync_to_async(client.get)(trial["image_url"])
    assert response.status_code == 404


# --- The data migration ---------------------------------------------------------------------


def test_the_migration_rewrites_existing_task_and_qualification_files_and_leaves_masks():
    study = study_make()
    model = study.models.get()
    real = stored(study, flat(1), is_real=True)
    fake = stored(study, noisy(2), is_real=False, model=model, role=Image.Role.QUALIFICATION)
    mask = stored(study, noisy(3), is_real=False, role=Image.Role.MASK)
    already = stored(
        study,
        png_canonical(np.full((32, 32, 3), 7, np.uint8).tobytes(), width=32, height=32),
        is_real=True,
    )
    broken = stored(study, b"\x89PNG\r\n\x1a\n garbage", is_real=True)
    before = {image.pk: image.file.open("rb").read() for image in (real, fake, mask, already)}
    names = {image.pk: image.file.name for image in (real, fake, mask, already, broken)}

    executor = MigrationExecutor(connection)
    leaf = executor.loader.graph.leaf_nodes("experiments")
    executor.migrate([("experiments", "0006_rater_life")])
    executor = MigrationExecutor(connection)
    executor.migrate(leaf)

    for image in (real, fake):
        image.refresh_from_db()
        data = image.file.open("rb").read()
        assert image.file.name == names[image.pk]  # the same name, rewritten in place
        assert png_canonical_size(data) == (32, 32)
        assert (pixels(data) == pixels(before[image.pk])).all()
        assert image.sha256 == hashlib.sha256(before[image.pk]).hexdigest()  # row unchanged
    assert mask.file.open("rb").read() == before[mask.pk]
    assert already.file.open("rb").read() == before[already.pk]
    assert broken.file.open("rb").read() == b"\x89PNG\r\n\x1a\n garbage"  # left, reported
    folder = real.file.storage.path(f"studies/{study.public_id}")
    assert sorted(os.listdir(folder)) == sorted(
        name.rsplit("/", 1)[1] for name in names.values()
    )  # no temporary file left behind


def test_no_image_is_served_padded_and_a_preview_is_canonical():
    study = leaky_study_make()
    response = Client().get(f"/s/{study.public_id}/example")
    assert response.status_code == 200
    assert png_canonical_size(response.content) == (32, 32)
    assert zlib.decompress(response.content[41 : len(response.content) - 12 - 4])


@pytest.mark.browser
@pytest.mark.parametrize("size", [(37, 23), (300, 300)])
def test_chromium_decodes_the_canonical_png_to_its_exact_pixels(size):
    import base64

    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import launch_chromium

    width, height = size  # 300 x 300: rows over five stored blocks
    picture = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    data = png_canonical(picture.tobytes(), width=width, height=height)
    source = "data:image/png;base64," + base64.b64encode(data).decode()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.set_content(f'<img id="i" src="{source}">')
            decoded = page.evaluate(
                """async () => {
                    const image = document.getElementById("i");
                    await image.decode();
                    const canvas = document.createElement("canvas");
                    canvas.width = image.naturalWidth;
                    canvas.height = image.naturalHeight;
                    const context = canvas.getContext("2d");
                    context.drawImage(image, 0, 0);
                    const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
                    return [canvas.width, canvas.height, Array.from(rgba)];
                }"""
            )
        finally:
            browser.close()
    assert decoded[:2] == [width, height]
    rgba = np.array(decoded[2], dtype=np.uint8).reshape(height, width, 4)
    assert (rgba[:, :, :3] == picture).all() and (rgba[:, :, 3] == 255).all()
