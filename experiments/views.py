"""Thin HTTP views of the experiments app: the home page (the studies list once logged in)
and the health check."""

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from experiments.researcher_views import study_summaries


def home(request: HttpRequest) -> HttpResponse:
    summaries = study_summaries(request.user) if request.user.is_authenticated else []
    return render(request, "home.html", {"summaries": summaries})


def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and `make demo`: answers once the database does."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
