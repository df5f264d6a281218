"""The data model of a HYPE study: studies, the generative models under evaluation,
images, rater sessions, blocks, trials and answers.

The invariants that keep answers from being lost or counted twice are database
constraints, so they hold whatever the code above them does.
"""

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q, Value
from django.utils import timezone

from hype.science.staircase import StaircaseRule


def public_token() -> str:
    """An opaque, unguessable id: says nothing about an image's label or model."""
    # Never starting with "-" or "_": researchers paste ids into command lines, where
    # "--study -x3F..." reads as an option.
    while True:
        token = secrets.token_urlsafe(16)
        if token[0].isalnum():
            return token


def completion_code() -> str:
    return secrets.token_hex(4).upper()


def image_upload_to(instance: "Image", filename: str) -> str:
    # The stored name is the random public id alone: neither the original name nor the
    # extension of the source file (which could differ between real and fake) survives.
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"studies/{instance.study.public_id}/{instance.public_id}.{extension}"


class Study(models.Model):
    """One evaluation: real images, one or more generative models, one method."""

    class Method(models.TextChoices):
        TIME = "time", "HYPE_time (adaptive exposure)"
        INF = "inf", "HYPE_inf (no time limit)"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        LIVE = "live", "Live"
        CLOSED = "closed", "Closed"

    class TieRule(models.TextChoices):
        MEAN = "mean", "Mean of the tied values"
        LOWEST = "lowest", "Lowest tied value"
        HIGHEST = "highest", "Highest tied value"

    class Feedback(models.TextChoices):
        EVERY_TRIAL = "every_trial", "After every answer (the paper's HYPE_time)"
        QUALIFICATION = "qualification", "In the qualification only"
        NONE = "none", "Never"

    class IntervalMethod(models.TextChoices):
        # The values are hype.science.bootstrap.INTERVAL_METHODS (a test holds them equal).
        PERCENTILE = "percentile", "Percentile bootstrap (the paper's)"
        BCA = "bca", "BCa bootstrap (bias-corrected and accelerated)"
        STUDENTIZED = "studentized", "Studentized bootstrap"

    class TimeScore(models.TextChoices):
        MODE = "mode", "Modal threshold (the paper's)"
        FIT = "fit", "Psychometric fit threshold"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="studies"
    )
    name = models.CharField(max_length=200)
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.TIME)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    public_id = models.CharField(
        max_length=32,
        unique=True,
        default=public_token,
        editable=False,
        help_text="Appears in the rater link; reveals nothing else about the study.",
    )
    viewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="shared_studies",
        help_text="Colleagues who may see this study, its results and exports, read-only.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Images and raters (docs/hype-method.md gives every default and why).
    real_fraction = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of real images in every block; raters are told it.",
    )
    raters_per_model = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)])
    qualification_trials = models.PositiveIntegerField(
        default=100, help_text="Untimed qualification images before the task; 0 skips it."
    )
    qualification_pass = models.FloatField(
        default=0.65,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share correct needed to pass the qualification.",
    )
    feedback = models.CharField(
        max_length=16,
        choices=Feedback.choices,
        default=Feedback.EVERY_TRIAL,
        help_text="When the rater is told whether an answer was correct.",
    )

    # HYPE_time.
    time_blocks = models.PositiveIntegerField(default=3, validators=[MinValueValidator(1)])
    time_trials_per_block = models.PositiveIntegerField(
        default=150, validators=[MinValueValidator(1)]
    )
    staircase_run_length = models.PositiveIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="Correct answers in a row before the exposure drops.",
    )
    staircase_step_down_ms = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)]
    )
    staircase_step_up_ms = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1)]
    )
    staircase_start_ms = models.PositiveIntegerField(default=500)
    staircase_floor_ms = models.PositiveIntegerField(default=100)
    staircase_ceiling_ms = models.PositiveIntegerField(default=1000)
    countdown_step_ms = models.PositiveIntegerField(
        default=500, help_text="Duration of each number of the 3-2-1 countdown."
    )
    mask_count = models.PositiveIntegerField(default=4)
    mask_ms = models.PositiveIntegerField(default=30)
    threshold_burn_in = models.PositiveIntegerField(
        default=0, help_text="Trials at the start of a block left out of its modal exposure."
    )
    threshold_tie_rule = models.CharField(
        max_length=8, choices=TieRule.choices, default=TieRule.MEAN
    )
    time_score = models.CharField(
        max_length=8,
        choices=TimeScore.choices,
        default=TimeScore.MODE,
        db_default=TimeScore.MODE,
        help_text="Which HYPE_time score is the study's headline (both are always computed).",
    )

    # HYPE_inf.
    inf_trials = models.PositiveIntegerField(default=100, validators=[MinValueValidator(2)])

    # Display: every image of a study is brought to this size at import (None until set).
    display_width = models.PositiveIntegerField(null=True, blank=True)
    display_height = models.PositiveIntegerField(null=True, blank=True)
    display_css_px = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(16), MaxValueValidator(4096)],
        help_text="How large the images appear on screen, in CSS pixels along their longer "
        "side; empty: 256, or the images' own size if larger.",
    )

    # A rater's life (docs/raters.md).
    idle_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1)],
        help_text="Minutes without an answer after which a session is abandoned and its "
        "place given to someone else.",
    )
    close_when_full = models.BooleanField(
        default=False, help_text="Close the study once every model has its target of raters."
    )
    # Exclusion rules, each off while empty (the paper excluded no one after qualifying).
    exclude_hidden_share = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Exclude a rater when more than this share of their task answers came "
        "while the page was hidden.",
    )
    exclude_timing_share = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Exclude a rater when more than this share of their timed answers were "
        "shown more than a frame off, or without a measured duration.",
    )
    exclude_fast_streak = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(2)],
        help_text="Exclude a rater who gave this many answers in a row faster than 150 ms.",
    )
    exclude_same_key_streak = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(2)],
        help_text="Exclude a rater who pressed the same key this many times in a row.",
    )
    exclude_unmeasured_refresh = models.BooleanField(
        default=False,
        help_text="Exclude a rater whose display's refresh rate could not be measured.",
    )

    # Statistics.
    bootstrap_resamples = models.PositiveIntegerField(
        default=10_000, validators=[MinValueValidator(100)]
    )
    confidence = models.FloatField(
        default=0.95, validators=[MinValueValidator(0.5), MaxValueValidator(0.999)]
    )
    bootstrap_seed = models.PositiveIntegerField(default=0)
    interval_method = models.CharField(
        max_length=16,
        choices=IntervalMethod.choices,
        default=IntervalMethod.PERCENTILE,
        db_default=IntervalMethod.PERCENTILE,
        help_text="How every bootstrap interval of the study is read from its resamples.",
    )

    # What raters are told and paid (the rater pages show these; docs/recruiting.md).
    instructions = models.TextField(
        blank=True, help_text="Shown on the landing page, before consent; empty: none."
    )
    consent_text = models.TextField(
        blank=True,
        help_text="What a rater agrees to; empty: the default, which states what is stored.",
    )
    estimated_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="How long the study takes; empty: estimated from it."
    )
    contact = models.CharField(
        max_length=300, blank=True, help_text="Who raters may write to about the study."
    )
    currency = models.CharField(
        max_length=3, default="USD", help_text="ISO 4217 code of the pay below, e.g. USD, GBP."
    )
    pay_base_cents = models.PositiveIntegerField(
        default=0, help_text="Pay for taking part, in cents (hundredths of the currency)."
    )
    pay_per_correct_cents = models.PositiveIntegerField(
        default=0, help_text="Bonus per correct task answer, in cents (the paper: 2)."
    )

    # One completion code per outcome, as Prolific expects; editable to match the platform.
    code_completed = models.CharField(max_length=32, default=completion_code)
    code_screened_out = models.CharField(
        max_length=32,
        default=completion_code,
        help_text="For raters who failed the qualification (or were screened out otherwise).",
    )
    code_no_consent = models.CharField(max_length=32, default=completion_code)
    code_full = models.CharField(
        max_length=32,
        default=completion_code,
        help_text="For raters who arrive when the study is full or closed.",
    )
    code_device = models.CharField(
        max_length=32,
        default=completion_code,
        help_text="For raters whose device cannot take the study (no keyboard and mouse, a "
        "window too small for the images, or no measurable refresh rate).",
    )

    # Studies whose raters must be different people, or who share a qualified pool.
    group = models.ForeignKey(
        "StudyGroup",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="studies",
        help_text="The group of studies this one belongs to (docs/raters.md).",
    )

    # The study on the crowd platforms, once published there.
    prolific_study_id = models.CharField(max_length=64, blank=True)
    mturk_hit_id = models.CharField(max_length=64, blank=True)
    mturk_qualification_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="The qualification every worker who starts is given, so nobody takes part twice.",
    )
    mturk_sandbox = models.BooleanField(
        default=False, help_text="The HIT is on MTurk's sandbox, not its marketplace."
    )

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(real_fraction__gte=0) & Q(real_fraction__lte=1),
                name="study_real_fraction_in_unit_interval",
            ),
            models.CheckConstraint(
                condition=Q(qualification_pass__gte=0) & Q(qualification_pass__lte=1),
                name="study_qualification_pass_in_unit_interval",
            ),
            models.CheckConstraint(
                condition=Q(staircase_floor_ms__lte=models.F("staircase_start_ms"))
                & Q(staircase_start_ms__lte=models.F("staircase_ceiling_ms")),
                name="study_staircase_start_within_bounds",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def task_blocks(self) -> tuple[int, int]:
        """(number of task blocks, trials per task block): HYPE_inf is one untimed block."""
        if self.method == self.Method.INF:
            return 1, self.inf_trials
        return self.time_blocks, self.time_trials_per_block

    @property
    def trials_per_rater(self) -> int:
        """Every trial a rater who completes the study answers: qualification and task."""
        blocks, per_block = self.task_blocks
        return self.qualification_trials + blocks * per_block

    @property
    def score_unit(self) -> str:
        """What a score of this study is: "ms" (HYPE_time, the exposure threshold) or "error"
        (HYPE_inf, the share of wrong answers as a fraction)."""
        return "error" if self.method == self.Method.INF else "ms"

    def reals_in(self, trials: int) -> int:
        """How many of a block's `trials` show real images (the rest are fakes)."""
        return round(trials * self.real_fraction)

    def staircase_rule(self) -> StaircaseRule:
        """The study's HYPE_time staircase (hype.science.staircase)."""
        return StaircaseRule(
            run_length=self.staircase_run_length,
            step_down_ms=self.staircase_step_down_ms,
            step_up_ms=self.staircase_step_up_ms,
            start_ms=self.staircase_start_ms,
            floor_ms=self.staircase_floor_ms,
            ceiling_ms=self.staircase_ceiling_ms,
        )


# What a study tells and pays raters, and where it is published: recruiting, not protocol.
RATER_TEXT_FIELDS = (
    "instructions",
    "consent_text",
    "estimated_minutes",
    "contact",
    "currency",
    "pay_base_cents",
    "pay_per_correct_cents",
    "code_completed",
    "code_screened_out",
    "code_no_consent",
    "code_full",
    "code_device",
)
PLATFORM_FIELDS = ("prolific_study_id", "mturk_hit_id", "mturk_qualification_id", "mturk_sandbox")
RECRUITING_FIELDS = RATER_TEXT_FIELDS + PLATFORM_FIELDS
# Study fields that are not protocol parameters: who and what the study is (its method is
# chosen apart from its parameters), what the database and the server record about it, and
# its recruiting.
NOT_PARAMETERS = frozenset(
    {
        "id",
        "owner",
        "name",
        "method",
        "status",
        "public_id",
        "created_at",
        "updated_at",
        "group",
        *RECRUITING_FIELDS,
    }
)
# Every protocol parameter of a study, in field order: what an import takes, the API shows
# and changes, and the bundle export records (docs/hype-method.md gives their defaults).
PROTOCOL_PARAMETERS = tuple(
    field.name for field in Study._meta.concrete_fields if field.name not in NOT_PARAMETERS
)


class StudyGroup(models.Model):
    """Studies whose raters are linked: in an exclusive group nobody takes part in two of its
    studies (HYPE's raters are independent across models and methods); in a qualified pool a
    rater who passed the qualification in one study skips it in the group's later studies for
    a number of days (the paper's retainer)."""

    class Kind(models.TextChoices):
        EXCLUSIVE = "exclusive", "Exclusive: nobody takes part in two of its studies"
        POOL = "pool", "Qualified pool: who passed the qualification keeps it"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_groups"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.EXCLUSIVE)
    qualification_days = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1)],
        help_text="Qualified pool: for how many days a passed qualification is kept.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="group_name_unique_per_owner")
        ]

    def __str__(self) -> str:
        return self.name


