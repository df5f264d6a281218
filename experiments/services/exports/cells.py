"""How the exports write their cells and chunk their CSV: one cell format per type (empty for
missing, true/false, the shortest exact float, ISO 8601 UTC), text a spreadsheet must not run
as a formula, and CSV text handed out a chunk at a time so memory does not grow with a study."""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

# Rows fetched from the database per round trip, and CSV rows per chunk handed to the
# response: both fixed, so an export's memory does not grow with the study.
DB_CHUNK_ROWS = 2_000
# A session row is larger and a rater's answers are read next to it: fewer at a time.
SESSION_CHUNK_ROWS = 100
CSV_CHUNK_ROWS = 500


# Characters a spreadsheet reads as the start of a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# --- Cells ------------------------------------------------------------------------------


def iso_utc(value: dt.datetime | None) -> str:
    """ISO 8601 in UTC with microseconds and a Z, e.g. 2024-05-01T12:00:00.250000Z."""
    if value is None:
        return ""
    utc = value.astimezone(dt.UTC)
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")


def cell(value: Any) -> str:
    """One CSV cell: empty for missing (None, NaN), true/false, shortest exact float."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # repr is the shortest string that reads back as the same float: full precision.
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return str(value)


def text(value: Any) -> str:
    return "" if value is None else str(value)


def boolean(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def number(value: float | None) -> str:
    if value is None:
        return ""
    return repr(value) if math.isfinite(value) else ""


def flag_list(value: list[str] | None) -> str:
    return ";".join(value) if value else ""


def untrusted_text(value: str) -> str:
    # Raters choose their browser's user agent; a leading "=" would run as a formula when
    # the researcher opens the CSV in a spreadsheet. Real user agents never start so.
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


class _Line:
    """A file-like target for csv.writer that hands back the line instead of storing it."""

    def write(self, line: str) -> str:
        return line


def csv_chunks(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    formats: Sequence[Callable[[Any], str]] | None = None,
    chunk_rows: int | None = None,
) -> Iterator[str]:
    """The header line, then the rows as CSV text in chunks of chunk_rows (default
    CSV_CHUNK_ROWS) lines. formats: one function per column that writes its cells, when the
    column types are known (cell() for every column otherwise)."""
    chunk_rows = chunk_rows or CSV_CHUNK_ROWS
    formats = formats or [cell] * len(columns)
    writer = csv.writer(_Line())
    yield writer.writerow(columns)
    chunk: list[str] = []
    for row in rows:
        chunk.append(writer.writerow([f(v) for f, v in zip(formats, row, strict=True)]))
        if len(chunk) >= chunk_rows:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


# --- trials.csv -------------------------------------------------------------------------


# --- raters.csv -------------------------------------------------------------------------


# --- scores.csv -------------------------------------------------------------------------


# --- results.tex ------------------------------------------------------------------------


# --- bundle.json ------------------------------------------------------------------------
