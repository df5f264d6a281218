"""The REST API's views (Django REST framework): studies, their generative models, HYPE scores
and exports, so that a training script can create a study and fetch its scores (docs/api.md).
Thin: access is experiments.services.access, creating a study
experiments.services.imports.uploads, changing one experiments.services.studies, numbers
experiments.services.results_data, files experiments.services.exports.downloads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpResponseBase
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from experiments.api.serializers import (
    ErrorSerializer,
    GenerativeModelSerializer,
    ProblemsSerializer,
    StudyCreatedSerializer,
    StudyCreateSerializer,
    StudyParametersSerializer,
    StudyResultsSerializer,
    StudySerializer,
    StudySummarySerializer,
    StudyUpdateSerializer,
)
from experiments.models import Study
from experiments.services.access import (
    studies_visible_to,
    study_can_edit,
    study_for_editor,
    study_for_viewer,
)
from experiments.services.exclusions import EXCLUSION_RULES, study_rules_apply
from experiments.services.exports.downloads import (
    EXPORT_KINDS,
    EXPORT_MEDIA_TYPES,
    export_response,
)
from experiments.services.imports.audit import study_audit
from experiments.services.imports.uploads import ZipImport, study_create_from_upload
from experiments.services.problems import InputProblems
from experiments.services.results_data import study_results_data
from experiments.services.studies import study_image_counts, study_update

STUDY_PATH_PARAMETER = OpenApiParameter(
    "study",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The study's public id (the `id` field of a study).",
)


# --- Data: what the serializers show --------------------------------------------------------


def _api_url(request: Request, name: str, *args: str) -> str:
    return request.build_absolute_uri(reverse(f"experiments:{name}", args=args))


def _summary_data(study: Study, request: Request) -> dict[str, Any]:
    return {
        "id": study.public_id,
        "name": study.name,
        "method": study.method,
        "status": study.status,
        "owner": study.owner.get_username(),
        "can_edit": study_can_edit(request.user, study),
        "created_at": study.created_at,
        "url": _api_url(request, "api_study", study.public_id),
    }


def _models_data(study: Study) -> list[dict[str, Any]]:
    counts = study_image_counts(study)
    return [
        {
            "name": model.name,
            "description": model.description,
            "images": _task_and_qualification(counts.get(model.id, {})),
        }
        for model in study.models.order_by("name")
    ]


def _task_and_qualification(roles: Mapping[str, int]) -> dict[str, int]:
    return {"task": roles.get("task", 0), "qualification": roles.get("qualification", 0)}


def _study_data(study: Study, request: Request) -> dict[str, Any]:
    counts = study_image_counts(study)
    public_id = study.public_id
    return {
        **_summary_data(study, request),
        "updated_at": study.updated_at,
        "rater_link": _api_url(request, "rater_landing", public_id),
        "raters_started": study.rater_sessions.count(),
        "parameters": StudyParametersSerializer(study).data,
        "images": {
            "real": _task_and_qualification(counts.get("real", {})),
            "masks": counts.get("mask", {}).get("mask", 0),
        },
        "models": _models_data(study),
        "links": {
            "models": _api_url(request, "api_study_models", public_id),
            "results": _api_url(request, "api_study_results", public_id),
            "exports": {
                kind: _api_url(request, "api_study_export", public_id, kind)
                for kind in EXPORT_KINDS
            },
        },
    }


def _import_data(created: ZipImport) -> dict[str, Any]:
    report = created.report
    audit = study_audit(study=created.study)
    return {
        "summary": created.summary,
        "real": report.real,
        "fakes": report.fakes,
        "qualification": report.qualification,
        "masks": report.masks,
        "display_size": list(report.display_size),
        "skipped": [{"file": path, "reason": reason} for path, reason in created.skipped],
        "notes": created.notes,
        "audit": {"verdict": audit.verdict, "reasons": audit.reasons},
    }


# --- Requests: their problems as InputProblems --------------------------------------------


def _field_problems(errors: Any, prefix: str = "") -> list[str]:
    """DRF's nested field errors as one line per problem ("parameters.confidence: ...")."""
    if isinstance(errors, Mapping):
        problems = []
        for key, value in errors.items():
            name = "" if key == "non_field_errors" else f"{prefix}{key}"
            problems += _field_problems(value, f"{name}." if name else prefix)
        return problems
    if isinstance(errors, list | tuple):
        return [p for error in errors for p in _field_problems(error, prefix)]
    field = prefix.rstrip(".")
    return [f"{field}: {errors}" if field else str(errors)]


def _valid(form: serializers.Serializer) -> None:
    """Raise InputProblems, one line per field problem, unless the request is valid."""
    if not form.is_valid():
        raise InputProblems(_field_problems(form.errors))


def _problems_response(error: InputProblems, detail: str) -> Response:
    return Response(
        {"detail": detail, "problems": error.problems}, status=status.HTTP_400_BAD_REQUEST
    )


# --- Views ---------------------------------------------------------------------------------

_REFUSED = {
    401: OpenApiResponse(ErrorSerializer, description="No or invalid token."),
    404: OpenApiResponse(
        ErrorSerializer, description="No such study, or not visible to this user."
    ),
}
_READ_ONLY = {403: OpenApiResponse(ErrorSerializer, description="Read-only access.")}


# Every study endpoint: a token or a session. (A comment, not a docstring: drf-spectacular
# would show a docstring as the description of every operation.)


