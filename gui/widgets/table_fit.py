"""Tables sized to what they hold: every row and column of a small table shown, a
file-name column never squeezed to its first letters."""

from __future__ import annotations

from PySide6.QtWidgets import QTableView


def fit_table(view: QTableView, most_rows: int = 8) -> None:
    """Make ``view`` exactly as tall as its rows (at most ``most_rows``, then it
    scrolls) and at least as wide as its columns: every figure and every row shows,
    whatever the window's size (the space left goes to whatever stretches beside it)."""
    rows = view.model().rowCount()
    header = view.horizontalHeader()
    row_height = view.verticalHeader().defaultSectionSize()
    height = header.sizeHint().height() + 2 * view.frameWidth()
    height += row_height * min(rows, most_rows)
    view.setFixedHeight(height)
    width = 2 * view.frameWidth() + sum(
        max(header.sectionSizeHint(c), view.sizeHintForColumn(c)) for c in range(header.count())
    )
    if rows > most_rows:
        width += view.verticalScrollBar().sizeHint().width()
    view.setMinimumWidth(width)


def keep_names_readable(view: QTableView, names_column: int, characters: int = 14) -> None:
    """Keep ``view`` wide enough that its stretched file-name column shows about
    ``characters`` characters beside the other columns ("Ima…" was all it showed)."""
    header = view.horizontalHeader()
    others = sum(
        max(header.sectionSizeHint(c), view.sizeHintForColumn(c))
        for c in range(header.count())
        if c != names_column
    )
    names = view.fontMetrics().averageCharWidth() * characters
    scroll = view.verticalScrollBar().sizeHint().width()
    view.setMinimumWidth(others + names + scroll + 2 * view.frameWidth())
