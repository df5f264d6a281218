"""Small builders of study data for tests: real rows in the real database, no mocks."""

import hashlib
import io
import itertools

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from experiments.models import Answer, Block, GenerativeModel, Image, RaterSession, Study, Trial

_counter = itertools.count()


def png_bytes(*, size: int = 8, shade: int | None = None) -> bytes:
    """A tiny PNG whose content differs on every call (so content hashes differ)."""
    n = next(_counter)
    value = shade if shade is not None else n % 256
    picture = PILImage.new("RGB", (size, size), (value, (n * 7) % 256, (n // 256) % 256))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def user_make(username: str | None = None, **fields):
    username = username or f"user{next(_counter)}"
    return get_user_model().objects.create_user(
        username=username, password="pw-for-tests-1", **fields
    )


def study_make(*, owner=None, models: tuple[str, ...] = ("model-a",), **fields) -> Study:
    study = Study.objects.create(
        owner=owner or user_make(), name=fields.pop("name", "A study"), **fields
    )
    for name in models:
        GenerativeModel.objects.create(study=study, name=name)
    return study


def image_make(
    study: Study,
    *,
    model: GenerativeModel | None = None,
    role: str = Image.Role.TASK,
    data: bytes | None = None,
    name: str = "upload.png",
    size: tuple[int, int] = (8, 8),
    original_name: str = "source.png",
) -> Image:
    """An image of the study stored as `data` (a tiny PNG of its own by default): real unless
    a model made it, or a mask."""
    data = png_bytes() if data is None else data
    image = Image(
        study=study,
        model=model,
        is_real=model is None and role != Image.Role.MASK,
        role=role,
        sha256=hashlib.sha256(data).hexdigest(),
        width=size[0],
        height=size[1],
        original_name=original_name,
    )
    image.file.save(name, ContentFile(data), save=False)
    image.save()
    return image


def session_make(study: Study, *, external_id: str | None = None, **fields) -> RaterSession:
    return RaterSession.objects.create(
        study=study,
        model=fields.pop("model", study.models.first()),
        external_id=external_id or f"worker-{next(_counter)}",
        **fields,
    )


def block_make(session: RaterSession, *, index: int = 0, kind: str = Block.Kind.TASK) -> Block:
    return Block.objects.create(session=session, index=index, kind=kind, trial_count=10)


def trial_make(block: Block, *, image: Image, index: int, position: int | None = None) -> Trial:
    return Trial.objects.create(
        session=block.session,
        block=block,
        index=index,
        position=index if position is None else position,
        image=image,
        is_real=image.is_real,
        requested_ms=500,
    )


def answered_session_make(
    study, model, blocks, *, status=RaterSession.Status.COMPLETED, kind=Block.Kind.TASK
):
    """A rater whose blocks are lists of (requested_ms or None, is_real, correct)."""
    session = session_make(study, model=model, status=status)
    index = 0
    for number, trials in enumerate(blocks):
        block = block_make(session, index=number, kind=kind)
        for position, (requested_ms, is_real, correct) in enumerate(trials):
            image = image_make(study, model=None if is_real else model)
            trial = trial_make(block, image=image, index=index, position=position)
            trial.requested_ms = requested_ms
            trial.save()
            response = "real" if is_real == correct else "fake"
            Answer.objects.create(trial=trial, response=response, correct=correct, rt_ms=500)
            index += 1
    return session
