"""Classifying a folder off the GUI thread, and its results as a sortable Qt table model."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex
from PySide6.QtCore import QPersistentModelIndex
from PySide6.QtCore import Qt

from linnaeus.engine.onnx.inference import Classifier
from linnaeus.engine.onnx.inference import Prediction
from linnaeus.engine.onnx.inference import SortReport
from linnaeus.engine.onnx.inference import check_destination
from linnaeus.engine.onnx.inference import shown_label
from linnaeus.engine.onnx.inference import sort_into
from linnaeus.engine.onnx.inference import write_predictions_csv
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.gui.widgets.formatting import format_duration
from linnaeus.gui.widgets.formatting import format_percent
from linnaeus.gui.widgets.row_table import RowTableModel

_Index = QModelIndex | QPersistentModelIndex
_DISPLAY = Qt.ItemDataRole.DisplayRole
SORT_ROLE = Qt.ItemDataRole.UserRole  # numbers sort as numbers


@dataclass(frozen=True)
class ClassifyRequest:
    """What to classify, with which model, and where the results go."""

    model: Path
    folder: Path
    csv: Path
    sort_into: Path | None = None
    unknown_below: float | None = None


@dataclass(frozen=True)
class ClassifyResult:
    """A finished classification."""

    request: ClassifyRequest
    predictions: list[Prediction]
    classes: list[str]
    sorted_copies: SortReport | None
    seconds: float
    provider: str


def classify(
    request: ClassifyRequest, *, on_progress: ProgressCallback, cancel: CancelToken
) -> ClassifyResult:
    """Classify every image under the folder, write the CSV and, if asked, sort copies
    (engine.inference, onnxruntime only; runs in a Worker)."""
    started = time.monotonic()
    check_destination(request.folder, request.csv.parent)  # never write into the images
    classifier = Classifier(request.model)
    found = list(classifier.classify_folder(request.folder, on_progress=on_progress, cancel=cancel))
    check_cancelled(cancel)
    write_predictions_csv(
        found, classifier.classes, request.csv, unknown_below=request.unknown_below
    )
    report = None
    if request.sort_into is not None:
        report = sort_into(
            found,
            request.folder,
            request.sort_into,
            classifier.classes,
            unknown_below=request.unknown_below,
            on_progress=on_progress,
            cancel=cancel,
        )
    return ClassifyResult(
        request, found, classifier.classes, report, time.monotonic() - started, classifier.provider
    )


def result_summary(result: ClassifyResult) -> str:
    """What a classification found, in a few sentences."""
    unknown_below = result.request.unknown_below
    counts = Counter(shown_label(p, unknown_below) for p in result.predictions)
    unreadable = counts.pop(None, 0)
    classified = sum(counts.values())
    per_class = ", ".join(f"{n:,} {label}" for label, n in counts.most_common())
    text = f"Classified {classified:,} images in {format_duration(result.seconds)}"
    text += f": {per_class}." if per_class else "."
    if unreadable:
        text += f" {unreadable:,} could not be read (see the Problem column)."
    text += f" Results: {result.request.csv}."
    report = result.sorted_copies
    if report is not None:
        text += f" {report.copied:,} copies sorted into {report.destination}."
        if report.skipped:
            text += f" {len(report.skipped):,} were not copied."
    return text


class PredictionsModel(RowTableModel):
    """One row per classified file: image, class, confidence, and why it could not be read."""

    COLUMNS = ("Image", "Class", "Confidence", "Problem")

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
            return prediction.error or ""
        if role == SORT_ROLE:
            if column == 2:
                return -1.0 if prediction.confidence is None else prediction.confidence
            return self.data(index, _DISPLAY)
        if role == Qt.ItemDataRole.ToolTipRole and column in (0, 3):
            return prediction.error or prediction.path
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
