"""The REST API (Django REST framework): studies, their generative models, HYPE scores and
exports, so that a training script can create a study and fetch its scores (docs/api.md).
Thin: access is experiments.services.access, creating and changing a study
experiments.services.studies, numbers experiments.services.results_data, files
experiments.export_views."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Count, Q
from django.http import HttpResponseBase
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.export_views import EXPORT_KINDS, export_response
from experiments.models import GenerativeModel, Image, Study
from experiments.services.access import (
    studies_visible_to,
    study_can_edit,
    study_for_editor,
    study_for_viewer,
)
from experiments.services.audit import study_audit
from experiments.services.imports import IMPORT_STATUSES, STUDY_PARAMETERS
from experiments.services.results_data import study_results_data
from experiments.services.studies import (
    FIXED_AT_IMPORT,
    FORM_PARAMETERS,
    StudyInputError,
    ZipImport,
    study_create_from_zips,
    study_update,
)
from experiments.services.zips import zip_model_names_repeated

# The media types export_views sends the exports as (CSVs, the LaTeX table, the bundle).
EXPORT_MEDIA_TYPES = ("text/csv", "application/x-tex", "application/json")

STUDY_PATH_PARAMETER = OpenApiParameter(
    "study",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The study's public id (the `id` field of a study).",
)


# --- Serializers: the shapes of requests and responses ------------------------------------


@extend_schema_field(OpenApiTypes.BINARY)
class ZipField(serializers.FileField):
    """An uploaded zip file (a binary part of a multipart request)."""


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class ProblemsSerializer(serializers.Serializer):
    detail = serializers.CharField()
    problems = serializers.ListField(child=serializers.CharField())


class StudyParametersSerializer(serializers.ModelSerializer):
    """Every protocol parameter of a study (DESIGN.md section 2); docs/data-model.md."""

    class Meta:
        model = Study
        fields = list(STUDY_PARAMETERS)


class ImageCountsSerializer(serializers.Serializer):
    task = serializers.IntegerField(help_text="Images used in the task.")
    qualification = serializers.IntegerField(help_text="Images kept for the qualification.")


class StudyImagesSerializer(serializers.Serializer):
    real = ImageCountsSerializer()
    masks = serializers.IntegerField()


class GenerativeModelSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    images = ImageCountsSerializer(help_text="This model's fake images.")


class StudySummarySerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The study's public id: the API's identifier.")
    name = serializers.CharField()
    method = serializers.ChoiceField(choices=Study.Method.choices)
    status = serializers.ChoiceField(choices=Study.Status.choices)
    owner = serializers.CharField(help_text="Username of the study's owner.")
    can_edit = serializers.BooleanField(
        help_text="False for a colleague with read access: they cannot change the study."
    )
    created_at = serializers.DateTimeField()
    url = serializers.URLField(help_text="This study in the API.")


class StudyLinksSerializer(serializers.Serializer):
    models = serializers.URLField()
    results = serializers.URLField()
    exports = serializers.DictField(
        child=serializers.URLField(), help_text="Download address of each export kind."
    )


class StudySerializer(StudySummarySerializer):
    updated_at = serializers.DateTimeField()
    rater_link = serializers.URLField(help_text="The one link to share with raters.")
    raters_started = serializers.IntegerField(
        help_text="Rater sessions so far; once there is one, the parameters are fixed."
    )
    parameters = StudyParametersSerializer()
    images = StudyImagesSerializer()
    models = GenerativeModelSerializer(many=True)
    links = StudyLinksSerializer()


class SkippedFileSerializer(serializers.Serializer):
    file = serializers.CharField()
    reason = serializers.CharField()


class AuditSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=["pass", "warn", "fail"])
    reasons = serializers.ListField(child=serializers.CharField())


class ImportSummarySerializer(serializers.Serializer):
    summary = serializers.CharField(help_text="The import's report, as the admin shows it.")
    real = serializers.IntegerField(help_text="Real images stored for the task.")
    fakes = serializers.DictField(
        child=serializers.IntegerField(), help_text="Fakes stored for the task, per model."
    )
    qualification = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Images reserved for the qualification: 'real' and per model.",
    )
    masks = serializers.IntegerField()
    display_size = serializers.ListField(child=serializers.IntegerField(), min_length=2)
    skipped = SkippedFileSerializer(many=True)
    notes = serializers.ListField(child=serializers.CharField())
    audit = AuditSerializer(help_text="The leak audit of the stored images.")


class StudyCreatedSerializer(StudySerializer):
    import_summary = ImportSummarySerializer(source="import")


def _boolean_defaults() -> dict[str, dict[str, Any]]:
    # A multipart form cannot send False, so DRF reads a missing checkbox as False; an omitted
    # boolean parameter must mean the study's default instead.
    return {
        name: {"default": Study._meta.get_field(name).get_default()}
        for name in FORM_PARAMETERS
        if Study._meta.get_field(name).get_internal_type() == "BooleanField"
    }


class StudyCreateSerializer(serializers.ModelSerializer):
    """What the admin's zip import page takes: the study, its zips, and any parameter."""

    name = serializers.CharField(max_length=200)
    method = serializers.ChoiceField(choices=Study.Method.choices, default=Study.Method.TIME)
    # A new study starts as draft or live: its own enum in the schema (StudyCreateStatusEnum),
    # apart from Study.Status's (named StudyStatusEnum by SPECTACULAR_SETTINGS).
    status = serializers.ChoiceField(
        choices=[(s.value, s.label) for s in IMPORT_STATUSES],
        default=Study.Status.DRAFT,
        help_text="draft (the default) or live: a new study cannot start closed.",
        error_messages={
            "invalid_choice": f"A new study starts as {' or '.join(IMPORT_STATUSES)}, "
            "not {input}."
        },
    )
    real_zip = ZipField(help_text="A zip of the real images.")
    model_zips = serializers.ListField(
        child=ZipField(),
        allow_empty=False,
        help_text="One zip per generative model, named after it: stylegan.zip holds model "
        "stylegan. Repeat the form field once per model.",
    )
    qualification_zip = ZipField(
        required=False,
        help_text="Optional: one folder per model (named like the model zips) of fakes kept "
        "for the qualification only.",
    )
    display_width = serializers.IntegerField(required=False, min_value=1)
    display_height = serializers.IntegerField(required=False, min_value=1)
    masks = serializers.IntegerField(
        default=20, min_value=0, help_text="Backward masks to make (HYPE_time only)."
    )

    class Meta:
        model = Study
        fields = [
            "name",
            "method",
            "status",
            "real_zip",
            "model_zips",
            "qualification_zip",
            "display_width",
            "display_height",
            "masks",
            *FORM_PARAMETERS,
        ]
        extra_kwargs = _boolean_defaults()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        repeated = zip_model_names_repeated(upload.name for upload in attrs["model_zips"])
        if repeated:
            raise serializers.ValidationError(
                {"model_zips": f"Two zips name the same model: {', '.join(repeated)}."}
            )
        if ("display_width" in attrs) != ("display_height" in attrs):
            raise serializers.ValidationError(
                {"display_height": "Give both the width and the height, or neither."}
            )
        return attrs


