"""The status bar: how many images are shown, per class, and selected."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence

from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QStatusBar
from PySide6.QtWidgets import QWidget

from linnaeus.engine.project.store import ClassInfo
from linnaeus.gui.image_table import NO_CLASS


def counts_text(
    shown: int,
    total: int,
    classes: Sequence[ClassInfo],
    counts: Mapping[int, int],
    selected: int,
) -> tuple[str, str, str]:
    """(shown, per class, selection) texts of the status bar."""
    shown_text = f"Showing {shown:,} of {total:,} images"
    parts = [f"{info.name} {counts.get(info.id, 0):,}" for info in classes]
    unlabelled = counts.get(NO_CLASS, 0)
    if unlabelled:
        parts.append(f"unlabelled {unlabelled:,}")
    selection = f"{selected:,} selected" if selected else ""
    return shown_text, " · ".join(parts), selection


class StatusBar(QStatusBar):
    """Counts on the right, transient messages on the left."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shown = QLabel()
        self.per_class = QLabel()
        self.selection = QLabel()
        for label in (self.selection, self.per_class, self.shown):
            label.setContentsMargins(8, 0, 8, 0)
            self.addPermanentWidget(label)
        self.per_class.setToolTip("Readable images per label in the whole project")

    def set_counts(
        self,
        shown: int,
        total: int,
        classes: Sequence[ClassInfo],
        counts: Mapping[int, int],
        selected: int,
    ) -> None:
        texts = counts_text(shown, total, classes, counts, selected)
        for label, text in zip((self.shown, self.per_class, self.selection), texts, strict=True):
            label.setText(text)
            label.setVisible(bool(text))

    def set_selection(self, selected: int) -> None:
        """Only the selection changed."""
        self.selection.setText(f"{selected:,} selected" if selected else "")
        self.selection.setVisible(bool(selected))

    def clear_counts(self) -> None:
        for label in (self.shown, self.per_class, self.selection):
            label.clear()
            label.hide()
