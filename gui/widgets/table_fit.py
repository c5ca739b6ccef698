"""Tables sized to what they hold: every row and column of a small table shown."""

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
