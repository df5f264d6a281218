"""Tags of imported images: what a tag name may be, and tags.csv, the optional file that gives
images tags (one row per image and tag), checked whole before anything is stored."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from experiments.models import TAG_MAX_LENGTH

TAGS_CSV_COLUMNS = ("file", "tag")
# Problems listed one by one before the rest are counted: a wrong column gives one per row.
MAX_LISTED_PROBLEMS = 20


def tag_name_problem(name: str) -> str | None:
    """Why `name` cannot be a tag (None if it can): 1 to TAG_MAX_LENGTH printable characters,
    not starting or ending with a space (a page shows it, a CSV writes it)."""
    if not name:
        return "the tag is empty"
    if len(name) > TAG_MAX_LENGTH:
        return f"the tag is {len(name)} characters long, more than {TAG_MAX_LENGTH}"
    if not name.isprintable():
        return "the tag has a character that is not printable (a tab, a line break ...)"
    if name != name.strip():
        return "the tag starts or ends with a space"
    return None


def tags_csv_read(path: Path, *, known: Iterable[str]) -> tuple[dict[str, set[str]], list[str]]:
    """(file name -> its tags, problems) from tags.csv at `path`. `known`: the file names a
    row may give (relative to the import root, with "/"). Every bad row is a problem, named by
    its line; with any problem the import stores nothing."""
    known = set(known)
    label = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as error:
        return {}, [f"{label}: cannot be read ({error.strerror or error})"]
    except UnicodeDecodeError:
        return {}, [f"{label}: not UTF-8 text"]
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip().lower() for cell in next(reader, [])]
    if header != list(TAGS_CSV_COLUMNS):
        return {}, [
            f"{label}: the first line must be the header {','.join(TAGS_CSV_COLUMNS)} "
            f"(found {','.join(header) or 'nothing'})"
        ]
    tags: dict[str, set[str]] = {}
    problems: list[str] = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # a blank line, as spreadsheets leave at the end
            if len(row) != 2:
                problems.append(f"{label}, line {line}: {len(row)} cells, expected 2 (file,tag)")
                continue
            name, tag = row[0].strip().replace("\\", "/"), row[1]
            if name not in known:
                problems.append(
                    f"{label}, line {line}: no image {name!r} in the import (give the path "
                    "from the import root, e.g. real/0001.png or stylegan/0001.png)"
                )
            elif why := tag_name_problem(tag):
                problems.append(f"{label}, line {line}: {why}")
            else:
                tags.setdefault(name, set()).add(tag)
    except csv.Error as error:
        problems.append(f"{label}, line {reader.line_num}: not valid CSV ({error})")
    if len(problems) > MAX_LISTED_PROBLEMS:
        rest = len(problems) - MAX_LISTED_PROBLEMS
        problems = problems[:MAX_LISTED_PROBLEMS] + [f"{label}: and {rest} more bad rows"]
    return tags, problems