class GenerativeModel(models.Model):
    """A generative model under evaluation in one study (never shown to raters)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "name"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="model_name_unique_per_study")
        ]

    def __str__(self) -> str:
        return self.name


class Image(models.Model):
    """A stored image: real, fake from one model, or a mask. Served under public_id only."""

    class Role(models.TextChoices):
        TASK = "task", "Task"
        QUALIFICATION = "qualification", "Qualification"
        MASK = "mask", "Mask"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="images")
    model = models.ForeignKey(
        GenerativeModel,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="images",
        help_text="The model that made this image; empty if real or a mask.",
    )
    is_real = models.BooleanField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.TASK)
    public_id = models.CharField(max_length=32, unique=True, default=public_token, editable=False)
    file = models.FileField(upload_to=image_upload_to, max_length=255)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    original_name = models.CharField(
        max_length=500, blank=True, help_text="The researcher's file name; never sent to raters."
    )
    changes = models.JSONField(
        default=dict, blank=True, help_text="What normalisation changed at import."
    )
    shown_count = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text="Trials drawn with this image so far (each block draws the least shown).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "sha256"], name="image_unique_content_per_study"
            ),
            # Real images and masks have no model; a fake has exactly one.
            models.CheckConstraint(
                condition=(Q(is_real=True) & Q(model__isnull=True) & ~Q(role="mask"))
                | (Q(is_real=False) & Q(model__isnull=False) & ~Q(role="mask"))
                | (Q(is_real=False) & Q(model__isnull=True) & Q(role="mask")),
                name="image_label_matches_model",
            ),
        ]
        indexes = [models.Index(fields=["study", "role", "is_real", "model"])]

    def __str__(self) -> str:
        return self.public_id


class RaterSession(models.Model):
    """One rater's pass through one study, assigned to one model (between-subjects)."""

    class Source(models.TextChoices):
        LINK = "link", "Study link"
        PROLIFIC = "prolific", "Prolific"
        MTURK = "mturk", "MTurk"

    class Status(models.TextChoices):
        CONSENTED = "consented", "Consented"
        QUALIFYING = "qualifying", "Qualifying"
        FAILED_QUALIFICATION = "failed_qualification", "Failed qualification"
        IN_TASK = "in_task", "In task"
        COMPLETED = "completed", "Completed"
        NO_PLACE = "no_place", "Qualified; no place left"
        ABANDONED = "abandoned", "Abandoned"
        EXCLUDED = "excluded", "Excluded"

    # Sessions still under way (they hold a place but are not scored yet), and sessions that
    # have ended, whatever the reason.
    IN_PROGRESS = (Status.CONSENTED, Status.QUALIFYING, Status.IN_TASK)
    ENDED = (
        Status.COMPLETED,
        Status.FAILED_QUALIFICATION,
        Status.NO_PLACE,
        Status.EXCLUDED,
        Status.ABANDONED,
    )

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="rater_sessions")
    model = models.ForeignKey(
        GenerativeModel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rater_sessions",
    )
    external_id = models.CharField(
        max_length=200, help_text="Prolific/MTurk worker id, or a random id for link raters."
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.LINK)
    public_id = models.CharField(
        max_length=32,
        unique=True,
        default=public_token,
        editable=False,
        help_text="Pseudonymous rater id used in exports.",
    )
    resume_token = models.CharField(
        max_length=64,
        unique=True,
        default=public_token,
        editable=False,
        help_text="Secret the rater's browser holds to resume its session.",
    )
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.CONSENTED)
    user_agent = models.CharField(max_length=500, blank=True)
    screen_width = models.PositiveIntegerField(null=True, blank=True)
    screen_height = models.PositiveIntegerField(null=True, blank=True)
    device_pixel_ratio = models.FloatField(null=True, blank=True)
    refresh_ms = models.FloatField(
        null=True, blank=True, help_text="Refresh interval measured at the start of the session."
    )
    qualification_correct = models.PositiveIntegerField(null=True, blank=True)
    qualification_total = models.PositiveIntegerField(null=True, blank=True)
    completion_code = models.CharField(max_length=16, default=completion_code, editable=False)
    platform_study_id = models.CharField(
        max_length=200, blank=True, help_text="Prolific's STUDY_ID, or MTurk's hitId."
    )
    platform_session_id = models.CharField(
        max_length=200, blank=True, help_text="Prolific's SESSION_ID, or MTurk's assignmentId."
    )
    submit_to = models.CharField(
        max_length=200,
        blank=True,
        help_text="MTurk's turkSubmitTo: the worker site the finished assignment is posted to.",
    )
    approved_at = models.DateTimeField(
        null=True, blank=True, help_text="When the crowd platform approved the submission."
    )
    browser_id = models.CharField(
        max_length=64,
        blank=True,
        help_text="Random id of the browser the session was started in (kept in its cookie).",
    )
    started_at = models.DateTimeField(auto_now_add=True)
    last_activity_at = models.DateTimeField(
        default=timezone.now, help_text="The session's start, then its latest answer."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(
        max_length=200,
        blank=True,
        help_text="Why the session ended without finishing (idle, returned on the platform...).",
    )
    qualified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the rater passed the qualification."
    )
    qualification_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The session of another study of the group whose passed qualification this "
        "one kept (qualified pool), instead of taking it again.",
    )
    # An exclusion changes what is scored, never what is kept, and can be undone.
    excluded_at = models.DateTimeField(null=True, blank=True)
    excluded_reason = models.TextField(blank=True)
    excluded_by = models.CharField(
        max_length=150, blank=True, help_text="The researcher's user name, or 'rule'."
    )
    status_before_exclusion = models.CharField(max_length=24, blank=True)
    exclusion_undone_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The researcher undid an exclusion; the study's rules leave the rater in.",
    )
    # What the rater path reads on every message, kept on the session so that a trial costs
    # the same however many answers the study holds (experiments.rating.sessions). The new
    # columns carry database defaults too, so that a worker still running the code before them
    # can insert rows while an upgrade migrates (docs/deployment.md, "Upgrades").
    current_trial = models.ForeignKey(
        "Trial",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The rater's first unanswered trial (empty: none drawn yet, or all answered).",
    )
    answered_count = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Answers stored so far."
    )
    last_choice = models.CharField(
        max_length=4, blank=True, db_default="", help_text="The latest answer."
    )
    same_choice_run = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text="How many answers in a row, up to the latest, were last_choice.",
    )
    last_answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "external_id"], name="one_session_per_rater_per_study"
            ),
            models.UniqueConstraint(
                fields=["study", "browser_id"],
                condition=~Q(browser_id=""),
                name="one_session_per_browser_per_study",
            ),
        ]
        indexes = [
            models.Index(fields=["study", "model", "status"]),
            models.Index(fields=["study", "status", "last_activity_at"]),
            models.Index(fields=["browser_id"]),
            models.Index(fields=["external_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.get_status_display()})"


class Block(models.Model):
    """A run of trials within a session: the qualification, or one task block."""

    class Kind(models.TextChoices):
        QUALIFICATION = "qualification", "Qualification"
        TASK = "task", "Task"

    session = models.ForeignKey(RaterSession, on_delete=models.CASCADE, related_name="blocks")
    index = models.PositiveIntegerField(help_text="Position of the block in the session, from 0.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    timed = models.BooleanField(default=False)
    trial_count = models.PositiveIntegerField()
    staircase_state = models.JSONField(
        null=True,
        blank=True,
        help_text="hype.science.staircase.StaircaseState of the next trial (timed blocks).",
    )
    started_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["session", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "index"], name="one_block_per_session_index"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session.public_id} block {self.index} ({self.kind})"


class Trial(models.Model):
    """One image served to a rater: what the server decided before the answer."""

    session = models.ForeignKey(RaterSession, on_delete=models.CASCADE, related_name="trials")
    block = models.ForeignKey(Block, on_delete=models.CASCADE, related_name="trials")
    public_id = models.CharField(
        max_length=32,
        unique=True,
        default=public_token,
        editable=False,
        help_text="Opaque id the browser names the trial (and fetches its image) by.",
    )
    index = models.PositiveIntegerField(help_text="Position of the trial in the session, from 0.")
    position = models.PositiveIntegerField(help_text="Position of the trial in its block, from 0.")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="trials")
    is_real = models.BooleanField()
    requested_ms = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Exposure the staircase asked for, fixed when the image was presented; empty "
        "when untimed.",
    )
    frames = models.PositiveIntegerField(
        null=True, blank=True, help_text="Exposure in display frames at the session's refresh rate."
    )
    presented_at = models.DateTimeField(null=True, blank=True)
    masks = models.JSONField(
        default=list,
        db_default=Value([], output_field=models.JSONField()),
        blank=True,
        help_text="Public ids of the backward masks shown after the image (timed trials), "
        "drawn with the block.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "index"], name="one_trial_per_session_index"
            ),
            models.UniqueConstraint(
                fields=["block", "position"], name="one_trial_per_block_position"
            ),
            models.UniqueConstraint(fields=["session", "image"], name="image_once_per_session"),
        ]

    def __str__(self) -> str:
        return f"{self.session.public_id} trial {self.index}"


