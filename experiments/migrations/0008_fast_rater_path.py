"""What the rater path reads on every message moves onto the rows it already locks: each
session's current trial, answer count and answer streak, each image's shown count, and each
trial's masks (drawn with its block). This fills them in for the sessions and images that exist,
from their trials and answers; going back drops the columns and loses nothing.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count

def counters_fill(apps, schema_editor):
    Image = apps.get_model("experiments", "Image")
    RaterSession = apps.get_model("experiments", "RaterSession")
    Trial = apps.get_model("experiments", "Trial")
    Answer = apps.get_model("experiments", "Answer")
    for image_id, shown in (
        Trial.objects.values("image_id").annotate(n=Count("id")).values_list("image_id", "n")
    ):
        Image.objects.filter(pk=image_id).update(shown_count=shown)
    for session in RaterSession.objects.filter(trials__isnull=False).distinct().iterator():
        current = (
            Trial.objects.filter(session=session, answer__isnull=True).order_by("index").first()
        )
        latest = (
            Answer.objects.filter(trial__session=session)
            .order_by("-trial__index")
            .values_list("response", "answered_at")
        )
        last_choice, last_answered_at, run = "", None, 0
        for response, answered_at in latest.iterator():
            if not run:
                last_choice, last_answered_at = response, answered_at
            elif response != last_choice:
                break
            run += 1
        RaterSession.objects.filter(pk=session.pk).update(
            current_trial=current,
            answered_count=Answer.objects.filter(trial__session=session).count(),
            last_choice=last_choice,
            same_choice_run=run,
            last_answered_at=last_answered_at,
        )


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0007_served_images'),
    ]

    operations = [
        migrations.AddField(
            model_name='image',
            name='shown_count',
            field=models.PositiveIntegerField(db_default=0, default=0, help_text='Trials drawn with this image so far (each block draws the least shown).'),
        ),
        migrations.AddField(
            model_name='ratersession',
            name='answered_count',
            field=models.PositiveIntegerField(db_default=0, default=0, help_text='Answers stored so far.'),
        ),
        migrations.AddField(
            model_name='ratersession',
            name='current_trial',
            field=models.ForeignKey(blank=True, help_text="The rater's first unanswered trial (empty: none drawn yet, or all answered).", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='experiments.trial'),
        ),
        migrations.AddField(
            model_name='ratersession',
            name='last_answered_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='ratersession',
            name='last_choice',
            field=models.CharField(blank=True, db_default='', help_text='The latest answer.', max_length=4),
        ),
        migrations.AddField(
            model_name='ratersession',
            name='same_choice_run',
            field=models.PositiveIntegerField(db_default=0, default=0, help_text='How many answers in a row, up to the latest, were last_choice.'),
        ),
        migrations.AddField(
            model_name='trial',
            name='masks',
            field=models.JSONField(blank=True, db_default=models.Value([], output_field=models.JSONField()), default=list, help_text='Public ids of the backward masks shown after the image (timed trials), drawn with the block.'),
        ),
        migrations.AlterField(
            model_name='trial',
            name='requested_ms',
            field=models.PositiveIntegerField(blank=True, help_text='Exposure the staircase asked for, fixed when the image was presented; empty when untimed.', null=True),
        ),
        migrations.RunPython(counters_fill, migrations.RunPython.noop),
    ]
