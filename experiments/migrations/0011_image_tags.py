"""Tags on images (ImageTag): what HYPE is reported per (docs/hype-method.md, "HYPE by
subgroup"). A new table: existing images have no tag, and going back drops it.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0010_study_score_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="ImageTag",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=64)),
                (
                    "image",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="tags",
                        to="experiments.image",
                    ),
                ),
            ],
            options={
                "ordering": ["image", "name"],
                "indexes": [models.Index(fields=["name"], name="experiments_name_ba0242_idx")],
                "constraints": [
                    models.UniqueConstraint(fields=("image", "name"), name="tag_once_per_image")
                ],
            },
        ),
    ]
