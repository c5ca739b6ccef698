"""Qt table models over an evaluation: confusion matrix, per-class figures."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel
from PySide6.QtCore import QModelIndex
from PySide6.QtCore import QPersistentModelIndex
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from linnaeus.engine.evaluation.metrics import Evaluation
from linnaeus.gui.widgets.formatting import format_percent
from linnaeus.gui.widgets.plots import BLUE
from linnaeus.gui.widgets.plots import VERMILION

_Index = QModelIndex | QPersistentModelIndex
_DISPLAY = Qt.ItemDataRole.DisplayRole
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


def _blend(base: QColor, tint: QColor, amount: float) -> QColor:
    amount = min(max(amount, 0.0), 1.0)
    return QColor.fromRgbF(
        base.redF() + (tint.redF() - base.redF()) * amount,
        base.greenF() + (tint.greenF() - base.greenF()) * amount,
        base.blueF() + (tint.blueF() - base.blueF()) * amount,
    )


class ConfusionModel(QAbstractTableModel):
    """Rows: the images' labels; columns: the model's predictions; cells: image counts,
    coloured by the share of the row (blue on the diagonal, red off it)."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.classes: list[str] = []
        self.counts = np.zeros((0, 0), dtype=np.int64)

    def set_evaluation(self, evaluation: Evaluation | None) -> None:
        self.beginResetModel()
        self.classes = list(evaluation.classes) if evaluation else []
        self.counts = np.array(evaluation.confusion if evaluation else np.zeros((0, 0)), np.int64)
        self.endResetModel()

    def cell(self, index: _Index) -> tuple[str, str]:
        """(label, predicted class) of a cell."""
        return self.classes[index.row()], self.classes[index.column()]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.classes)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.classes)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if role == _DISPLAY and 0 <= section < len(self.classes):
            return self.classes[section]
        if role == Qt.ItemDataRole.ToolTipRole and 0 <= section < len(self.classes):
            kind = "labelled" if orientation == Qt.Orientation.Vertical else "predicted"
            return f"Images {kind} {self.classes[section]}"
        return None

    def _share(self, row: int, column: int) -> float:
        total = int(self.counts[row].sum())
        return float(self.counts[row, column]) / total if total else 0.0

    def data(self, index: _Index, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        count = int(self.counts[row, column])
        share = self._share(row, column)
        if role == _DISPLAY:
            return f"{count:,}"
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.BackgroundRole:
            base = QApplication.palette().color(QPalette.ColorRole.Base)
            return _blend(base, QColor(BLUE if row == column else VERMILION), 0.85 * share)
        if role == Qt.ItemDataRole.ForegroundRole and share > 0.45:
            return QColor("white")
        if role == Qt.ItemDataRole.ToolTipRole:
            label, predicted = self.cell(index)
            verb = "correctly predicted" if row == column else "predicted"
            return (
                f"{count:,} images labelled {label} were {verb} {predicted} "
                f"({format_percent(share)} of {label}).\nClick to show them in the grid."
            )
        return None


class PerClassModel(QAbstractTableModel):
    """Precision, recall, F1, AUC and image count per class."""

    COLUMNS = ("Class", "Precision", "Recall", "F1", "AUC", "Images")
    TIPS = (
        "",
        "Of the images the model calls this class, the share that are labelled so.",
        "Of the images labelled this class, the share the model finds (sensitivity).",
        "The balance of precision and recall (their harmonic mean).",
        "How well the model's confidence ranks this class above the others (1 is perfect, "
        "0.5 is chance).",
        "Images labelled this class in the split.",
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, float, float, float, float | None, int]] = []

    def set_evaluation(self, evaluation: Evaluation | None) -> None:
        self.beginResetModel()
        self._rows = [
            (name, m.precision, m.recall, m.f1, evaluation.auc.get(name), m.support)
            for name, m in (evaluation.per_class.items() if evaluation else [])
        ]
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == _DISPLAY:
            return self.COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.TIPS[section] or None
        return None

    def data(self, index: _Index, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        row, column = self._rows[index.row()], index.column()
        if role == _DISPLAY:
            value = row[column]
            if column == 0:
                return value
            if column == 4:
                return "—" if value is None else f"{value:.3f}"
            if column == 5:
                return f"{value:,}"
            return f"{value:.3f}"
        if role == Qt.ItemDataRole.TextAlignmentRole and column > 0:
            return _RIGHT
        return None