class TokenObtain(ObtainAuthToken):
    """POST a username and password, get the researcher's API token. Throttled per client
    address (the "token" rate), and refused while that address is locked out after failed
    logins (django-axes, as the login page)."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"


class ApiView(APIView):
    # Token first: DRF answers an anonymous request with the first authenticator's challenge,
    # so scripts get 401 and "WWW-Authenticate: Token" rather than a bare 403.
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]


class StudyListView(ApiView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="studies_list",
        summary="The studies this user may see",
        description="Their own, those shared with them read-only, and every study for staff.",
        responses={200: StudySummarySerializer(many=True), 401: _REFUSED[401]},
    )
    def get(self, request: Request) -> Response:
        studies = studies_visible_to(request.user).select_related("owner")
        data = [_summary_data(study, request) for study in studies]
        return Response(StudySummarySerializer(data, many=True).data)

    @extend_schema(
        operation_id="studies_create",
        summary="Create a study from zips of images",
        description="A zip of real images and one zip per model, plus any protocol parameter "
        "(defaults as in the admin). Every image is normalised as by `manage.py create_study`. "
        "On a problem nothing is created.",
        request={"multipart/form-data": StudyCreateSerializer},
        responses={
            201: StudyCreatedSerializer,
            400: OpenApiResponse(
                ProblemsSerializer, description="A bad upload or parameter; nothing created."
            ),
            401: _REFUSED[401],
        },
    )
    def post(self, request: Request) -> Response:
        form = StudyCreateSerializer(data=request.data)
        try:
            _valid(form)
            created = study_create_from_upload(owner=request.user, data=form.validated_data)
        except InputProblems as error:
            return _problems_response(error, "The study was not created.")
        data = {**_study_data(created.study, request), "import": _import_data(created)}
        return Response(StudyCreatedSerializer(data).data, status=status.HTTP_201_CREATED)


class StudyDetailView(ApiView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="studies_retrieve",
        summary="A study: parameters, status, models, rater link",
        parameters=[STUDY_PATH_PARAMETER],
        responses={200: StudySerializer, **_REFUSED},
    )
    def get(self, request: Request, study: str) -> Response:
        found = study_for_viewer(request.user, study)
        return Response(StudySerializer(_study_data(found, request)).data)

    @extend_schema(
        operation_id="studies_update",
        summary="Rename, open, close or reopen a study, or change its parameters",
        description="The owner and staff only. Parameters change only before any rater has "
        "started, except the exclusion rules (exclude_*), which change at any time and are "
        "then applied to the raters who completed.",
        parameters=[STUDY_PATH_PARAMETER],
        request=StudyUpdateSerializer,
        responses={
            200: StudySerializer,
            400: OpenApiResponse(ProblemsSerializer, description="Nothing was changed."),
            **_READ_ONLY,
            **_REFUSED,
        },
    )
    def patch(self, request: Request, study: str) -> Response:
        # Access first: a colleague or an outsider learns nothing from validation errors.
        found = study_for_editor(request.user, study)
        change = StudyUpdateSerializer(data=request.data, partial=True)
        try:
            _valid(change)
            found = study_update(study=found, **change.validated_data)
        except InputProblems as error:
            return _problems_response(error, "The study was not changed.")
        if set(change.validated_data.get("parameters", {})) & set(EXCLUSION_RULES):
            # New exclusion rules apply to the raters who completed, as on the dashboard.
            study_rules_apply(found)
        return Response(StudySerializer(_study_data(found, request)).data)


class StudyModelsView(ApiView):
    @extend_schema(
        operation_id="studies_models_list",
        summary="The generative models of a study, with their image counts",
        parameters=[STUDY_PATH_PARAMETER],
        responses={200: GenerativeModelSerializer(many=True), **_REFUSED},
    )
    def get(self, request: Request, study: str) -> Response:
        found = study_for_viewer(request.user, study)
        return Response(GenerativeModelSerializer(_models_data(found), many=True).data)


class StudyResultsView(ApiView):
    @extend_schema(
        operation_id="studies_results_retrieve",
        summary="HYPE scores per model, intervals, and the test of whether models differ",
        description="From completed raters who are not excluded, and under "
        "without_exclusions from every rater who completed (those excluded afterwards too); "
        "the same numbers as the study page and the exports (experiments.services.scores, "
        "hype.science).",
        parameters=[STUDY_PATH_PARAMETER],
        responses={200: StudyResultsSerializer, **_REFUSED},
    )
    def get(self, request: Request, study: str) -> Response:
        found = study_for_viewer(request.user, study)
        return Response(StudyResultsSerializer(study_results_data(study=found)).data)


class StudyExportView(ApiView):
    @extend_schema(
        operation_id="studies_exports_retrieve",
        summary="Download an export of a study",
        description="The same files as the study page's exports (docs/data-dictionary.md).",
        parameters=[
            STUDY_PATH_PARAMETER,
            OpenApiParameter(
                "kind", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(EXPORT_KINDS)
            ),
        ],
        responses={
            **{(200, media_type): OpenApiTypes.BINARY for media_type in EXPORT_MEDIA_TYPES},
            **_REFUSED,
        },
    )
    def get(self, request: Request, study: str, kind: str) -> HttpResponseBase:
        found = study_for_viewer(request.user, study)
        return export_response(found, kind)

    def perform_content_negotiation(self, request, force=False):
        # A file is sent whatever the Accept header says (curl -H "Accept: text/csv" must
        # not get 406); errors fall back to JSON.
        return super().perform_content_negotiation(request, force=True)
