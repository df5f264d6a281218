import django.core.validators
import django.db.models.deletion
import django.utils.timezone
import experiments.models
from django.conf import settings
from django.db import migrations, models


def feedback_to_choice(apps, schema_editor):
    Study = apps.get_model("experiments", "Study")
    Study.objects.filter(feedback=False).update(feedback_when="none")
    Study.objects.filter(feedback=True).update(feedback_when="every_trial")


def feedback_to_boolean(apps, schema_editor):
    Study = apps.get_model("experiments", "Study")
    Study.objects.update(feedback=True)
    Study.objects.filter(feedback_when="none").update(feedback=False)


def sessions_fill(apps, schema_editor):
    """Existing sessions: their latest answer (or their start) is their last activity, and a
    passed qualification was passed when its block was completed."""
    from django.db.models import Max, OuterRef, Subquery

    RaterSession = apps.get_model("experiments", "RaterSession")
    Answer = apps.get_model("experiments", "Answer")
    Block = apps.get_model("experiments", "Block")
    latest = (
        Answer.objects.filter(trial__session=OuterRef("pk"))
        .values("trial__session")
        .annotate(last=Max("answered_at"))
        .values("last")
    )
    for session_id, started, last in RaterSession.objects.annotate(
        last=Subquery(latest)
    ).values_list("id", "started_at", "last"):
        RaterSession.objects.filter(pk=session_id).update(last_activity_at=last or started)
    passed = RaterSession.objects.filter(qualification_total__isnull=False).exclude(
        status="failed_qualification"
    )
    for session in passed.only("id"):
        block = (
            Block.objects.filter(session_id=session.id, kind="qualification")
            .exclude(completed_at=None)
            .first()
        )
        if block is not None:
            RaterSession.objects.filter(pk=session.id).update(qualified_at=block.completed_at)


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0005_recruiting"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="StudyGroup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("exclusive", "Exclusive: nobody takes part in two of its studies"),
                            ("pool", "Qualified pool: who passed the qualification keeps it"),
                        ],
                        default="exclusive",
                        max_length=16,
                    ),
                ),
                (
                    "qualification_days",
                    models.PositiveIntegerField(
                        default=30,
                        help_text="Qualified pool: for how many days a passed qualification is kept.",
                        validators=[django.core.validators.MinValueValidator(1)],
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["name"],
            },
        ),
        migrations.RemoveField(
            model_name="study",
            name="served_image_bytes",
        ),
        migrations.AddField(
            model_name="ratersession",
            name="browser_id",
            field=models.CharField(
                blank=True,
                help_text="Random id of the browser the session was started in (kept in its cookie).",
                max_length=64,
            ),
        ),
        migrations.AddField(
            model_name="ratersession",
            name="end_reason",
            field=models.CharField(
                blank=True,
                help_text="Why the session ended without finishing (idle, returned on the platform...).",
                max_length=200,
            ),
        ),
        migrations.AddField(
            model_name="ratersession",
            name="excluded_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="ratersession",
            name="excluded_by",
            field=models.CharField(
                blank=True, help_text="The researcher's user name, or 'rule'.", max_length=150
            ),
        ),
        migrations.AddField(
            model_name="ratersession",
            name="excluded_reason",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="ratersession",
            name="exclusion_undone_at",
            field=models.DateTimeField(
                blank=True,
                help_text="The researcher undid an exclusion; the study's rules leave the rater in.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="ratersession",
            name="last_activity_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now,
                help_text="The session's start, then its latest answer.",
            ),
        ),
        migrations.AddField(
            model_name="ratersession",
            name="qualification_from",
            field=models.ForeignKey(
                blank=True,
                help_text="The session of another study of the group whose passed qualification this one kept (qualified pool), instead of taking it again.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="experiments.ratersession",
            ),
        ),
        migrations.AddField(
            model_name="ratersession",
            name="qualified_at",
            field=models.DateTimeField(
                blank=True, help_text="When the rater passed the qualification.", null=True
            ),
        ),
        migrations.AddField(
            model_name="ratersession",
            name="status_before_exclusion",
            field=models.CharField(blank=True, max_length=24),
        ),
        migrations.AddField(
            model_name="study",
            name="close_when_full",
            field=models.BooleanField(
                default=False,
                help_text="Close the study once every model has its target of raters.",
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="code_device",
            field=models.CharField(
                default=experiments.models.completion_code,
                help_text="For raters whose device cannot take the study (no keyboard and mouse, a window too small for the images, or no measurable refresh rate).",
                max_length=32,
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="display_css_px",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="How large the images appear on screen, in CSS pixels along their longer side; empty: 256, or the images' own size if larger.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(16),
                    django.core.validators.MaxValueValidator(4096),
                ],
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="exclude_fast_streak",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Exclude a rater who gave this many answers in a row faster than 150 ms.",
                null=True,
                validators=[django.core.validators.MinValueValidator(2)],
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="exclude_hidden_share",
            field=models.FloatField(
                blank=True,
                help_text="Exclude a rater when more than this share of their task answers came while the page was hidden.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(1.0),
                ],
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="exclude_same_key_streak",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Exclude a rater who pressed the same key this many times in a row.",
                null=True,
                validators=[django.core.validators.MinValueValidator(2)],
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="exclude_timing_share",
            field=models.FloatField(
                blank=True,
                help_text="Exclude a rater when more than this share of their timed answers were shown more than a frame off, or without a measured duration.",
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(1.0),
                ],
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="exclude_unmeasured_refresh",
            field=models.BooleanField(
                default=False,
                help_text="Exclude a rater whose display's refresh rate could not be measured.",
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="idle_minutes",
            field=models.PositiveIntegerField(
                default=30,
                help_text="Minutes without an answer after which a session is abandoned and its place given to someone else.",
                validators=[django.core.validators.MinValueValidator(1)],
            ),
        ),
        migrations.AlterField(
            model_name="ratersession",
            name="status",
            field=models.CharField(
                choices=[
                    ("consented", "Consented"),
                    ("qualifying", "Qualifying"),
                    ("failed_qualification", "Failed qualification"),
                    ("in_task", "In task"),
                    ("completed", "Completed"),
                    ("no_place", "Qualified; no place left"),
                    ("abandoned", "Abandoned"),
                    ("excluded", "Excluded"),
                ],
                default="consented",
                max_length=24,
            ),
        ),
        # Feedback was on or off; it becomes when it is given. On stays "after every answer".
        migrations.AddField(
            model_name="study",
            name="feedback_when",
            field=models.CharField(
                choices=[
                    ("every_trial", "After every answer (the paper's HYPE_time)"),
                    ("qualification", "In the qualification only"),
                    ("none", "Never"),
                ],
                default="every_trial",
                help_text="When the rater is told whether an answer was correct.",
                max_length=16,
            ),
        ),
        migrations.RunPython(feedback_to_choice, feedback_to_boolean),
        migrations.RemoveField(model_name="study", name="feedback"),
        migrations.RenameField(model_name="study", old_name="feedback_when", new_name="feedback"),
        migrations.RunPython(sessions_fill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="ratersession",
            index=models.Index(
                fields=["study", "status", "last_activity_at"],
                name="experiments_study_i_b232dc_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="ratersession",
            index=models.Index(fields=["browser_id"], name="experiments_browser_826d8c_idx"),
        ),
        migrations.AddIndex(
            model_name="ratersession",
            index=models.Index(fields=["external_id"], name="experiments_externa_85a428_idx"),
        ),
        migrations.AddConstraint(
            model_name="ratersession",
            constraint=models.UniqueConstraint(
                condition=models.Q(("browser_id", ""), _negated=True),
                fields=("study", "browser_id"),
                name="one_session_per_browser_per_study",
            ),
        ),
        migrations.AddField(
            model_name="studygroup",
            name="owner",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="study_groups",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="study",
            name="group",
            field=models.ForeignKey(
                blank=True,
                help_text="The group of studies this one belongs to (docs/raters.md).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="studies",
                to="experiments.studygroup",
            ),
        ),
        migrations.AddConstraint(
            model_name="studygroup",
            constraint=models.UniqueConstraint(
                fields=("owner", "name"), name="group_name_unique_per_owner"
            ),
        ),
    ]
