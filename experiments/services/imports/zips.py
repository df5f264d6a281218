"""Unpacking uploaded zips of images safely (no path escapes, no zip bombs), and naming a
generative model after its zip. Used by experiments.services.studies.study_create_from_zips."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import IO

# A zip is refused before anything is written if it claims more than this, and unpacking
# stops if the members turn out larger than they claim (a zip bomb).
MAX_UNPACKED_BYTES = 4 * 1024**3
MAX_MEMBERS = 200_000
_CHUNK = 1 << 20


class ZipRejected(Exception):
    """An upload that is not a zip, or not one we unpack."""


def zip_model_name(file_name: str) -> str:
    """The model a zip holds, named after the zip: stylegan.zip holds model stylegan."""
    return re.sub(r"\.zip$", "", Path(file_name).name, flags=re.IGNORECASE)


def zip_model_names_repeated(file_names: Iterable[str]) -> list[str]:
    """The model names that more than one of these zips would give, sorted."""
    names = [zip_model_name(name) for name in file_names]
    return sorted({name for name in names if names.count(name) > 1})


def zip_unpack(
    upload: IO[bytes] | str | Path,
    destination: Path,
    *,
    label: str,
    keep: set[str] | frozenset[str] = frozenset(),
) -> Path:
    """Unpack `upload` into `destination`, refusing paths that climb out of it and stopping at
    MAX_UNPACKED_BYTES. Hidden files and macOS's __MACOSX folder are left out. Returns the
    folder that holds the images: the zip's single top folder if it has one (unless that
    folder's name is in `keep`), otherwise `destination`. Raises ZipRejected, naming `label`."""
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError):
        raise ZipRejected(f"{label}: not a zip file") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_MEMBERS:
            raise ZipRejected(f"{label}: {len(members):,} files, more than {MAX_MEMBERS:,}")
        claimed = sum(m.file_size for m in members)
        if claimed > MAX_UNPACKED_BYTES:
            raise ZipRejected(
                f"{label}: {claimed:,} bytes once unpacked, more than {MAX_UNPACKED_BYTES:,}"
            )
        written = 0
        destination.mkdir(parents=True, exist_ok=True)
        for member in members:
            name = member.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                raise ZipRejected(f"{label}: unsafe path {member.filename!r} in the zip")
            if not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
                continue
            target = destination.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as source, target.open("wb") as out:
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        if written > MAX_UNPACKED_BYTES:
                            raise ZipRejected(f"{label}: larger once unpacked than it claims")
                        out.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise ZipRejected(f"{label}: cannot unpack {member.filename!r}: {error}") from None
    entries = list(destination.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in keep:
        return entries[0]
    return destination
