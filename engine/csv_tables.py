"""The CSV files Linnaeus writes (exported labels, predictions), made safe to open
in a spreadsheet and exact about file names, and how its readers undo that.

- A cell that a spreadsheet would run as a formula (one that starts with
  ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is written with a
  leading single quote, as OWASP advises against CSV injection; so is a cell
  that starts with a single quote, so that `cell_text` gives back exactly the
  text that was written.
- A file name that is not valid UTF-8 (Linux allows any bytes) cannot be
  written as text: the ``path`` column shows its undecodable bytes as �, and
  the ``exact_path`` column holds the whole path's bytes percent-encoded as in
  a URL (``latin1_%E9t%E9.png``; Python: ``urllib.parse.unquote_to_bytes``).
  ``exact_path`` is empty for every other file.
"""

from __future__ import annotations

import csv
import os
import urllib.parse
from collections.abc import Iterable
from collections.abc import Sequence
from pathlib import Path

from linnaeus.engine.atomic import atomic_open
from linnaeus.engine.project.database import to_db_path

EXACT_PATH_COLUMN = "exact_path"
# What a spreadsheet may take for the start of a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTED_STARTS = (*FORMULA_STARTS, "'")


def safe_cell(text: str) -> str:
    """``text`` as Linnaeus writes it in a cell: with a leading single quote when a
    spreadsheet could take it for a formula (or when it starts with a quote)."""
    return f"'{text}" if text.startswith(_QUOTED_STARTS) else text


def cell_text(cell: str) -> str:
    """The text a cell that `safe_cell` wrote stands for (other cells are returned as they are)."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in _QUOTED_STARTS else cell


def exact_path(path: str) -> str:
    """The ``exact_path`` cell of ``path``: its bytes percent-encoded when it is not
    valid UTF-8 text, else empty."""
    stored = to_db_path(path)
    return urllib.parse.quote(stored, safe="/") if isinstance(stored, bytes) else ""


def path_from_exact(cell: str) -> str:
    """The path an ``exact_path`` cell holds (inverse of `exact_path`)."""
    return os.fsdecode(urllib.parse.unquote_to_bytes(cell))


def write_csv(destination: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    """Write ``header`` and ``rows`` to ``destination`` (UTF-8) atomically, every cell
    made safe for spreadsheets; return how many rows were written.

    Raises OSError when the file cannot be written; ``destination`` is then untouched.
    """
    written = 0
    with atomic_open(
        destination, "w", encoding="utf-8", errors="surrogateescape", newline=""
    ) as handle:
        writer = csv.writer(handle)
        writer.writerow([safe_cell(cell) for cell in header])
        for row in rows:
            writer.writerow([safe_cell(cell) for cell in row])
            written += 1
    return written
