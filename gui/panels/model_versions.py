"""The project's model versions as a Qt table model (over engine.project.versions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel
from PySide6.QtCore import QModelIndex
from PySide6.QtCore import QPersistentModelIndex
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont

from linnaeus.engine.evaluation.metrics import AUGMENTED_VIEWS_NOTE
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.gui.panels.training_options import model_label
from linnaeus.gui.widgets.formatting import format_duration
from linnaeus.gui.widgets.formatting import format_percent

STATUS_WORDS = {
    "done": "ready",
    "training": "unfinished",
    "failed": "failed",
    "cancelled": "cancelled",
    "interrupted": "interrupted",
}
COLUMNS = (
    "Version",
    "Model",
    "Status",
    "Validation accuracy",
    "Test accuracy",
    "Training time",
    "Trained",
    "",
    "Note",
)
NOTE_COLUMN = COLUMNS.index("Note")
_Index = QModelIndex | QPersistentModelIndex


def local_time(utc_text: str | None) -> str:
    """An ISO UTC time stamp as local "YYYY-MM-DD HH:MM"."""
    if not utc_text:
        return ""
    try:
        return datetime.fromisoformat(utc_text).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return utc_text[:16]


class ModelVersionsModel(QAbstractTableModel):
    """One row per model version, newest first; the active one is bold and marked."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._versions: list[ModelVersion] = []
        self._active: int | None = None
        self.training = False  # set while a training runs: its version shows "training…"

    def refresh(self, store: ProjectStore | None) -> None:
        """Read the versions again from ``store`` (None: no project, no rows)."""
        self.beginResetModel()
        if store is None:
            self._versions, self._active = [], None
        else:
            self._versions = versions.list_versions(store)
            active = versions.active_version(store)
            self._active = active.id if active else None
        self.endResetModel()

    @property
    def versions(self) -> list[ModelVersion]:
        return list(self._versions)

    def version_at(self, row: int) -> ModelVersion | None:
        return self._versions[row] if 0 <= row < len(self._versions) else None

    def is_active(self, version: ModelVersion) -> bool:
        return version.id == self._active

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._versions)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        version = self.version_at(index.row())
        if version is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(version, index.column())
        if role == Qt.ItemDataRole.FontRole and self.is_active(version):
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            if index.column() in (0, NOTE_COLUMN) and version.note:
                return version.note
            if version.error:
                return version.error
            if index.column() == 3 and _on_views(version):
                return AUGMENTED_VIEWS_NOTE
            if self.is_active(version):
                return "The active model: the grid's predictions and the evaluation use it."
        if role == Qt.ItemDataRole.TextAlignmentRole and 3 <= index.column() <= 5:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, version: ModelVersion, column: int) -> str:
        if column == 0:
            return version.display_name
        if column == 1:
            return model_label(version.kind)
        if column == 2:
            newest = self._versions and version is self._versions[0]
            if self.training and newest and version.status == "training":
                return "training…"
            return STATUS_WORDS.get(version.status, version.status)
        if column in (3, 4):
            split = "val" if column == 3 else "test"
            text = format_percent(version.metrics.get(split, {}).get("accuracy"))
            return f"{text} (augmented views)" if column == 3 and _on_views(version) else text
        if column == 5:
            return format_duration(version.duration_s)
        if column == 6:
            return local_time(version.created_at)
        if column == NOTE_COLUMN:
            return " ".join(version.note.split())  # one line; the tooltip has it all
        return "● active" if self.is_active(version) else ""


def _on_views(version: ModelVersion) -> bool:
    """Whether ``version`` was validated on augmented views of its training images."""
    return bool(version.metrics.get("val", {}).get("augmented_views"))
