"""The shapes of the REST API's requests and responses (docs/api.md), which drf-spectacular
turns into the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from experiments.models import PROTOCOL_PARAMETERS, Study
from experiments.services.imports.parameters import IMPORT_STATUSES, feedback_value
from experiments.services.imports.uploads import FORM_PARAMETERS
from experiments.services.scores import EXCLUSION_VIEWS, EXCLUSIONS_APPLIED
from experiments.services.studies import FIXED_AT_IMPORT


@extend_schema_field(OpenApiTypes.BINARY)
class ZipField(serializers.FileField):
    """An uploaded zip file (a binary part of a multipart request)."""


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class ProblemsSerializer(serializers.Serializer):
    detail = serializers.CharField()
    problems = serializers.ListField(child=serializers.CharField())


class FeedbackField(serializers.ChoiceField):
    """Study.feedback: every_trial, qualification or none; true and false, what older scripts
    send, still mean every_trial and none."""

    def __init__(self, **kwargs):
        kwargs.setdefault("choices", Study.Feedback.choices)
        kwargs.setdefault(
            "help_text",
            "When the rater is told whether an answer was correct: every_trial, qualification "
            "(in the qualification only) or none; true and false are read as every_trial and "
            "none.",
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return super().to_internal_value(feedback_value(data))


class StudyParametersSerializer(serializers.ModelSerializer):
    """Every protocol parameter of a study (docs/hype-method.md, docs/data-model.md)."""

    feedback = FeedbackField(required=False)

    class Meta:
        model = Study
        fields = list(PROTOCOL_PARAMETERS)


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
    """What the admin's zip import page takes: the study, its zips, and any parameter. Whether
    the zips name distinct models and the display size is whole is checked with the rest of
    the import (experiments.services.imports.uploads)."""

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
    feedback = FeedbackField(default=Study._meta.get_field("feedback").get_default())

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
                f"parameters.{key}" for key in sorted(set(parameters) - set(PROTOCOL_PARAMETERS))
            ]
        if unknown:
            raise serializers.ValidationError(f"Unknown field(s): {', '.join(unknown)}.")
        return attrs


class BootstrapSerializer(serializers.Serializer):
    """A bootstrap over raters (hype.science.bootstrap.BootstrapResult)."""

    estimate = serializers.FloatField(help_text="The model's HYPE score.")
    sd = serializers.FloatField(help_text="SD of the bootstrap scores.")
    low = serializers.FloatField(help_text="Lower end of the confidence interval.")
    high = serializers.FloatField(help_text="Upper end of the confidence interval.")
    n = serializers.IntegerField(help_text="Raters resampled.")
    resamples = serializers.IntegerField()
    confidence = serializers.FloatField()
    seed = serializers.IntegerField()
    method = serializers.ChoiceField(
        choices=Study.IntervalMethod.choices,
        help_text="How the interval is read from the resamples: percentile (the paper's), "
        "bca or studentized (the study's interval_method).",
    )


class BaselineSerializer(serializers.Serializer):
    """Automated metrics of the model's fakes against the study's real images
    (manage.py compute_baselines; docs/baselines.md)."""

    fid = serializers.FloatField(help_text="Fréchet Inception Distance (lower is closer).")
    kid = serializers.FloatField(allow_null=True, help_text="KID, mean over subsets.")
    kid_sd = serializers.FloatField(
        allow_null=True, help_text="SD of KID over subsets; null when computed once."
    )
    inception_score = serializers.FloatField(
        allow_null=True,
        help_text="Inception Score of the fakes, mean over 10 splits (higher is better); null "
        "when the Inception weights have no classifier.",
    )
    inception_score_sd = serializers.FloatField(
        allow_null=True, help_text="SD of the Inception Score over the splits."
    )
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)
    n_real = serializers.IntegerField(help_text="Real images behind the numbers.")
    n_fake = serializers.IntegerField(help_text="The model's fakes behind the numbers.")
    weights_sha256 = serializers.CharField(help_text="The Inception weights used.")


class ModelScoreSerializer(serializers.Serializer):
    name = serializers.CharField()
    n_raters = serializers.IntegerField(help_text="Completed raters whose answers count.")
    n_excluded = serializers.IntegerField(
        help_text="Raters of the model excluded after completing: not among n_raters when "
        "exclusions are applied, among them when not."
    )
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
    fit_rater_scores = serializers.ListField(
        child=serializers.FloatField(),
        help_text="HYPE_time: each rater's psychometric threshold (a censored rater's bound), "
        "in the order of rater_scores; empty for HYPE_inf.",
    )
    fit_score = BootstrapSerializer(
        allow_null=True,
        help_text="HYPE_time: the psychometric fit's score, the mean of fit_rater_scores, with "
        "its bootstrap (the same resamples as score's); null for HYPE_inf.",
    )
    fit_censored_low = serializers.IntegerField(
        allow_null=True, help_text="Raters behind fit_score censored low (read it as at most)."
    )
    fit_censored_high = serializers.IntegerField(
        allow_null=True, help_text="Raters behind fit_score censored high (read it as at least)."
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


class ResultSerializer(serializers.Serializer):
    """One result of a study: with its exclusions applied, or without them."""

    exclusions = serializers.ChoiceField(
        choices=list(EXCLUSION_VIEWS),
        help_text="applied: completed raters who are not excluded (the study's result); "
        "none: every rater who completed, those excluded afterwards too.",
    )
    n_excluded = serializers.IntegerField(
        help_text="Raters excluded after completing, over all models: the two results differ "
        "by them (the same numbers when 0)."
    )
    interval_method = serializers.ChoiceField(
        choices=Study.IntervalMethod.choices,
        help_text="How every interval of the result is read (the study's interval_method).",
    )
    time_score = serializers.ChoiceField(
        choices=Study.TimeScore.choices,
        help_text="HYPE_time: which score leads and is compared, mode (score) or fit "
        "(fit_score); the study's time_score.",
    )
    fit_slope_ms = serializers.FloatField(
        allow_null=True, help_text="HYPE_time: the joint fit's shared slope in ms."
    )
    fit_lapse = serializers.FloatField(
        allow_null=True, help_text="HYPE_time: the joint fit's shared lapse rate."
    )
    models = ModelScoreSerializer(many=True)
    comparison = ComparisonSerializer(
        allow_null=True, help_text="Null until two models have two completed raters each."
    )


class StudyResultsSerializer(serializers.Serializer):
    study = serializers.CharField(help_text="The study's public id.")
    method = serializers.ChoiceField(choices=Study.Method.choices)
    unit = serializers.ChoiceField(
        choices=["ms", "error"],
        help_text="ms: HYPE_time threshold (higher is more realistic); error: HYPE_inf error "
        "rate as a fraction (0.5 = indistinguishable).",
    )
    exclusions = serializers.ChoiceField(
        choices=[EXCLUSIONS_APPLIED],
        help_text="applied: the result below leaves excluded raters out (the study's result).",
    )
    n_excluded = serializers.IntegerField(
        help_text="Raters excluded after completing, over all models; without_exclusions "
        "counts them."
    )
    interval_method = serializers.ChoiceField(
        choices=Study.IntervalMethod.choices,
        help_text="How every interval of the result is read (the study's interval_method).",
    )
    time_score = serializers.ChoiceField(
        choices=Study.TimeScore.choices,
        help_text="HYPE_time: which score leads and is compared, mode (score) or fit "
        "(fit_score); the study's time_score.",
    )
    fit_slope_ms = serializers.FloatField(
        allow_null=True, help_text="HYPE_time: the joint fit's shared slope in ms."
    )
    fit_lapse = serializers.FloatField(
        allow_null=True, help_text="HYPE_time: the joint fit's shared lapse rate."
    )
    models = ModelScoreSerializer(many=True)
    comparison = ComparisonSerializer(
        allow_null=True, help_text="Null until two models have two completed raters each."
    )
    without_exclusions = ResultSerializer(
        help_text="The same result counting every rater who completed, the raters excluded "
        "afterwards among them (docs/raters.md); the same numbers when n_excluded is 0."
    )
