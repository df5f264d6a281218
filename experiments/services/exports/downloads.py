"""A study's exports as downloads: the one list of export kinds (with how the study page
labels them), and the HTTP response of each, streamed for the CSVs. The study page and the API
both send these."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.text import slugify

from experiments.models import Study
from experiments.services.exports.bundle import bundle
from experiments.services.exports.latex import latex_table
from experiments.services.exports.raters import raters_csv
from experiments.services.exports.scores import scores_csv
from experiments.services.exports.soft_labels import soft_labels_csv
from experiments.services.exports.trials import trials_csv


@dataclass(frozen=True)
class ExportKind:
    name: str  # the file's last part, e.g. trials.csv
    label: str
    note: str
    content_type: str


EXPORTS = (
    ExportKind("trials.csv", "Trials", "one row per answered image", "text/csv"),
    ExportKind("raters.csv", "Raters", "one row per rater", "text/csv"),
    ExportKind("scores.csv", "Scores", "one row per model", "text/csv"),
    ExportKind(
        "soft_labels.csv",
        "Soft labels",
        "one row per image: the share of raters who judged it real",
        "text/csv",
    ),
    ExportKind(
        "results.tex", "LaTeX table", "the results table for the paper", "application/x-tex"
    ),
    ExportKind(
        "bundle.json",
        "Reproduce",
        "parameters, software versions and full-precision results",
        "application/json",
    ),
)
EXPORT_KINDS = tuple(kind.name for kind in EXPORTS)
EXPORT_MEDIA_TYPES = tuple(dict.fromkeys(kind.content_type for kind in EXPORTS))
_CSV: dict[str, Callable[[Study], Iterator[str]]] = {
    "trials.csv": trials_csv,
    "raters.csv": raters_csv,
    "scores.csv": scores_csv,
    "soft_labels.csv": soft_labels_csv,
}


def _next_part(parts: Iterator[bytes]) -> bytes | None:
    return next(parts, None)


class StreamingExportResponse(StreamingHttpResponse):
    """A StreamingHttpResponse that also streams under ASGI.

    Django serves a synchronous iterator over ASGI by first collecting it into a list, which
    would hold a whole export in memory. Here each chunk is pulled on its own, in the
    request's thread (thread_sensitive), where the database cursor was opened."""

    async def __aiter__(self):
        if self.is_async:
            async for part in super().__aiter__():
                yield part
            return
        parts = self.streaming_content
        step = sync_to_async(_next_part, thread_sensitive=True)
        while (part := await step(parts)) is not None:
            yield part


def export_filename(study: Study, kind: str) -> str:
    """hype-<study name as an ASCII slug>-<kind>, safe in a Content-Disposition header."""
    return f"hype-{slugify(study.name)[:60].strip('-') or 'study'}-{kind}"


def export_response(study: Study, kind: str) -> HttpResponseBase:
    """The download of one export of the study; Http404 for an unknown kind. CSVs stream
    (a StreamingHttpResponse, not an HttpResponse), the table and the bundle are small."""
    found = {k.name: k for k in EXPORTS}.get(kind)
    if found is None:
        raise Http404("No such export.")
    content_type = f"{found.content_type}; charset=utf-8"
    response: HttpResponseBase
    if kind in _CSV:
        response = StreamingExportResponse(_CSV[kind](study), content_type=content_type)
    elif kind == "results.tex":
        response = HttpResponse(latex_table(study), content_type=content_type)
    else:
        body = json.dumps(bundle(study), indent=2, ensure_ascii=False, allow_nan=False)
        response = HttpResponse(body + "\n", content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{export_filename(study, kind)}"'
    # The data of a study: never kept by a shared cache.
    response["Cache-Control"] = "private, no-store"
    return response