class StudyUpdateSerializer(serializers.Serializer):
    """A change to a study: any of its name, status and parameters."""

    name = serializers.CharField(max_length=200, required=False)
    status = serializers.ChoiceField(
        choices=Study.Status.choices,
        required=False,
        help_text="draft -> live opens the study, live -> closed closes it, closed -> live "
        "reopens it.",
    )
    parameters = StudyParametersSerializer(
        required=False,
        help_text="Parameters to change; only before any rater has started, and not those "
        "the import depended on (" + ", ".join(FIXED_AT_IMPORT) + ").",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # DRF ignores unknown keys; a script's typo must not pass for a change that was made.
        given = self.initial_data
        unknown = sorted(set(given) - set(self.fields))
        parameters = given.get("parameters")
        if isinstance(parameters, Mapping):
            unknown += [
                f"parameters.{key}" for key in sorted(set(parameters) - set(STUDY_PARAMETERS))
            ]
        if unknown:
            raise serializers.ValidationError(f"Unknown field(s): {', '.join(unknown)}.")
        return attrs


class BootstrapSerializer(serializers.Serializer):
    """A percentile bootstrap over raters (hype.science.scores.BootstrapResult)."""

    estimate = serializers.FloatField(help_text="The model's HYPE score.")
    sd = serializers.FloatField(help_text="SD of the bootstrap scores.")
    low = serializers.FloatField(help_text="Lower end of the confidence interval.")
    high = serializers.FloatField(help_text="Upper end of the confidence interval.")
    n = serializers.IntegerField(help_text="Raters resampled.")
    resamples = serializers.IntegerField()
    confidence = serializers.FloatField()
    seed = serializers.IntegerField()


class BaselineSerializer(serializers.Serializer):
    """Automated metrics of the model's fakes against the study's real images
    (manage.py compute_baselines; docs/baselines.md)."""

    fid = serializers.FloatField(help_text="Fréchet Inception Distance (lower is closer).")
    kid = serializers.FloatField(allow_null=True, help_text="KID, mean over subsets.")
    kid_sd = serializers.FloatField(
        allow_null=True, help_text="SD of KID over subsets; null when computed once."
    )
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)
    n_real = serializers.IntegerField(help_text="Real images behind the numbers.")
    n_fake = serializers.IntegerField(help_text="The model's fakes behind the numbers.")
    weights_sha256 = serializers.CharField(help_text="The Inception weights used.")


