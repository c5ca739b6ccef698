"""The "Check labels" list of the Evaluate tab: the labels most likely wrong first.

Each row is a labelled image, judged by models that never saw it (fold heads on
the backbone features, `engine.evaluation.label_issues`), or, for a version
without them, by its own model. Double-click (or Enter) opens the image in the
Image view with the heatmap of the suggested class; A accepts the suggestion
through the ordinary undoable label edit, and the row leaves the list until the
edit is undone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QModelIndex
from PySide6.QtCore import Qt
from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtGui import QColor
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QAbstractItemView
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QHeaderView
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QPushButton
from PySide6.QtWidgets import QTableView
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.gui.panels.evaluation_data import QueueEntry
from linnaeus.gui.widgets.formatting import format_percent
from linnaeus.gui.widgets.plots import VERMILION
from linnaeus.gui.widgets.row_table import DISPLAY
from linnaeus.gui.widgets.row_table import Index
from linnaeus.gui.widgets.row_table import RowTableModel

ACCEPT_KEY = "A"
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
HELD_OUT_NOTE = (
    "Labels most likely wrong first, judged by models that never saw the image "
    "(✗: likely wrong). <b>Double-click</b> opens it with the heatmap of the suggested "
    "class; <b>A</b> accepts the suggestion (Ctrl+Z undoes it)."
)
IN_SAMPLE_NOTE = (
    "Labels to check first: images this model disagrees with (✗), strongest first. It "
    "was trained on them, so it may have learnt a wrong label: train the quick model "
    "for a check by models that never saw the image. <b>Double-click</b> opens an "
    "image; <b>A</b> accepts the suggestion (Ctrl+Z undoes it)."
)


def entry_tooltip(entry: QueueEntry, held_out: bool) -> str:
    """What a row means, in words."""
    judge = "Models that never saw this image" if held_out else "The model"
    if entry.suggested == entry.label:
        return f"{judge} agree with {entry.label} ({format_percent(1 - entry.score, 0)})."
    return (
        f"Labelled {entry.label}; {judge.lower()} say {entry.suggested} "
        f"({format_percent(entry.suggested_probability, 0)}) and give {entry.label} "
        f"{format_percent(1 - entry.score, 0)}. Double-click to see it, A to relabel it "
        f"{entry.suggested}."
    )


class LabelCheckModel(RowTableModel):
    """The rows of the Check labels list."""

    # what to decide on; the selected row's file and words are below the table
    COLUMNS = ("", "Wrong?", "Label", "Suggested")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.held_out = False

    @property
    def entries(self) -> list[QueueEntry]:
        return self.rows

    def data(self, index: Index, role: int = DISPLAY) -> Any:
        if not index.isValid():
            return None
        entry, column = self.entries[index.row()], index.column()
        if role == DISPLAY:
            mark = "✗" if entry.flagged else ""
            suggested = "(agrees)" if entry.suggested == entry.label else entry.suggested
            return (mark, format_percent(entry.score, 0), entry.label, suggested)[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{entry.path}\n{entry_tooltip(entry, self.held_out)}"
        if role == Qt.ItemDataRole.ForegroundRole and column == 0 and entry.flagged:
            return QColor(VERMILION)
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 1:
            return _RIGHT
        if role == Qt.ItemDataRole.UserRole:
            return entry.image_id
        return None


class LabelCheckView(QWidget):
    """The list, its note and the accept button; see the module docstring.

    Signals: ``open_image_requested(int)`` (double-click or Enter on a row) and
    ``suggestion_accepted(int, str)`` (A or the button: label this image as this
    class); ``rows_changed`` when rows leave or return. `labels_changed` hides rows
    whose label was changed since the evaluation and shows them again when the change
    is undone.
    """

    open_image_requested = Signal(int)
    suggestion_accepted = Signal(int, str)
    rows_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._entries: list[QueueEntry] = []
        self._labels: dict[int, str | None] = {}  # changed since the evaluation
        self.model = LabelCheckModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for column in (2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        self.table.activated.connect(self._on_table_activated)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_current_row_changed)
        self.accept_action = QAction("Accept suggestion", self)
        self.accept_action.setShortcut(QKeySequence(ACCEPT_KEY))
        self.accept_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.accept_action.triggered.connect(self.accept_current)
        self.addAction(self.accept_action)
        self.accept_button = QPushButton(f"Accept suggestion   ({ACCEPT_KEY})", self)
        self.accept_button.setToolTip("Relabel the selected image as the suggested class.")
        self.accept_button.clicked.connect(self.accept_current)
        self.note = QLabel(HELD_OUT_NOTE, self)
        self.note.setWordWrap(True)
        self.details = QLabel(self)  # the selected row: its file, and the row in words
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.accept_button)
        layout.addLayout(buttons)

    def set_entries(self, entries: list[QueueEntry], *, held_out: bool) -> None:
        """Show a fresh evaluation's list (``held_out``: judged by fold heads)."""
        self._entries = list(entries)
        self._labels = {}
        self.model.held_out = held_out
        self.note.setText(HELD_OUT_NOTE if held_out else IN_SAMPLE_NOTE)
        self._show_rows()

    def labels_changed(self, labels: Mapping[int, str | None]) -> None:
        """These images now have these labels: a row whose label changed leaves the
        list, one changed back returns; the selection stays at the same place."""
        self._labels.update(labels)
        self._show_rows()

    def _show_rows(self) -> None:
        row = self.table.currentIndex().row()
        shown = [e for e in self._entries if self._labels.get(e.image_id, e.label) == e.label]
        if shown == self.model.rows:
            return
        self.model.set_rows(shown)
        if shown:  # a row is always selected: A works at once
            self.table.selectRow(min(max(row, 0), len(shown) - 1))
        self.rows_changed.emit()

    @property
    def flagged(self) -> int:
        """How many rows are likely wrong labels."""
        return sum(entry.flagged for entry in self.model.entries)

    def suggested_class(self, image_id: int) -> str | None:
        """The class suggested for an image of the list (None if it is not in it)."""
        return next((e.suggested for e in self._entries if e.image_id == image_id), None)

    def accept_current(self) -> None:
        """Relabel the selected image as suggested (nothing if the suggestion is its label)."""
        index = self.table.currentIndex()
        if not index.isValid():
            return
        entry = self.model.entries[index.row()]
        if entry.suggested != entry.label:
            self.suggestion_accepted.emit(entry.image_id, entry.suggested)

    def _on_table_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self.details.clear()
            return
        entry = self.model.entries[current.row()]
        self.details.setText(f"{entry.path}: {entry_tooltip(entry, self.model.held_out)}")

    def _on_table_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.open_image_requested.emit(self.model.entries[index.row()].image_id)
