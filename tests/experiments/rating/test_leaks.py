"""Before answering, nothing the browser receives tells a real image from a fake one or
names the model: not the messages, not the URLs, not the image responses' headers, bytes or
timing. A classifier trained on all of it stays at chance on a study whose files would differ
in compressed size, and finds the label at once in the old padded serving."""

import io
import json
import statistics
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from PIL import Image as PILImage

from experiments.models import GenerativeModel, Image, Study, Trial
from experiments.services.imports.normalise import PNG_OPTIONS
from experiments.services.imports.study import study_create
from hype.science.observers import SimulatedObserver
from tests.factories import user_make
from tests.pictures import picture, save
from tests.raters import RaterSocket, answer_for, is_real_of, join, live_study_make

pytestmark = [pytest.mark.django_db(transaction=True)]

TRIAL_KEYS = {
    "type",
    "trial",
    "index",
    "phase",
    "timed",
    "exposure_ms",
    "frames",
    "countdown",
    "answer_only",
    "image_url",
    "masks",
    "block",
}


def shape(value):
    """The structure of a message with its values replaced by their types."""
    if isinstance(value, dict):
        return tuple(sorted((k, shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(sorted({shape(v) for v in value})))
    return type(value).__name__


@sync_to_async
def secrets_of(study) -> list[str]:
    """Strings whose appearance in anything sent to a rater would be a leak."""
    secrets = ["is_real", "model", "original_name", "sha256"]
    for model in GenerativeModel.objects.filter(study=study):
        secrets += [model.name, f'"model_id": {model.id}']
    for image in Image.objects.filter(study=study).exclude(role=Image.Role.MASK):
        secrets += [image.public_id, image.sha256, image.file.name, image.original_name]
    return secrets


@sync_to_async
def image_response(client, url):
    response = client.get(url)
    return response.status_code, dict(response.headers), len(response.content)


@pytest.mark.parametrize("method", ["time", "inf"])
async def test_nothing_sent_before_an_answer_reveals_the_label_or_the_model(method):
    study = await sync_to_async(live_study_make)(
        method=method, qualification_trials=20, time_trials_per_block=30, inf_trials=40
    )
    client = await sync_to_async(join)(study)
    socket = RaterSocket(study, client)
    await socket.open()
    await socket.hello()
    observer = SimulatedObserver(threshold_ms=300, untimed_accuracy=0.8)
    rng = np.random.default_rng(5)

    shapes = {True: set(), False: set()}
    headers = {True: set(), False: set()}
    message = await socket.until("trial", "finished")
    while message["type"] == "trial":
        assert set(message) == TRIAL_KEYS
        assert message["image_url"] == f"/rate/image/{message['trial']}"
        is_real = await is_real_of(message["trial"])
        comparable = {k: v for k, v in message.items() if k not in {"trial", "image_url"}}
        shapes[is_real].add(shape(comparable))
        status, response_headers, _ = await image_response(client, message["image_url"])
        assert status == 200
        assert "Content-Disposition" not in response_headers
        assert "ETag" not in response_headers and "Last-Modified" not in response_headers
        # Every header, Content-Length included: one length for every image of the study.
        headers[is_real].add(tuple(sorted(response_headers.items())))
        await socket.send({"type": "presented", "trial": message["trial"]})
        says_real = observer.answer(is_real=is_real, exposure_ms=message["exposure_ms"], rng=rng)
        await socket.send(
            {
                "type": "answer",
                "trial": message["trial"],
                "choice": "real" if says_real else "fake",
                "rt_ms": 500,
                "shown_ms": None,
                "mask_ms": None,
                "page_hidden": False,
            }
        )
        message = await socket.until("trial", "finished")
    assert message["outcome"] == "completed"

    # Real and fake trials look the same to the browser, message and image response alike.
    assert shapes[True] == shapes[False]
    assert headers[True] == headers[False]
    everything = "\n".join(socket.received)
    for secret in await secrets_of(study):
        assert secret not in everything, secret
    # Feedback, after the answer, is the only place correctness appears.
    for text in socket.received:
        data = json.loads(text)
        if "correct" in data:
            assert data["type"] in {"feedback", "qualification"}


async def test_an_image_is_served_only_to_its_rater_and_only_until_it_is_shown():
    study = await sync_to_async(live_study_make)(qualification_trials=0)
    client = await sync_to_async(join)(study)
    socket = RaterSocket(study, client)
    await socket.open()
    await socket.hello()
    trial = await socket.until("trial")
    url = trial["image_url"]

    stranger = await sync_to_async(join)(study)
    assert (await image_response(stranger, url))[0] == 404
    anonymous = Client()
    assert (await image_response(anonymous, url))[0] == 404
    later = await sync_to_async(
        lambda: (
            Trial.objects.get(
                session__trials__public_id=trial["trial"], index=trial["index"] + 1
            ).public_id
        )
    )()
    assert (await image_response(client, f"/rate/image/{later}"))[0] == 410

    status, _, size = await image_response(client, url)
    assert status == 200 and size > 0
    await socket.send({"type": "presented", "trial": trial["trial"]})
    await socket.send({"type": "hello", "refresh_ms": 16.7})  # any round trip
    await socket.until("session")
    assert (await image_response(client, url))[0] == 410
    assert len(trial["masks"]) == study.mask_count
    for entry in trial["masks"]:
        assert (await image_response(client, entry["url"]))[0] == 200
        assert (await image_response(anonymous, entry["url"]))[0] == 404


# --- A classifier on everything the browser can read before answering -------------------------
#
# Everything but the decoded pixels: the trial message's fields, the trial's and the masks' ids
# and URLs, the image response's status, headers and byte length, its PNG chunk layout (types
# and lengths) and the first bytes of its zlib stream, how long the fetch took, and the same
# for the masks. A logistic regression on those features, each cut into bins at its training
# quantiles (so a label in the middle of a range is found too), with stratified 5-fold
# cross-validation. Under no leak its accuracy is binomial around 0.5; the bound allows 3.5
# standard deviations (a false alarm about once in 4,000 runs per comparison).

STUDY_SIDE = 32
Z_BOUND = 3.5


def compressed(rgb: np.ndarray) -> bytes:
    """How the import used to store an image: PNG, compressed with the one encoder setting."""
    buffer = io.BytesIO()
    PILImage.fromarray(rgb, "RGB").save(buffer, **PNG_OPTIONS)
    return buffer.getvalue()


def padded(content: bytes, *, length: int) -> bytes:
    """The old serving, in a few lines: a private chunk of zeros before IEND brings every PNG
    to one length - whose own length field tells the stored size."""
    data = bytes(length - len(content) - 12)
    chunk = struct.pack(">I", len(data)) + b"hyPe" + data
    chunk += struct.pack(">I", zlib.crc32(b"hyPe" + data))
    return content[:-12] + chunk + content[-12:]


def leak_study_make(root: Path) -> Study:
    """A HYPE_time study imported from files whose compressed sizes differ: reals smooth (from
    JPEGs), noisy-gan's fakes pure noise (larger), tiny-gan's nearly flat (much smaller)."""
    real, qualification = root / "real", root / "qualification"
    for i in range(45):
        save(picture((STUDY_SIDE, STUDY_SIDE), seed=i), real / f"r{i}.jpg", quality=75)
    yy, xx = np.mgrid[:STUDY_SIDE, :STUDY_SIDE]

    def noisy(seed: int) -> PILImage.Image:
        values = np.random.default_rng(seed).integers(0, 256, (STUDY_SIDE, STUDY_SIDE, 3))
        return PILImage.fromarray(values.astype(np.uint8), "RGB")

    def tiny(seed: int) -> PILImage.Image:
        base = np.stack([xx * 0 + seed, yy // 16 + 2 * seed, xx * 0 + 7], axis=-1)
        return PILImage.fromarray((base % 256).astype(np.uint8), "RGB")

    for folder, make, first in ((root / "noisy-gan", noisy, 1000), (root / "tiny-gan", tiny, 0)):
        for i in range(34):
            save(make(first + i), folder / f"s{i}.png")
        for i in range(4):
            save(make(first + 500 + i), qualification / folder.name / f"q{i}.png")
    return study_create(
        owner=user_make(),
        name="Leaky files",
        method="time",
        real_dir=real,
        model_dirs={"noisy-gan": root / "noisy-gan", "tiny-gan": root / "tiny-gan"},
        qualification_fakes_dir=qualification,
        params={"qualification_trials": 10, "time_blocks": 2, "time_trials_per_block": 30},
        masks=8,
        status="live",
        rng=np.random.default_rng(0),
    ).study


@dataclass
class Seen:
    """One trial as the browser saw it before answering, and the truth (the test's oracle)."""

    message: dict
    status: int
    headers: tuple
    content: bytes
    fetch_ms: float
    masks: list[tuple[int, tuple, int]]  # each mask's status, headers and length
    is_real: bool = False
    model: str = ""  # the model that made the image; "" if real
    rater_model: str = ""  # the model the rater was assigned to
    pixels: np.ndarray | None = field(default=None, repr=False)


def png_layout(content: bytes) -> list[float]:
    """The chunk types and lengths, in order, and the bytes of the zlib stream before the
    pixels: 8 chunks at most (absent ones -1), then 7 stream bytes."""
    chunks, at = [], 8
    while at + 8 <= len(content) and len(chunks) < 8:
        (length,) = struct.unpack(">I", content[at : at + 4])
        chunks.append((int.from_bytes(content[at + 4 : at + 8], "big"), length))
        at += 12 + length
    features = [float(len(chunks))]
    for i in range(8):
        kind, length = chunks[i] if i < len(chunks) else (-1, -1)
        features += [float(kind), float(length)]
    return features + [float(b) for b in content[41:48]]


def token_features(token: str) -> list[float]:
    return [float(len(token))] + [float(ord(c)) for c in token[:4]]


def features_of(seen: Seen, content: bytes) -> list[float]:
    m = seen.message
    block = m["block"]
    exposure = m["exposure_ms"] if m["exposure_ms"] is not None else -1
    values = [
        float(m["index"]),
        float(m["phase"] == "task"),
        float(m["timed"]),
        float(exposure),
        float(m["frames"] if m["frames"] is not None else -1),
        float(m["countdown"]),
        float(m["answer_only"]),
        float(len(m["masks"])),
        float(sum(mask["frames"] for mask in m["masks"])),
        float(block["number"]),
        float(block["of"]),
        float(block["position"]),
        float(block["length"]),
        float(block["first"]),
        float(len(m["image_url"])),
        *token_features(m["trial"]),
        float(seen.status),
        float(hash(seen.headers) % 1_000_003),
        float(len(content)),
        seen.fetch_ms,
        *png_layout(content),
        float(sum(length for _, _, length in seen.masks)),
        float(hash(tuple(headers for _, headers, _ in seen.masks)) % 1_000_003),
    ]
    first_mask = m["masks"][0]["url"].rsplit("/", 1)[1] if m["masks"] else ""
    return values + token_features(first_mask.ljust(4, "\0"))


def _binned(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column one-hot by its training quintiles, plus an intercept."""
    blocks_train, blocks_test = [np.ones((len(train), 1))], [np.ones((len(test), 1))]
    for j in range(train.shape[1]):
        edges = np.unique(np.quantile(train[:, j], np.linspace(0.2, 0.8, 4)))
        bins_train = np.searchsorted(edges, train[:, j], side="right")
        bins_test = np.searchsorted(edges, test[:, j], side="right")
        width = len(edges) + 1
        blocks_train.append(np.eye(width)[bins_train])
        blocks_test.append(np.eye(width)[bins_test])
    return np.hstack(blocks_train), np.hstack(blocks_test)


def _logistic_fit(x: np.ndarray, y: np.ndarray, penalty: float = 1.0) -> np.ndarray:
    """L2-penalised logistic regression by Newton's method."""
    w = np.zeros(x.shape[1])
    for _ in range(25):
        p = 1 / (1 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def cross_validated_accuracy(x: np.ndarray, y: np.ndarray, *, folds: int = 5) -> float:
    """Share of trials whose label the classifier, trained on the other folds, gets right.
    Folds are stratified, so that no fold's share of reals tells anything."""
    rng = np.random.default_rng(0)
    fold = np.empty(len(y), dtype=int)
    for label in (0, 1):
        members = rng.permutation(np.flatnonzero(y == label))
        fold[members] = np.arange(len(members)) % folds
    right = 0
    for k in range(folds):
        train, test = fold != k, fold == k
        z_train, z_test = _binned(x[train], x[test])
        w = _logistic_fit(z_train, y[train])
        right += int(((z_test @ w > 0) == (y[test] == 1)).sum())
    return right / len(y)


def chance_bound(n: int) -> float:
    return 0.5 + Z_BOUND * 0.5 / np.sqrt(n)


def comparisons(seen: list[Seen]) -> dict[str, np.ndarray]:
    """Which trials each comparison uses: every trial; and, per model, the task trials of its
    raters (reals and that model's fakes, half and half in every block, so nothing that marks
    a rater can pass for the label)."""
    models = sorted({s.model for s in seen if s.model})
    chosen = {"all fakes": np.ones(len(seen), dtype=bool)}
    for model in models:
        chosen[model] = np.array(
            [s.rater_model == model and s.message["phase"] == "task" for s in seen]
        )
    return chosen


def accuracies(seen: list[Seen], contents: list[bytes]) -> dict[str, tuple[float, int]]:
    x = np.array([features_of(s, c) for s, c in zip(seen, contents, strict=True)])
    y = np.array([1 if s.is_real else 0 for s in seen])
    return {
        name: (cross_validated_accuracy(x[rows], y[rows]), int(rows.sum()))
        for name, rows in comparisons(seen).items()
    }


@sync_to_async
def truth_of(trial_public_id: str) -> tuple[bool, str]:
    trial = Trial.objects.select_related("image__model").get(public_id=trial_public_id)
    return trial.image.is_real, trial.image.model.name if trial.image.model else ""


@sync_to_async
def rater_model_of(trial_public_id: str) -> str:
    return (
        Trial.objects.select_related("session__model")
        .get(public_id=trial_public_id)
        .session.model.name
    )


@sync_to_async
def fetch(client: Client, url: str) -> tuple[int, tuple, bytes, float]:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    return response.status_code, tuple(sorted(response.headers.items())), response.content, elapsed


async def rater_sees(study: Study, rng: np.random.Generator) -> list[Seen]:
    """One rater through the real start page and socket, fetching each trial's image and masks
    as the browser does before answering, answering as a simulated observer."""
    client = await sync_to_async(join)(study)
    socket = RaterSocket(study, client)
    await socket.open()
    await socket.hello()
    observer = SimulatedObserver(threshold_ms=300, untimed_accuracy=0.9)
    seen: list[Seen] = []
    message = await socket.until("trial", "finished")
    while message["type"] == "trial":
        status, headers, content, elapsed = await fetch(client, message["image_url"])
        masks = []
        for mask in message["masks"]:
            mask_status, mask_headers, mask_content, _ = await fetch(client, mask["url"])
            masks.append((mask_status, mask_headers, len(mask_content)))
        entry = Seen(message, status, headers, content, elapsed, masks)
        entry.is_real, entry.model = await truth_of(message["trial"])
        seen.append(entry)
        await socket.send({"type": "presented", "trial": message["trial"]})
        says_real = observer.answer(
            is_real=entry.is_real, exposure_ms=message["exposure_ms"], rng=rng
        )
        await socket.send(answer_for(message, says_real=says_real))
        ack = await socket.until("ack", "error")
        assert ack["type"] == "ack", ack
        message = await socket.until("trial", "finished", "error")
        assert message["type"] != "error", message
    await socket.close()
    rater_model = await rater_model_of(seen[-1].message["trial"])
    for entry in seen:
        entry.rater_model = rater_model
    return seen


@pytest.mark.slow
async def test_a_classifier_on_everything_the_browser_reads_stays_at_chance_but_not_when_padded(
    tmp_path,
):
    study = await sync_to_async(leak_study_make)(tmp_path)
    rng = np.random.default_rng(12)
    seen: list[Seen] = []
    for _ in range(6):  # three raters per model
        seen += await rater_sees(study, rng)
    assert len(seen) == 6 * 70 and {s.status for s in seen} == {200}
    assert {s.model for s in seen} == {"", "noisy-gan", "tiny-gan"}
    assert sorted(s.rater_model for s in seen[::70]) == ["noisy-gan"] * 3 + ["tiny-gan"] * 3
    assert 0.45 < np.mean([s.is_real for s in seen]) < 0.55

    # The files do differ as the study says: compressed, tiny-gan's are over 20 times smaller
    # than the reals, noisy-gan's larger.
    for s in seen:
        s.pixels = np.asarray(PILImage.open(io.BytesIO(s.content)).convert("RGB"))
    sizes = {name: [] for name in ("", "noisy-gan", "tiny-gan")}
    for s in seen:
        sizes[s.model].append(len(compressed(s.pixels)))
    median = {name: statistics.median(values) for name, values in sizes.items()}
    assert median[""] > 20 * median["tiny-gan"] and median["noisy-gan"] > median[""]

    # Served as they are now: at chance, all fakes pooled and each model's on its own.
    served = accuracies(seen, [s.content for s in seen])
    assert len({len(s.content) for s in seen}) == 1
    for name, (accuracy, n) in served.items():
        assert accuracy <= chance_bound(n), (name, accuracy, n, chance_bound(n))

    # The same classifier on the old padded serving (one Content-Length too, but the padding
    # chunk's length field tells the compressed size) finds the label: the test can fail.
    study_images = await sync_to_async(
        lambda: [
            compressed(np.asarray(PILImage.open(image.file.open("rb")).convert("RGB")))
            for image in Image.objects.filter(study=study).exclude(role=Image.Role.MASK)
        ]
    )()
    length = max(len(data) for data in study_images) + 12
    old = [padded(compressed(s.pixels), length=length) for s in seen]
    assert len({len(data) for data in old}) == 1
    leaky = accuracies(seen, old)
    for name, (accuracy, n) in leaky.items():
        assert accuracy > 0.9 and accuracy > chance_bound(n), (name, accuracy, n)
