"""Django admin for every model of a study, read-mostly where the data are answers."""

from django import forms
from django.contrib import admin

from experiments.admin.study_import import study_import_urls
from experiments.models import (
    PLATFORM_FIELDS,
    RATER_TEXT_FIELDS,
    Answer,
    Baseline,
    Block,
    GenerativeModel,
    Image,
    ImageFeatures,
    ImageTag,
    Payment,
    PlatformToken,
    RaterSession,
    Study,
    StudyGroup,
    StudyImport,
    Trial,
)


class GenerativeModelInline(admin.TabularInline):
    model = GenerativeModel
    extra = 0


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["name", "method", "status", "owner", "raters_per_model", "created_at"]
    list_filter = ["method", "status"]
    search_fields = ["name", "public_id"]
    # The platforms' ids are set by the publishing commands: changing one by hand would point
    # HYPE at another study or HIT, and its payments with it.
    readonly_fields = ["public_id", "created_at", "updated_at", *PLATFORM_FIELDS]
    inlines = [GenerativeModelInline]
    fieldsets = [
        (None, {"fields": ["owner", "name", "method", "status", "public_id"]}),
        (
            "Images and raters",
            {
                "fields": [
                    "real_fraction",
                    "raters_per_model",
                    "qualification_trials",
                    "qualification_pass",
                    "feedback",
                    "display_width",
                    "display_height",
                    "display_css_px",
                ]
            },
        ),
        ("A rater's life", {"fields": ["group", "idle_minutes", "close_when_full"]}),
        (
            "Exclusion rules (each off while empty)",
            {
                "fields": [
                    "exclude_hidden_share",
                    "exclude_timing_share",
                    "exclude_fast_streak",
                    "exclude_same_key_streak",
                    "exclude_unmeasured_refresh",
                ]
            },
        ),
        (
            "HYPE_time",
            {
                "fields": [
                    "time_blocks",
                    "time_trials_per_block",
                    "staircase_run_length",
                    "staircase_step_down_ms",
                    "staircase_step_up_ms",
                    "staircase_start_ms",
                    "staircase_floor_ms",
                    "staircase_ceiling_ms",
                    "countdown_step_ms",
                    "mask_count",
                    "mask_ms",
                    "threshold_burn_in",
                    "threshold_tie_rule",
                    "time_score",
                ]
            },
        ),
        ("HYPE_inf", {"fields": ["inf_trials"]}),
        (
            "Statistics",
            {
                "fields": [
                    "bootstrap_resamples",
                    "confidence",
                    "bootstrap_seed",
                    "interval_method",
                ]
            },
        ),
        ("What raters are told and paid", {"fields": list(RATER_TEXT_FIELDS)}),
        ("Crowd platforms", {"fields": list(PLATFORM_FIELDS)}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_urls(self):
        # "Import a study from zip files" (experiments/admin/study_import.py), linked from the list.
        return study_import_urls(self) + super().get_urls()


@admin.register(GenerativeModel)
class GenerativeModelAdmin(admin.ModelAdmin):
    list_display = ["name", "study", "created_at"]
    list_filter = ["study"]
    search_fields = ["name"]


class ImageTagInline(admin.TabularInline):
    model = ImageTag
    extra = 0


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["public_id", "study", "is_real", "model", "role", "width", "height"]
    list_filter = ["study", "role", "is_real", "model"]
    search_fields = ["public_id", "original_name", "sha256"]
    readonly_fields = ["public_id", "sha256", "width", "height", "changes", "created_at"]
    inlines = [ImageTagInline]


@admin.register(ImageTag)
class ImageTagAdmin(admin.ModelAdmin):
    """Tags come from the import (sub-folders or tags.csv); the admin may correct one."""

    list_display = ["name", "image"]
    search_fields = ["name", "image__public_id", "image__original_name"]
    list_filter = ["image__study"]
    raw_id_fields = ["image"]


class BlockInline(admin.TabularInline):
    model = Block
    extra = 0
    fields = ["index", "kind", "timed", "trial_count", "staircase_state", "completed_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(RaterSession)
class RaterSessionAdmin(admin.ModelAdmin):
    list_display = ["public_id", "study", "model", "source", "status", "started_at", "finished_at"]
    list_filter = ["study", "status", "source", "model"]
    search_fields = ["public_id", "external_id"]
    readonly_fields = [
        "public_id",
        "resume_token",
        "completion_code",
        "platform_study_id",
        "platform_session_id",
        "submit_to",
        "approved_at",
        "browser_id",
        "started_at",
        "last_activity_at",
        "qualified_at",
        "qualification_from",
        "excluded_at",
        "excluded_by",
        "status_before_exclusion",
        "exclusion_undone_at",
    ]
    inlines = [BlockInline]


@admin.register(StudyGroup)
class StudyGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "qualification_days", "owner", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]


class TrialInline(admin.TabularInline):
    model = Trial
    extra = 0
    fields = ["index", "position", "image", "is_real", "requested_ms", "frames", "presented_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(Block)
class BlockAdmin(admin.ModelAdmin):
    list_display = ["session", "index", "kind", "timed", "trial_count", "completed_at"]
    list_filter = ["kind", "timed"]
    inlines = [TrialInline]


@admin.register(Trial)
class TrialAdmin(admin.ModelAdmin):
    list_display = ["session", "index", "block", "is_real", "requested_ms", "frames"]
    list_filter = ["is_real", "block__kind"]
    raw_id_fields = ["session", "block", "image"]


@admin.register(Answer)
class AnswerAdmin(admin.ModelAdmin):
    list_display = ["trial", "response", "correct", "rt_ms", "shown_ms", "page_hidden"]
    list_filter = ["response", "correct", "page_hidden"]
    raw_id_fields = ["trial"]

    # Answers are the data of a study: the admin may read them, never rewrite them.
    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ImageFeatures)
class ImageFeaturesAdmin(admin.ModelAdmin):
    """A cache (compute_baselines fills it): readable and deletable, never edited by hand."""

    list_display = ["image", "weights_sha256", "created_at"]
    raw_id_fields = ["image"]
    exclude = ["vector"]
    readonly_fields = ["image", "weights_sha256", "created_at"]

    def has_add_permission(self, request):
        return False


@admin.register(Baseline)
class BaselineAdmin(admin.ModelAdmin):
    """Numbers computed by compute_baselines, shown as they are."""

    list_display = ["model", "study", "reference", "fid", "kid_mean", "precision", "recall"]
    list_filter = ["study"]
    readonly_fields = [f.name for f in Baseline._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """What was paid to whom: recorded by the payment commands, never edited by hand."""

    list_display = ["session", "kind", "amount_cents", "currency", "status", "paid_at"]
    list_filter = ["kind", "status"]
    readonly_fields = [f.name for f in Payment._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PlatformTokenForm(forms.ModelForm):
    """The token is written, never shown back: the field starts empty, and an empty field
    keeps the stored token."""

    token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Paste a new token to replace the stored one; leave empty to keep it.",
    )

    class Meta:
        model = PlatformToken
        fields = ["owner", "platform", "token"]

    def clean_token(self):
        token = self.cleaned_data["token"].strip()
        if not token and not self.instance.pk:
            raise forms.ValidationError("Paste the platform's API token.")
        return token or self.instance.token


@admin.register(PlatformToken)
class PlatformTokenAdmin(admin.ModelAdmin):
    form = PlatformTokenForm
    list_display = ["owner", "platform", "token_end", "created_at"]

    @admin.display(description="token")
    def token_end(self, obj: PlatformToken) -> str:
        return f"…{obj.token[-4:]}"


@admin.register(StudyImport)
class StudyImportAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "status", "done", "total", "created_at"]
    readonly_fields = [f.name for f in StudyImport._meta.fields]

    def has_add_permission(self, request):
        return False
