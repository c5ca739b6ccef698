"""Reading and writing label tables (CSV): path, label[, group][, split].

Headers are recognised by common names (``filename``, ``class``, ``patient_id``,
...); a table without a header is read as path, label, group. Paths may be
relative to the image root, absolute inside it, or bare file names when those
are unique.
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from linnaeus.engine.atomic import atomic_open
from linnaeus.engine.errors import ImportSourceError

PATH_COLUMNS = ("path", "file", "filename", "file_name", "filepath", "image", "image_path", "id")
LABEL_COLUMNS = ("label", "class", "class_name", "category", "diagnosis", "target")
GROUP_COLUMNS = ("group", "group_id", "patient", "patient_id", "specimen", "slide", "subject")
SPLIT_COLUMNS = ("split", "subset", "set")


@dataclass(frozen=True)
class CsvLabel:
    """One row of a label table, matched to an image path under the root."""

    path: str
    label: str | None
    group: str | None
    split: str | None


@dataclass(frozen=True)
class CsvTable:
    """A label table read against the images found under a root."""

    rows: dict[str, CsvLabel]
    problems: list[tuple[str, str]]  # (what the row said, why it was not used)


def read_label_csv(csv_path: Path, root: Path, image_paths: Iterable[str]) -> CsvTable:
    """Read ``csv_path`` and match its rows to ``image_paths`` (relative to ``root``)."""
    try:
        raw = csv_path.read_bytes()
    except OSError as error:
        raise ImportSourceError(f"Cannot read the label table {csv_path}: {error}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    records = [row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)]
    if not records:
        raise ImportSourceError(f"The label table {csv_path} is empty.")
    columns = _columns(records[0])
    first_line = 2
    if columns is None:
        columns = {"path": 0, "label": 1, "group": 2}
        first_line = 1
    else:
        records = records[1:]
    if "label" not in columns:
        raise ImportSourceError(
            f"The label table {csv_path} has no label column (expected one of "
            f"{', '.join(LABEL_COLUMNS)})."
        )

    known = set(image_paths)
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in known:
        by_name[path.rsplit("/", 1)[-1]].append(path)
    rows: dict[str, CsvLabel] = {}
    problems: list[tuple[str, str]] = []
    for number, record in enumerate(records, start=first_line):

        def cell(name: str, record: list[str] = record) -> str | None:
            index = columns.get(name)
            value = record[index].strip() if index is not None and index < len(record) else ""
            return value or None

        given = cell("path")
        if given is None:
            problems.append((f"line {number}", "no file path"))
            continue
        path = _match(given, root, known, by_name)
        if path is None:
            problems.append((given, f"line {number}: no such image under {root}"))
            continue
        rows[path] = CsvLabel(path, cell("label"), cell("group"), cell("split"))
    return CsvTable(rows, problems)


def find_label_csv(root: Path) -> Path | None:
    """The label table at the top of ``root``, if exactly one CSV there looks like one."""
    found = []
    for candidate in sorted(root.glob("*.csv")):
        try:
            with open(candidate, encoding="utf-8-sig", errors="replace") as handle:
                header = next(csv.reader([handle.readline()]), [])
        except OSError:
            continue
        columns = _columns(header)
        if columns and "label" in columns:
            found.append(candidate)
    return found[0] if len(found) == 1 else None


def _columns(header: list[str]) -> dict[str, int] | None:
    names = [h.strip().lower().replace(" ", "_") for h in header]
    found: dict[str, int] = {}
    for role, choices in (
        ("path", PATH_COLUMNS),
        ("label", LABEL_COLUMNS),
        ("group", GROUP_COLUMNS),
        ("split", SPLIT_COLUMNS),
    ):
        for choice in choices:
            if choice in names:
                found[role] = names.index(choice)
                break
    return found if "path" in found else None


def _match(given: str, root: Path, known: set[str], by_name: dict[str, list[str]]) -> str | None:
    candidate = given.replace("\\", "/")
    if os.path.isabs(given):
        try:
            candidate = Path(given).relative_to(root).as_posix()
        except ValueError:
            return None
    candidate = candidate.removeprefix("./")
    if candidate in known:
        return candidate
    matches = by_name.get(candidate.rsplit("/", 1)[-1], [])
    return matches[0] if len(matches) == 1 else None


def write_label_csv(destination: Path, rows: Iterable[tuple[str, str, str, str]]) -> None:
    """Write rows of (path, label, group, split) with a header, atomically."""
    with atomic_open(
        destination, "w", encoding="utf-8", errors="surrogateescape", newline=""
    ) as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "group", "split"])
        writer.writerows(rows)