class ModelScoreSerializer(serializers.Serializer):
    name = serializers.CharField()
    n_raters = serializers.IntegerField(help_text="Completed raters whose answers count.")
    target_raters = serializers.IntegerField(help_text="The study's raters_per_model.")
    n_in_progress = serializers.IntegerField(help_text="Raters still answering.")
    rater_scores = serializers.ListField(child=serializers.FloatField())
    score = BootstrapSerializer(
        allow_null=True, help_text="Null until the model has a completed rater."
    )
    error = serializers.FloatField(
        allow_null=True, help_text="HYPE_inf: wrong answers / answers, pooled over raters."
    )
    fake_error = serializers.FloatField(
        allow_null=True, help_text="HYPE_inf: share of fakes called real."
    )
    real_error = serializers.FloatField(
        allow_null=True, help_text="HYPE_inf: share of real images called fake."
    )
    baselines = BaselineSerializer(
        allow_null=True, help_text="Null until compute_baselines has run for the study."
    )


class PairSerializer(serializers.Serializer):
    a = serializers.CharField()
    b = serializers.CharField()
    difference = serializers.FloatField(help_text="Mean score of a minus mean score of b.")
    p_value = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)


class ComparisonSerializer(serializers.Serializer):
    test = serializers.ChoiceField(
        choices=["t-test", "anova"],
        help_text="Welch's t-test for two models, one-way ANOVA with Tukey HSD for more.",
    )
    statistic = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    pairs = PairSerializer(many=True)


class StudyResultsSerializer(serializers.Serializer):
    study = serializers.CharField(help_text="The study's public id.")
    method = serializers.ChoiceField(choices=Study.Method.choices)
    unit = serializers.ChoiceField(
        choices=["ms", "error"],
        help_text="ms: HYPE_time threshold (higher is more realistic); error: HYPE_inf error "
        "rate as a fraction (0.5 = indistinguishable).",
    )
    models = ModelScoreSerializer(many=True)
    comparison = ComparisonSerializer(
        allow_null=True, help_text="Null until two models have two completed raters each."
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
    fakes = Count("images", filter=~Q(images__role=Image.Role.QUALIFICATION))
    reserved = Count("images", filter=Q(images__role=Image.Role.QUALIFICATION))
    models = GenerativeModel.objects.filter(study=study).annotate(task=fakes, qual=reserved)
    return [
        {
            "name": model.name,
            "description": model.description,
            "images": {"task": model.task, "qualification": model.qual},
        }
        for model in models.order_by("name")
    ]


def _study_data(study: Study, request: Request) -> dict[str, Any]:
    counts = Image.objects.filter(study=study).aggregate(
        real_task=Count("id", filter=Q(is_real=True, role=Image.Role.TASK)),
        real_qualification=Count("id", filter=Q(is_real=True, role=Image.Role.QUALIFICATION)),
        masks=Count("id", filter=Q(role=Image.Role.MASK)),
    )
    public_id = study.public_id
    return {
        **_summary_data(study, request),
        "updated_at": study.updated_at,
        "rater_link": _api_url(request, "rater_landing", public_id),
        "raters_started": study.rater_sessions.count(),
        "parameters": StudyParametersSerializer(study).data,
        "images": {
            "real": {"task": counts["real_task"], "qualification": counts["real_qualification"]},
            "masks": counts["masks"],
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


# --- Requests: their problems as StudyInputError --------------------------------------------


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
    """Raise StudyInputError, one line per field problem, unless the request is valid."""
    if not form.is_valid():
        raise StudyInputError(_field_problems(form.errors))


def _problems_response(error: StudyInputError, detail: str) -> Response:
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
            data = form.validated_data
            display = None
            if "display_width" in data:
                display = (data["display_width"], data["display_height"])
            created = study_create_from_zips(
                owner=request.user,
                name=data["name"],
                method=data["method"],
                real_zip=data["real_zip"],
                model_zips=data["model_zips"],
                qualification_zip=data.get("qualification_zip"),
                params={name: data[name] for name in FORM_PARAMETERS if name in data},
                display_size=display,
                masks=data["masks"],
                status=data["status"],
            )
        except StudyInputError as error:
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
        "started.",
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
        except StudyInputError as error:
            return _problems_response(error, "The study was not changed.")
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
        description="From completed raters only; the same numbers as the study page and the "
        "exports (experiments.services.scores, hype.science).",
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
