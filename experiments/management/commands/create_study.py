"""`manage.py create_study`: import a study from folders of real and generated images.

Every image is normalised (experiments.services.imports); the summary and a leak audit close it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import models

from experiments.management.studies import ProgressBar
from experiments.models import PROTOCOL_PARAMETERS, Study
from experiments.services.imports.audit import study_audit
from experiments.services.imports.parameters import IMPORT_STATUSES
from experiments.services.imports.study import study_create
from experiments.services.problems import InputProblems

# --display-size sets these two.
_DISPLAY_FIELDS = {"display_width", "display_height"}


def _display_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 256x256")
    return int(match[1]), int(match[2])


def _model_spec(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=DIR, e.g. stylegan=data/stylegan")
    return name.strip(), Path(folder.strip())


class Command(BaseCommand):
    help = (
        "Create a study from a folder of real images and one folder per generative model. "
        "Images are decoded, oriented, converted to RGB, stripped of metadata, brought to one "
        "size and re-encoded as PNG under random names; duplicates and unreadable files are "
        "skipped and listed. Nothing is created if the import fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The study's name (researchers see it, raters do not).")
        parser.add_argument("--method", choices=Study.Method.values, default=Study.Method.TIME)
        parser.add_argument("--owner", required=True, metavar="USERNAME")
        parser.add_argument("--real", required=True, type=Path, metavar="DIR")
        parser.add_argument(
            "--model",
            action="append",
            required=True,
            type=_model_spec,
            dest="models",
            metavar="NAME=DIR",
            help="A model and the folder of its images; repeat for every model.",
        )
        parser.add_argument(
            "--qualification-fakes",
            type=Path,
            metavar="DIR",
            help="One subfolder per model name with fakes kept for the qualification only.",
        )
        parser.add_argument(
            "--tags",
            type=Path,
            metavar="CSV",
            help="tags.csv: header file,tag, one row per image and tag; the file relative to "
            "the import root (real/0001.png, stylegan/smiling/0001.png). A sub-folder of a "
            "folder tags its images with its name too (docs/importing.md).",
        )
        parser.add_argument(
            "--display-size",
            type=_display_size,
            metavar="WxH",
            help="Default: the most common size of the fakes.",
        )
        parser.add_argument("--status", choices=IMPORT_STATUSES, default=Study.Status.DRAFT)
        parser.add_argument(
            "--masks",
            type=int,
            default=20,
            metavar="N",
            help="Backward masks to make (HYPE_time only; default 20).",
        )
        parser.add_argument(
            "--seed", type=int, metavar="N", help="Seed the random choices, to reproduce."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parameters = parser.add_argument_group(
            "study parameters (their defaults and meaning: docs/hype-method.md)"
        )
        for name in PROTOCOL_PARAMETERS:
            if name in _DISPLAY_FIELDS:
                continue
            model_field = Study._meta.get_field(name)
            options = {"dest": f"param_{name}", "default": None}
            if isinstance(model_field, models.BooleanField):
                options["action"] = argparse.BooleanOptionalAction
            elif model_field.choices:
                options["choices"] = [value for value, _ in model_field.choices]
            elif isinstance(model_field, models.FloatField):
                options.update(type=float, metavar="X")
            elif isinstance(model_field, models.IntegerField):
                options.update(type=int, metavar="N")
            text = str(model_field.help_text or model_field.verbose_name).rstrip(".")
            default = model_field.get_default()
            default = "none" if default is None else default
            options["help"] = f"{text} (default {default})"
            parameters.add_argument(f"--{name.replace('_', '-')}", **options)
        # Feedback used to be on or off: --no-feedback still turns it off.
        parameters.add_argument(
            "--no-feedback",
            dest="param_feedback",
            action="store_const",
            const=Study.Feedback.NONE,
            help="The same as --feedback none.",
        )

    def handle(self, *args, **options):
        try:
            owner = get_user_model().objects.get(username=options["owner"])
        except get_user_model().DoesNotExist:
            raise CommandError(
                f"--owner: no user named {options['owner']!r} "
                "(create one with `manage.py ensure_researcher`)"
            ) from None
        model_dirs: dict[str, Path] = {}
        for name, folder in options["models"]:
            if name in model_dirs:
                raise CommandError(f"--model: {name!r} is given twice")
            model_dirs[name] = folder
        params = {
            name: options[f"param_{name}"]
            for name in PROTOCOL_PARAMETERS
            if name not in _DISPLAY_FIELDS and options.get(f"param_{name}") is not None
        }
        progress = ProgressBar("Importing", disable=options["no_progress"])

        seed = options["seed"]
        try:
            report = study_create(
                owner=owner,
                name=options["name"],
                method=options["method"],
                real_dir=options["real"],
                model_dirs=model_dirs,
                qualification_fakes_dir=options["qualification_fakes"],
                params=params,
                display_size=options["display_size"],
                masks=options["masks"],
                status=options["status"],
                progress=progress,
                rng=np.random.default_rng(seed) if seed is not None else None,
                tags_csv=options["tags"],
            )
        except InputProblems as failure:
            raise CommandError(
                "The import failed and created nothing:\n"
                + "\n".join(f"  - {problem}" for problem in failure.problems)
            ) from None
        finally:
            progress.close()
        self.stdout.write(report.summary())
        audit = study_audit(study=report.study)
        self.stdout.write(
            f"Leak audit: {audit.verdict.upper()}"
            + "".join(f"\n  - {reason}" for reason in audit.reasons)
        )
        self.stdout.write(
            self.style.SUCCESS(f"Created study {report.study.pk} ({report.study.public_id}).")
        )
