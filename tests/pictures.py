"""Images, folders and zips for the import tests: pictures made on the spot in every format
and mode an import meets, and small studies built from crafted files."""

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage
from PIL import ImageCms, PngImagePlugin

from experiments.models import Study
from tests.factories import image_make, study_make

# Small protocol numbers, so that a handful of pictures is enough for one rater: the
# qualification shows 1 real + 1 fake, the task 2 reals + 2 fakes (per block for HYPE_time).
SMALL = {
    "qualification_trials": 2,
    "inf_trials": 4,
    "time_blocks": 1,
    "time_trials_per_block": 4,
}


def picture(size: tuple[int, int] = (32, 32), *, seed: int = 0) -> PILImage.Image:
    """A colourful RGB picture, different for every seed: a gradient and some noise."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[:height, :width]
    base = np.stack([xx * 255 / max(width - 1, 1), yy * 255 / max(height - 1, 1), 128 + 0 * xx])
    pixels = base.transpose(1, 2, 0) + rng.normal(0, 25, (height, width, 3))
    return PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def save(image: PILImage.Image, path: Path, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def jpeg_with_exif(path: Path, *, seed: int, orientation: int = 6) -> Path:
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Canon"  # camera make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 0.0)}  # GPS
    return save(picture((60, 40), seed=seed), path, format="JPEG", exif=exif.tobytes())


def png_with_text_and_icc(path: Path, *, seed: int) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "camera firmware 1.2")
    info.add_text("parameters", "a photo of a face, seed 42")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return save(
        picture((48, 48), seed=seed),
        path,
        format="PNG",
        pnginfo=info,
        icc_profile=icc,
        dpi=(300, 300),
    )


def png_16bit_gray(path: Path) -> Path:
    gradient = np.linspace(0, 65535, 40 * 40).reshape(40, 40).astype(np.uint16)
    return save(PILImage.fromarray(gradient), path, format="PNG")


def png_16bit_rgb(path: Path, *, seed: int) -> Path:
    """A 48-bit RGB PNG, written by hand: Pillow cannot write one."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 65536, (24, 24, 3), dtype=np.uint16).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 24, 24, 16, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png + chunk(b"IEND", b""))
    return path


def jpeg_cmyk(path: Path, *, seed: int) -> Path:
    return save(picture((40, 40), seed=seed).convert("CMYK"), path, format="JPEG")


def png_rgba(path: Path, *, seed: int) -> Path:
    rgba = picture((32, 32), seed=seed).convert("RGBA")
    alpha = np.full((32, 32), 255, dtype=np.uint8)
    alpha[:, :16] = 0  # the left half fully transparent
    rgba.putalpha(PILImage.fromarray(alpha, "L"))
    return save(rgba, path, format="PNG")


def gif_palette(path: Path, *, seed: int) -> Path:
    palette = picture((30, 30), seed=seed).quantize(colors=16)
    return save(palette, path, format="GIF", transparency=0)


def mixed_real_folder(root: Path) -> Path:
    """Real images as a researcher might have them: every format, mode, size and metadata."""
    folder = root / "real"
    jpeg_with_exif(folder / "ffhq_00042.jpg", seed=1)
    png_with_text_and_icc(folder / "ffhq_00043.png", seed=2)
    save(picture((36, 30), seed=3), folder / "ffhq_00044.webp", format="WEBP", quality=90)
    png_16bit_gray(folder / "ffhq_00045.png")
    png_16bit_rgb(folder / "ffhq_00046.png", seed=4)
    jpeg_cmyk(folder / "ffhq_00047.jpg", seed=5)
    png_rgba(folder / "ffhq_00048.png", seed=6)
    gif_palette(folder / "ffhq_00049.gif", seed=7)
    save(picture((80, 50), seed=8), folder / "ffhq_00050.tif", format="TIFF")
    save(picture((32, 32), seed=9), folder / "ffhq_00051.bmp", format="BMP")
    return folder


def fake_folder(root: Path, name: str, *, count: int = 4, size=(32, 32), fmt="PNG", seed=100):
    folder = root / name
    extension = {"PNG": "png", "JPEG": "jpg"}[fmt]
    for i in range(count):
        save(picture(size, seed=seed + i), folder / f"seed{i:04d}.{extension}", format=fmt)
    return folder


def plain_real_folder(root: Path, *, count: int = 4, size=(32, 32), seed=0) -> Path:
    folder = root / "real"
    for i in range(count):
        save(picture(size, seed=seed + i), folder / f"real_{i:05d}.jpg", format="JPEG")
    return folder


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def encoded(image: PILImage.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def flat(seed: int, size=(32, 32)) -> PILImage.Image:
    """A flat colour: compresses to a tiny PNG."""
    return PILImage.new("RGB", size, (seed * 9 % 256, 100, 50))


def noisy(seed: int, size=(32, 32)) -> PILImage.Image:
    """Pure noise: barely compresses."""
    rng = np.random.default_rng(seed)
    return PILImage.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8), "RGB")


def stored(study: Study, data: bytes, *, model=None, name: str = "upload.png", role="task"):
    """`data` stored as it is, as a 32x32 image of the study."""
    return image_make(
        study, model=model, role=role, data=data, name=name, size=(32, 32), original_name=""
    )


def crafted(*, real, fake, method="inf", real_name="upload.png", fake_name="upload.png"):
    """A study with the given encoded real and fake files, stored as they are."""
    study = study_make(method=method)
    model = study.models.get()
    for data in real:
        stored(study, data, name=real_name)
    for data in fake:
        stored(study, data, model=model, name=fake_name)
    return study


def zipped(files: dict[str, bytes], name: str) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def pictures(count: int, *, seed: int, fmt: str = "PNG", folder: str = "") -> dict[str, bytes]:
    files = {}
    for i in range(count):
        buffer = io.BytesIO()
        picture(seed=seed + i).save(buffer, format=fmt)
        files[f"{folder}img{i:03d}.{fmt.lower()}"] = buffer.getvalue()
    return files
