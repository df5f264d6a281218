"""trials.csv: one row per answered trial, long format (docs/data-dictionary.md), of every
rater, excluded or not. Its columns are declared once, below, each with the field it is read
from and how its cells are written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from experiments.models import Answer, Study
from experiments.services.exports.cells import (
    DB_CHUNK_ROWS,
    boolean,
    csv_chunks,
    flag_list,
    iso_utc,
    number,
    text,
    untrusted_text,
)

EXCLUDED = "excluded"


def _excluded(status: str) -> str:
    return boolean(status == EXCLUDED)


def _reason(value: str | None) -> str:
    # A reason is typed by a researcher: never run as a spreadsheet formula either.
    return untrusted_text(value or "")


@dataclass(frozen=True)
class Column:
    """One column of trials.csv: its name, the Answer field it is read from (None: the
    study's public id), and how its cells are written (typed: a hundred thousand rows make a
    general cell() function's type tests count)."""

    name: str
    source: str | None
    format: Callable[[Any], str]


TRIAL_COLUMNS = (
    Column("study", None, text),
    Column("model", "trial__session__model__name", text),
    Column("rater", "trial__session__public_id", text),
    Column("source", "trial__session__source", text),
    Column("block", "trial__block__index", text),
    Column("block_kind", "trial__block__kind", text),
    Column("trial_index", "trial__index", text),
    Column("image_id", "trial__image__public_id", text),
    Column("is_real", "trial__is_real", boolean),
    Column("requested_ms", "trial__requested_ms", text),
    Column("frames", "trial__frames", text),
    Column("shown_ms", "shown_ms", number),
    Column("mask_ms", "mask_ms", number),
    Column("refresh_ms", "refresh_ms", number),
    Column("response", "response", text),
    Column("correct", "correct", boolean),
    Column("rt_ms", "rt_ms", number),
    Column("page_hidden", "page_hidden", boolean),
    Column("flags", "flags", flag_list),
    Column("presented_at", "trial__presented_at", iso_utc),
    Column("answered_at", "answered_at", iso_utc),
    # The rater's exclusion, on each of their rows (no row is ever left out for it).
    Column("rater_status", "trial__session__status", text),
    Column("excluded", "trial__session__status", _excluded),
    Column("excluded_reason", "trial__session__excluded_reason", _reason),
    Column("excluded_by", "trial__session__excluded_by", _reason),
    Column("excluded_at", "trial__session__excluded_at", iso_utc),
)
TRIAL_COLUMN_NAMES = tuple(column.name for column in TRIAL_COLUMNS)
# The first column is the study, the same on every row; the others are read from the answers.
_READ = tuple(column.source for column in TRIAL_COLUMNS[1:])


def trial_rows(study: Study) -> Iterator[tuple[Any, ...]]:
    """One row per answered trial of the study (TRIAL_COLUMNS), rater by rater in the order
    they started, each in trial order. One query, read in chunks."""
    answers = (
        Answer.objects.filter(trial__session__study=study)
        .order_by("trial__session_id", "trial__index")
        .values_list(*_READ)
        .iterator(chunk_size=DB_CHUNK_ROWS)
    )
    study_id = study.public_id
    for row in answers:
        yield (study_id, *row)


def trials_csv(study: Study) -> Iterator[str]:
    return csv_chunks(
        TRIAL_COLUMN_NAMES, trial_rows(study), formats=[c.format for c in TRIAL_COLUMNS]
    )
