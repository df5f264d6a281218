"""Downloads of a study's exports (trials, raters and scores CSVs, LaTeX table, JSON bundle)
for its owner and colleagues. Thin: the content comes from experiments.services.exports."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from experiments.models import Study
from experiments.services import exports
from experiments.services.access import study_for_viewer

CSV_EXPORTS: dict[str, Callable[[Study], Iterator[str]]] = {
    "trials.csv": exports.trials_csv,
    "raters.csv": exports.raters_csv,
    "scores.csv": exports.scores_csv,
}
EXPORT_KINDS = (*CSV_EXPORTS, "results.tex", "bundle.json")


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
    response: HttpResponseBase
    if kind in CSV_EXPORTS:
        response = StreamingExportResponse(
            CSV_EXPORTS[kind](study), content_type="text/csv; charset=utf-8"
        )
    elif kind == "results.tex":
        response = HttpResponse(
            exports.latex_table(study), content_type="application/x-tex; charset=utf-8"
        )
    elif kind == "bundle.json":
        body = json.dumps(exports.bundle(study), indent=2, ensure_ascii=False, allow_nan=False)
        response = HttpResponse(body + "\n", content_type="application/json; charset=utf-8")
    else:
        raise Http404("No such export.")
    response["Content-Disposition"] = f'attachment; filename="{export_filename(study, kind)}"'
    # The data of a study: never kept by a shared cache.
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def study_export(request: HttpRequest, study: str, kind: str) -> HttpResponseBase:
    # study_for_viewer first: an outsider learns nothing, not even which kinds exist.
    study_obj = study_for_viewer(request.user, study)
    return export_response(study_obj, kind)