class Answer(models.Model):
    """The rater's answer to one trial, with what the browser measured. At most one per trial."""

    class Choice(models.TextChoices):
        REAL = "real", "Real"
        FAKE = "fake", "Fake"

    # A one-to-one key: the database itself refuses a second answer to a trial.
    trial = models.OneToOneField(Trial, on_delete=models.CASCADE, related_name="answer")
    response = models.CharField(max_length=4, choices=Choice.choices)
    correct = models.BooleanField()
    rt_ms = models.FloatField(help_text="From the end of the masks to the answer.")
    shown_ms = models.FloatField(
        null=True, blank=True, help_text="Measured on-screen duration, from frame timestamps."
    )
    mask_ms = models.FloatField(null=True, blank=True, help_text="Measured mask duration.")
    refresh_ms = models.FloatField(null=True, blank=True)
    page_hidden = models.BooleanField(
        default=False, help_text="The page lost visibility during the trial."
    )
    flags = models.JSONField(default=list, blank=True)
    answered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trial"]
        constraints = [
            models.CheckConstraint(condition=Q(rt_ms__gte=0), name="answer_rt_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.trial}: {self.response}"


TAG_MAX_LENGTH = 64


class ImageTag(models.Model):
    """One tag of an image (an attribute, a class, a truncation level), given at import by a
    sub-folder or tags.csv; HYPE is also reported per tag (docs/hype-method.md). A table, not
    a JSON list, so that "the images tagged x" is one indexed query on SQLite and PostgreSQL."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=TAG_MAX_LENGTH)

    class Meta:
        ordering = ["image", "name"]
        constraints = [
            models.UniqueConstraint(fields=["image", "name"], name="tag_once_per_image"),
        ]
        indexes = [models.Index(fields=["name"])]

    def __str__(self) -> str:
        return f"{self.image.public_id}: {self.name}"


class ImageFeatures(models.Model):
    """Inception pool3 features of one image, computed once per network (hype.features)."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="features")
    weights_sha256 = models.CharField(max_length=64, help_text="The network that computed them.")
    vector = models.BinaryField(help_text="2048 float32 values, little-endian, as computed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["image", "weights_sha256"], name="features_once_per_image_and_network"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.image.public_id} features ({self.weights_sha256[:12]})"


class Baseline(models.Model):
    """Automated metrics of one model's fakes against a reference: the study's own real
    images (FID, KID, precision, recall) or reference statistics from a .npz file (FID only);
    and, on the row against the study's real images, the fakes' Inception Score, which needs
    no reference but weights with the classifier (null without). Recomputing replaces the
    row."""

    STUDY_REAL_IMAGES = "study real images"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="baselines")
    model = models.ForeignKey(GenerativeModel, on_delete=models.CASCADE, related_name="baselines")
    reference = models.CharField(
        max_length=300,
        default=STUDY_REAL_IMAGES,
        help_text="What the fakes were compared with: the study's real images, or a .npz file.",
    )
    fid = models.FloatField()
    kid_mean = models.FloatField(null=True, blank=True)
    kid_sd = models.FloatField(null=True, blank=True)
    kid_subsets = models.PositiveIntegerField(null=True, blank=True)
    kid_subset_size = models.PositiveIntegerField(null=True, blank=True)
    precision = models.FloatField(null=True, blank=True)
    recall = models.FloatField(null=True, blank=True)
    neighbours = models.PositiveIntegerField(
        null=True, blank=True, help_text="k of precision/recall"
    )
    inception_score = models.FloatField(
        null=True,
        blank=True,
        help_text="Inception Score of the fakes, mean over splits; null when the weights "
        "have no classifier.",
    )
    inception_score_sd = models.FloatField(
        null=True, blank=True, help_text="SD of the Inception Score over splits."
    )
    n_real = models.PositiveIntegerField(help_text="Images (or vectors) on the reference side.")
    n_fake = models.PositiveIntegerField()
    weights_origin = models.CharField(max_length=40)
    weights_sha256 = models.CharField(max_length=64)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["study", "model__name", "reference"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "reference"], name="one_baseline_per_model_and_reference"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model.name} vs {self.reference}: FID {self.fid:.2f}"


class Payment(models.Model):
    """Money for one rater through their crowd platform: the base pay (approving the
    submission) or the bonus. One per rater and kind, so nothing is ever paid twice: a payment
    is recorded before the platform is asked, and the platform's answer moves it on."""

    class Kind(models.TextChoices):
        BASE = "base", "Base pay (approval)"
        BONUS = "bonus", "Bonus"

    class Status(models.TextChoices):
        PREPARED = "prepared", "Prepared, not sent"
        SENT = "sent", "Sent; the platform's answer is not known"
        PAID = "paid", "Paid"

    session = models.ForeignKey(RaterSession, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PREPARED)
    request_token = models.CharField(
        max_length=64,
        unique=True,
        help_text="Names this payment to the platform (MTurk's UniqueRequestToken), so that a "
        "resent request pays nothing twice.",
    )
    platform_batch_id = models.CharField(
        max_length=64, blank=True, help_text="Prolific's bulk bonus payment that holds it."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["session", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["session", "kind"], name="one_payment_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.session.public_id} {self.kind} {self.amount_cents} {self.currency}"


class PlatformToken(models.Model):
    """A researcher's API token for a crowd platform (Prolific). Secret: never exported, never
    shown back in full (the admin and the pages show its last four characters)."""

    class Platform(models.TextChoices):
        PROLIFIC = "prolific", "Prolific"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="platform_tokens"
    )
    platform = models.CharField(max_length=16, choices=Platform.choices)
    token = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "platform"], name="one_token_per_platform"),
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} token …{self.token[-4:]} of {self.owner}"


class StudyImport(models.Model):
    """A study being imported from uploaded zips in the background, so the researcher's page
    can show its progress; it keeps what the import reported."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    public_id = models.CharField(max_length=32, unique=True, default=public_token, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_imports"
    )
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    study = models.ForeignKey(
        Study, on_delete=models.SET_NULL, null=True, blank=True, related_name="imports"
    )
    summary = models.TextField(blank=True)
    problems = models.JSONField(default=list, blank=True)
    skipped = models.JSONField(
        default=list, blank=True, help_text="[file, reason] of every file the import refused."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import of {self.name} ({self.status})"
