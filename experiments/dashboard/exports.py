"""Downloads of a study's exports (trials, raters and scores CSVs, LaTeX table, JSON bundle)
for its owner and colleagues. Thin: the files come from experiments.services.exports."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from experiments.services.access import study_for_viewer
from experiments.services.exports.downloads import export_response


@login_required
@require_GET
def study_export(request: HttpRequest, study: str, kind: str) -> HttpResponseBase:
    # study_for_viewer first: an outsider learns nothing, not even which kinds exist.
    study_obj = study_for_viewer(request.user, study)
    return export_response(study_obj, kind)
