"""Task and qualification images are now stored as they are served: an uncompressed PNG whose
length depends only on the image's size (experiments.services.imports.normalise,
`png_canonical`). This rewrites the stored files of existing studies into that form, in place
and under the same names. The pixels, and so `Image.sha256`, do not change; no row changes.
Masks keep their compressed files (they are not labelled).

Files are not transactional: each file is replaced atomically on a file system (written next to
it, then renamed over it), and a run that stops half way can be run again (files already in the
canonical form are left alone). Going back leaves the files as they are: the canonical form is a
valid PNG that every reader decodes to the same pixels.
"""

import os
import sys
from pathlib import Path

from django.core.files.base import ContentFile
from django.db import migrations

LABELLED_ROLES = ("task", "qualification")


def _replace(storage, name: str, data: bytes) -> None:
    try:
        path = Path(storage.path(name))
    except NotImplementedError:  # a storage without local paths
        path = None
    if path is not None:
        temporary = path.with_name(f".{path.name}.canonical")
        temporary.write_bytes(data)
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
        return
    storage.delete(name)
    saved = storage.save(name, ContentFile(data))
    if saved != name:
        raise RuntimeError(f"{name} was stored again as {saved}")


def images_store_canonical(apps, schema_editor):
    from experiments.services.imports.normalise import (
        Unusable,
        png_canonical_from_file,
        png_canonical_size,
    )

    Image = apps.get_model("experiments", "Image")
    storage = Image._meta.get_field("file").storage
    left = []
    images = Image.objects.filter(role__in=LABELLED_ROLES).order_by("id").only("id", "file")
    for image in images.iterator(chunk_size=500):
        name = image.file.name
        try:
            with storage.open(name, "rb") as handle:
                data = handle.read()
        except OSError as error:
            left.append(f"{name}: {error}")
            continue
        if png_canonical_size(data) is not None:
            continue
        try:
            canonical = png_canonical_from_file(data)
        except Unusable as unusable:
            left.append(f"{name}: {unusable.reason}")
            continue
        _replace(storage, name, canonical)
    if left:
        # The leak audit (manage.py audit_study) reports these files too; the server refuses
        # to serve a file it cannot decode.
        sys.stderr.write(
            f"\n  {len(left)} image files could not be read and were left as they are:\n"
            + "".join(f"    {line}\n" for line in left[:20])
        )


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0006_rater_life"),
    ]

    operations = [
        migrations.RunPython(images_store_canonical, migrations.RunPython.noop, elidable=True),
    ]
