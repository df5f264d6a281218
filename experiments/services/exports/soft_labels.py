"""soft_labels.csv: one row per task image, how often the raters a study's result counts judged
it real (its soft label, as Stein et al., NeurIPS 2023, release theirs) and how often it fooled
them. Its columns are declared once, below, with how each cell is read and written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from experiments.models import Study
from experiments.services.exports.cells import boolean, csv_chunks, number, text, untrusted_text
from experiments.services.subgroups import SoftLabel, image_soft_labels


def _names(value: str) -> str:
    # A file name or a tag is the researcher's text: never run as a spreadsheet formula.
    return untrusted_text(value or "")


# (column, how it is read from the image's SoftLabel, how its cells are written), in order.
_COLUMNS: tuple[tuple[str, Callable[[SoftLabel], Any], Callable[[Any], str]], ...] = (
    ("image_id", lambda s: s.image_public_id, text),
    ("file_name", lambda s: s.file_name, _names),
    ("model", lambda s: s.model, _names),
    ("is_real", lambda s: s.is_real, boolean),
    ("tags", lambda s: ";".join(s.tags), _names),
    ("answers", lambda s: s.answers, text),
    ("judged_real", lambda s: s.judged_real, text),
    ("share_judged_real", lambda s: s.share_judged_real, number),
    ("share_fooled", lambda s: s.share_fooled, number),
)
SOFT_LABEL_COLUMNS = ("study", *(name for name, _, _ in _COLUMNS))


def soft_label_rows(study: Study) -> Iterator[tuple[Any, ...]]:
    study_id = study.public_id
    for label in image_soft_labels(study):
        yield (study_id, *(read(label) for _, read, _ in _COLUMNS))


def soft_labels_csv(study: Study) -> Iterator[str]:
    return csv_chunks(
        SOFT_LABEL_COLUMNS,
        soft_label_rows(study),
        formats=[text, *(write for _, _, write in _COLUMNS)],
    )
