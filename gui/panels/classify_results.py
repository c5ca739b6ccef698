"""The Classify dialog's request, a finished classification in words, and its
results as a sortable Qt table model (the classifying is engine.onnx.classify)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex
from PySide6.QtCore import QPersistentModelIndex
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush
from PySide6.QtGui import QColor

from linnaeus.engine.onnx.classify import ClassifyResult
from linnaeus.engine.onnx.results import Prediction
from linnaeus.engine.onnx.results import shown_label
from linnaeus.gui.widgets.formatting import format_duration
from linnaeus.gui.widgets.formatting import format_percent
from linnaeus.gui.widgets.row_table import RowTableModel

_Index = QModelIndex | QPersistentModelIndex
_DISPLAY = Qt.ItemDataRole.DisplayRole
SORT_ROLE = Qt.ItemDataRole.UserRole  # numbers sort as numbers
UNFAMILIAR_COLUMN = 3
UNFAMILIAR_MARK = "⚠ unfamiliar"
_UNFAMILIAR_BACKGROUND = QColor(255, 236, 179)  # amber, light: a row to check by eye
_UNFAMILIAR_TIP = (
    "This image is unlike the images the model was trained on (unfamiliarity {score:.3f}, "
    "above the model's cut). Its class may be wrong however confident the model is: "
    "check it by eye."
)


@dataclass(frozen=True)
class ClassifyRequest:
    """What to classify, with which model, and where the results go."""

    model: Path
    folder: Path
    csv: Path
    sort_into: Path | None = None
    unknown_below: float | None = None


def result_summary(result: ClassifyResult) -> str:
    """What a classification found, in a few sentences."""
    counts = Counter({label: n for label, n in result.counts.items() if n})
    per_class = ", ".join(f"{n:,} {label}" for label, n in counts.most_common())
    text = f"Classified {result.classified:,} images in {format_duration(result.seconds)}"
    text += f": {per_class}." if per_class else "."
    if result.unfamiliar:
        verb = "looks" if result.unfamiliar == 1 else "look"
        text += (f" {result.unfamiliar:,} {verb} unlike the images the model was trained on "
                 "(marked unfamiliar: check them by eye).")  # fmt: skip
    if result.errors:
        text += f" {len(result.errors):,} could not be read (see the Problem column)."
    text += f" Results: {result.csv}."
    report = result.sorted_copies
    if report is not None:
        text += f" {report.copied:,} copies sorted into {report.destination}."
        if report.skipped:
            text += f" {len(report.skipped):,} were not copied."
    return text


class PredictionsModel(RowTableModel):
    """One row per classified file: image, class, confidence, whether it is unlike the
    training images (the unfamiliar mark), and why it could not be read."""

    COLUMNS = ("Image", "Class", "Confidence", "Unlike training", "Problem")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.unknown_below: float | None = None

    @property
    def predictions(self) -> list[Prediction]:
        return self.rows

    def set_predictions(self, predictions: list[Prediction], unknown_below: float | None) -> None:
        self.unknown_below = unknown_below
        self.set_rows(predictions)

    def data(self, index: _Index, role: int = _DISPLAY) -> Any:
        if not index.isValid():
            return None
        prediction, column = self.predictions[index.row()], index.column()
        if role == _DISPLAY:
            if column == 0:
                return prediction.path
            if column == 1:
                return shown_label(prediction, self.unknown_below) or ""
            if column == 2:
                return format_percent(prediction.confidence)
            if column == UNFAMILIAR_COLUMN:
                return UNFAMILIAR_MARK if prediction.unfamiliar else ""
            return prediction.error or ""
        if role == SORT_ROLE:
            if column == 2:
                return -1.0 if prediction.confidence is None else prediction.confidence
            if column == UNFAMILIAR_COLUMN:
                return -1.0 if prediction.ood_score is None else prediction.ood_score
            return self.data(index, _DISPLAY)
        if role == Qt.ItemDataRole.BackgroundRole and prediction.unfamiliar:
            return QBrush(_UNFAMILIAR_BACKGROUND)
        if role == Qt.ItemDataRole.ToolTipRole and prediction.unfamiliar:
            return _UNFAMILIAR_TIP.format(score=prediction.ood_score or 0.0)
        if role == Qt.ItemDataRole.ToolTipRole and column in (0, 4):
            return prediction.error or prediction.path
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
