"""Thin HTTP views of the experiments app."""

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from experiments.models import Study
from experiments.services.access import studies_visible_to


def home(request: HttpRequest) -> HttpResponse:
    studies = Study.objects.none()
    if request.user.is_authenticated:
        studies = studies_visible_to(request.user)
    return render(request, "home.html", {"studies": studies})


def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and `make demo`: answers once the database does."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
