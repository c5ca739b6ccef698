"""Reading and writing label tables (CSV): path, label[, group][, split][, exact_path].

Headers are recognised by common names (``filename``, ``class``, ``patient_id``,
...); a table without a header is read as path, label, group. Paths may be
relative to the image root, absolute inside it, or bare file names when those
are unique; ``exact_path`` (see `engine.csv_tables`) names a file whose name is
not valid UTF-8. When rows disagree about one image, the first row wins, and
the rows import did not take as written are reported with their numbers.
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from linnaeus.engine.csv_tables import EXACT_PATH_COLUMN
from linnaeus.engine.csv_tables import cell_text
from linnaeus.engine.csv_tables import exact_path
from linnaeus.engine.csv_tables import path_from_exact
from linnaeus.engine.csv_tables import write_csv
from linnaeus.engine.errors import ImportSourceError
from linnaeus.engine.project.database import display_path

PATH_COLUMNS = ("path", "file", "filename", "file_name", "filepath", "image", "image_path", "id")
LABEL_COLUMNS = ("label", "class", "class_name", "category", "diagnosis", "target")
GROUP_COLUMNS = ("group", "group_id", "patient", "patient_id", "specimen", "slide", "subject")
SPLIT_COLUMNS = ("split", "subset", "set")
LABEL_TABLE_COLUMNS = ("path", "label", "group", "split")  # what `write_label_csv` writes


@dataclass(frozen=True)
class CsvLabel:
    """One row of a label table, matched to an image path under the root."""

    path: str
    label: str | None
    group: str | None
    split: str | None


@dataclass(frozen=True)
class TableProblem:
    """Rows of a label table that import did not take as written, and what it did instead."""

    rows: tuple[int, ...]  # row numbers as a spreadsheet shows them (the header is row 1)
    message: str  # names the rows: "rows 7 and 12 give img6.png two labels (cat, dog): ..."


@dataclass(frozen=True)
class CsvTable:
    """A label table read against the images found under a root."""

    rows: dict[str, CsvLabel]
    problems: list[TableProblem]


def read_label_csv(csv_path: Path, root: Path, image_paths: Iterable[str]) -> CsvTable:
    """Read ``csv_path`` and match its rows to ``image_paths`` (relative to ``root``).

    When several rows name one image, the first row that gives a label (a group,
    a split) wins. Every row not taken as written is reported in ``problems``:
    rows that name no image, later rows that disagree with the first, rows that
    give no label.
    """
    columns, records = _read_records(csv_path)
    images = _ImageNames(root, image_paths)
    named: dict[str, list[tuple[int, CsvLabel]]] = defaultdict(list)
    problems: list[TableProblem] = []
    for number, record in records:
        values = {role: _cell(record, index) for role, index in columns.items()}
        path, why_not = images.match(values, _cell(record, columns["path"], strip=False), number)
        if path is None:
            problems.append(TableProblem((number,), why_not))
            continue
        label = CsvLabel(path, values.get("label"), values.get("group"), values.get("split"))
        named[path].append((number, label))
    rows = {path: _first_wins(path, given) for path, given in named.items()}
    kept_labels = {row.label for row in rows.values() if row.label}
    for path, given in named.items():
        problems += _disagreements(path, given, kept_labels)
    problems += _rows_without_label(named, rows)
    problems.sort(key=lambda problem: problem.rows)
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
        (EXACT_PATH_COLUMN, (EXACT_PATH_COLUMN,)),
    ):
        for choice in choices:
            if choice in names:
                found[role] = names.index(choice)
                break
    return found if "path" in found else None


def _read_records(csv_path: Path) -> tuple[dict[str, int], list[tuple[int, list[str]]]]:
    """The table's columns (role -> index) and its non-blank rows with their numbers."""
    try:
        raw = csv_path.read_bytes()
    except OSError as error:
        raise ImportSourceError(f"Cannot read the label table {csv_path}: {error}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    delimiter = _delimiter(text)
    records: list[tuple[int, list[str]]] = []
    number = 0
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:  # numbered as a spreadsheet numbers its rows: blank rows count, the header is row 1
        for number, row in enumerate(rows, 1):
            if any(cell.strip() for cell in row):
                records.append((number, row))
    except csv.Error as error:
        raise ImportSourceError(
            f"The label table {csv_path} is not a readable CSV file after row {number}: {error}."
        ) from None
    if not records:
        raise ImportSourceError(f"The label table {csv_path} is empty.")
    columns = _columns(records[0][1])
    if columns is None:
        columns = {"path": 0, "label": 1, "group": 2}
    else:
        records = records[1:]
    if "label" not in columns:
        raise ImportSourceError(
            f"The label table {csv_path} has no label column (expected one of "
            f"{', '.join(LABEL_COLUMNS)})."
        )
    return columns, records


def _delimiter(text: str) -> str:
    """The table's delimiter: the one that splits its header into known column names,
    else the one Python's sniffer guesses (a comma if it cannot)."""
    first_line = text.split("\n", 1)[0]
    try:
        for delimiter in (",", ";", "\t"):
            if _columns(next(csv.reader([first_line], delimiter=delimiter), [])):
                return delimiter
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _cell(record: list[str], index: int, *, strip: bool = True) -> str | None:
    """The text of one cell (Linnaeus' quoting undone, spaces around it dropped), or None."""
    value = record[index] if index < len(record) else ""
    text = cell_text(value.lstrip()).strip() if strip else cell_text(value)
    return text or None


class _ImageNames:
    """Finds the image a row names: by its exact path, its path, or its unique file name."""

    def __init__(self, root: Path, image_paths: Iterable[str]) -> None:
        self.root = root
        self.known = set(image_paths)
        self.by_name: dict[str, list[str]] = defaultdict(list)
        for path in sorted(self.known):
            self.by_name[path.rsplit("/", 1)[-1]].append(path)

    def match(
        self, values: dict[str, str | None], unstripped: str | None, number: int
    ) -> tuple[str | None, str]:
        """The image row ``number`` names, or None and why it names none."""
        exact = values.get(EXACT_PATH_COLUMN)
        if exact and path_from_exact(exact) in self.known:
            return path_from_exact(exact), ""
        given = values.get("path")
        if given is None:
            return None, f"row {number} has no file path"
        if unstripped in self.known:  # a file name that starts or ends with a space
            return unstripped, ""
        candidate = given.replace("\\", "/")
        if os.path.isabs(given):
            try:
                candidate = Path(given).relative_to(self.root).as_posix()
            except ValueError:
                return None, f"row {number}: {_shown(given)} is not inside {self.root}"
        candidate = candidate.removeprefix("./")
        if candidate in self.known:
            return candidate, ""
        matches = self.by_name.get(candidate.rsplit("/", 1)[-1], [])
        if len(matches) == 1:
            return matches[0], ""
        if matches:
            return None, (
                f"row {number}: {len(matches)} images are named {_shown(given)} "
                f"({', '.join(_shown(m) for m in matches[:3])}"
                f"{', ...' if len(matches) > 3 else ''}); give the folder too"
            )
        return None, f"row {number}: no image {_shown(given)} under {self.root}"


def _first_wins(path: str, given: list[tuple[int, CsvLabel]]) -> CsvLabel:
    """One image's label, group and split: from the first row that gives each."""
    rows = [row for _, row in given]
    label = next((row.label for row in rows if row.label), None)
    group = next((row.group for row in rows if row.group), None)
    split = next((row.split for row in rows if row.split), None)
    return CsvLabel(path, label, group, split)


def _disagreements(
    path: str, given: list[tuple[int, CsvLabel]], kept_labels: set[str]
) -> list[TableProblem]:
    """Rows that give one image different labels (groups, splits): the first won."""
    problems = []
    for field, plural in (("label", "labels"), ("group", "groups"), ("split", "splits")):
        numbered = [(n, getattr(row, field)) for n, row in given if getattr(row, field)]
        values = list(dict.fromkeys(value for _, value in numbered))
        shown = [_shown(value) for value in values]
        if len(values) < 2:
            continue
        numbers = tuple(n for n, _ in numbered)
        message = (
            f"{_rows_text(numbers)} give {_shown(path)} {_count(len(values))} {plural} "
            f"({', '.join(shown)}): kept {shown[0]}, the first"
        )
        lost = [value for value in values[1:] if field == "label" and value not in kept_labels]
        if lost:
            names = " and ".join(_shown(value) for value in lost)
            message += (
                f"; no other row gives {names}, so the table makes no class {names}"
                if len(lost) == 1
                else f"; no other row gives {names}, so the table makes no such classes"
            )
        problems.append(TableProblem(numbers, message))
    return problems


def _rows_without_label(
    named: dict[str, list[tuple[int, CsvLabel]]], rows: dict[str, CsvLabel]
) -> list[TableProblem]:
    """One problem for all the rows that give an image no label (and no other row does)."""
    unlabelled = [path for path, row in rows.items() if not row.label]
    numbers = tuple(sorted(n for path in unlabelled for n, _ in named[path]))
    if not numbers:
        return []
    if len(unlabelled) == 1:
        text = (
            f"{_rows_text(numbers)} {'gives' if len(numbers) == 1 else 'give'} "
            f"{_shown(unlabelled[0])} no label: it keeps the class of its folder, if "
            "it is in one, else stays unlabelled"
        )
    else:
        text = (
            f"{_rows_text(numbers)} give no label ({len(unlabelled)} images, such as "
            f"{_shown(unlabelled[0])}): they keep the class of their folder, if they "
            "are in one, else stay unlabelled"
        )
    return [TableProblem(numbers, text)]


def _rows_text(numbers: tuple[int, ...], shown: int = 8) -> str:
    """ "row 7", "rows 7 and 12", "rows 4, 5, 9 and 12", "rows 4, 5, ... and 40 more"."""
    if len(numbers) == 1:
        return f"row {numbers[0]}"
    if len(numbers) > shown:
        listed = ", ".join(str(n) for n in numbers[:shown])
        return f"rows {listed} and {len(numbers) - shown} more"
    return f"rows {', '.join(str(n) for n in numbers[:-1])} and {numbers[-1]}"


def _shown(text: str, limit: int = 80) -> str:
    """A cell or a path as it reads in a one-line message: control characters
    escaped, undecodable bytes as �, long text cut."""
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in display_path(text))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _count(number: int) -> str:
    return {2: "two", 3: "three", 4: "four", 5: "five"}.get(number, str(number))


def write_label_csv(destination: Path, rows: Iterable[tuple[str, str, str, str]]) -> None:
    """Write rows of (path relative to the image root, label, group, split) with a
    header, atomically; a path that is not valid UTF-8 also goes into ``exact_path``."""
    write_csv(
        destination,
        [*LABEL_TABLE_COLUMNS, EXACT_PATH_COLUMN],
        ((display_path(path), *rest, exact_path(path)) for path, *rest in rows),
    )
