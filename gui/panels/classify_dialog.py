"""Classify a folder of images with an exported model: CSV, sorted copies, results table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex
from PySide6.QtCore import QSortFilterProxyModel
from PySide6.QtCore import Qt
from PySide6.QtCore import QUrl
from PySide6.QtCore import Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QAbstractItemView
from PySide6.QtWidgets import QButtonGroup
from PySide6.QtWidgets import QCheckBox
from PySide6.QtWidgets import QDialog
from PySide6.QtWidgets import QDoubleSpinBox
from PySide6.QtWidgets import QFileDialog
from PySide6.QtWidgets import QFormLayout
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QHeaderView
from PySide6.QtWidgets import QLineEdit
from PySide6.QtWidgets import QProgressBar
from PySide6.QtWidgets import QPushButton
from PySide6.QtWidgets import QRadioButton
from PySide6.QtWidgets import QTableView
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.onnx.classify import ClassifyResult
from linnaeus.engine.onnx.classify import classify
from linnaeus.engine.onnx.format import OnnxMetadata
from linnaeus.engine.onnx.format import read_metadata
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import exported_model_path
from linnaeus.gui.panels.classify_results import SORT_ROLE
from linnaeus.gui.panels.classify_results import UNFAMILIAR_COLUMN
from linnaeus.gui.panels.classify_results import ClassifyRequest
from linnaeus.gui.panels.classify_results import PredictionsModel
from linnaeus.gui.panels.classify_results import result_summary
from linnaeus.gui.panels.export_dialog import ExportDialog
from linnaeus.gui.widgets.message_line import MessageLine
from linnaeus.gui.workers import Worker


def model_metadata(
    path: Path, *, on_progress: ProgressCallback, cancel: CancelToken
) -> OnnxMetadata:
    """The model file's Linnaeus metadata, or ModelFileError saying what is wrong (a Worker
    reads it: a large model takes a moment)."""
    return read_metadata(path)


def describe_model(metadata: OnnxMetadata) -> str:
    size = metadata.input_format.get("size")
    text = f"{metadata.model_version} ({metadata.model_kind}): {', '.join(metadata.classes)}"
    text += f"; images resized to {size} px" if size else ""
    if metadata.threshold is not None:
        text += (
            f"; {metadata.positive_class} when its probability is at least {metadata.threshold:.3f}"
        )
    text += " (int8)" if metadata.int8 else ""
    if metadata.unfamiliar is None:
        return text + ". Exported before Linnaeus marked unfamiliar images: export it again."
    return text + "; marks images unlike those it was trained on."


def _browse_row(edit: QLineEdit, button: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row


class ClassifyDialog(QDialog):
    """Classify every image in a folder with the project's exported active model or any
    Linnaeus .onnx file; write a CSV, optionally sort copies into class folders, and
    list the results (sortable; double-click opens an image in the system viewer).

    Signal ``classification_finished(str)``: the CSV written. Runs engine.onnx.classify
    (onnxruntime only) in a `Worker`, with progress and cancel.
    """

    classification_finished = Signal(str)

    def __init__(self, store: ProjectStore | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Classify a folder")
        self._store = store
        self._worker: Worker | None = None
        self._model_worker: Worker | None = None
        self._running: set[Worker] = set()
        self._metadata: OnnxMetadata | None = None
        self.result: ClassifyResult | None = None

        self.use_active = QRadioButton("The project's active model", self)
        self.use_file = QRadioButton("A model file", self)
        group = QButtonGroup(self)
        group.addButton(self.use_active)
        group.addButton(self.use_file)
        self.export_button = QPushButton("Export it…", self)
        self.export_button.setToolTip("Export the active model to ONNX first.")
        self.model_path = QLineEdit(self)
        self.model_path.setPlaceholderText("a .onnx file exported by Linnaeus")
        self.model_browse = QPushButton("Browse…", self)
        self.model_info = MessageLine(self)
        self.folder = QLineEdit(self)
        self.folder.setPlaceholderText("the folder of images to classify (only read)")
        self.folder_browse = QPushButton("Browse…", self)
        self.csv_path = QLineEdit(self)
        self.csv_browse = QPushButton("Browse…", self)
        self.sort = QCheckBox("Also copy each image into a folder per class:", self)
        self.sort.setToolTip('Images unlike those the model was trained on go into an '
                             '"unfamiliar" folder instead.')  # fmt: skip
        self.sort_path = QLineEdit(self)
        self.sort_browse = QPushButton("Browse…", self)
        self.unknown = QCheckBox('Call images "unknown" below this confidence:', self)
        self.unknown_below = QDoubleSpinBox(self)
        self.unknown_below.setRange(0, 100)
        self.unknown_below.setValue(60)
        self.unknown_below.setSuffix(" %")
        self.unknown_below.setDecimals(0)
        self.progress = QProgressBar(self)
        self.classify_button = QPushButton("Classify", self)
        self.classify_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel", self)
        self.close_button = QPushButton("Close", self)
        self.message = MessageLine(self)
        self.results_model = PredictionsModel(self)
        self.sorted_results = QSortFilterProxyModel(self)
        self.sorted_results.setSourceModel(self.results_model)
        self.sorted_results.setSortRole(SORT_ROLE)
        self.results = QTableView(self)
        self.results.setModel(self.sorted_results)
        self.results.setSortingEnabled(True)
        self.results.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.results.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results.verticalHeader().hide()
        self.results.setAlternatingRowColors(True)
        self.results.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.results.setToolTip("Double-click an image to open it.")
        self._layout()
        self._connect()
        self._choose_default_model()
        self._update_controls()

    def _layout(self) -> None:
        form = QFormLayout()
        active = QHBoxLayout()
        active.addWidget(self.use_active)
        active.addWidget(self.export_button)
        active.addStretch(1)
        model = QVBoxLayout()
        model.addLayout(active)
        file_row = QHBoxLayout()
        file_row.addWidget(self.use_file)
        file_row.addWidget(self.model_path, 1)
        file_row.addWidget(self.model_browse)
        model.addLayout(file_row)
        model.addWidget(self.model_info)
        form.addRow("Model", model)
        form.addRow("Folder", _browse_row(self.folder, self.folder_browse))
        form.addRow("Results (CSV)", _browse_row(self.csv_path, self.csv_browse))
        form.addRow("", self.sort)
        form.addRow("", _browse_row(self.sort_path, self.sort_browse))
        unknown = QHBoxLayout()
        unknown.addWidget(self.unknown)
        unknown.addWidget(self.unknown_below)
        unknown.addStretch(1)
        form.addRow("", unknown)
        buttons = QHBoxLayout()
        policy = self.progress.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # the buttons stay put when it hides
        self.progress.setSizePolicy(policy)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.classify_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        layout.addWidget(self.results, 1)
        self.resize(760, 560)

    def _connect(self) -> None:
        self.use_active.toggled.connect(self._on_model_source_changed)
        self.model_path.editingFinished.connect(self._on_model_source_changed)
        self.model_browse.clicked.connect(self._on_model_browse_clicked)
        self.export_button.clicked.connect(self._on_export_button_clicked)
        self.folder.textChanged.connect(self._on_folder_changed)
        self.folder_browse.clicked.connect(self._on_folder_browse_clicked)
        self.csv_browse.clicked.connect(self._on_csv_browse_clicked)
        self.sort_browse.clicked.connect(self._on_sort_browse_clicked)
        for box in (self.sort, self.unknown):
            box.toggled.connect(self._update_controls)
        for edit in (self.csv_path, self.sort_path):
            edit.textChanged.connect(self._update_controls)
        self.classify_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.reject)
        self.results.doubleClicked.connect(self._on_results_double_clicked)

    # -- the model ----------------------------------------------------------

    def active_model_file(self) -> Path | None:
        """The exported file of the project's active model, if it was exported."""
        if self._store is None:
            return None
        active = versions.active_version(self._store)
        if active is None:
            return None
        for int8 in (False, True):
            path = exported_model_path(self._store.project_dir, active.name, int8)
            if path.is_file():
                return path
        return None

    def chosen_model(self) -> Path | None:
        if self.use_active.isChecked():
            return self.active_model_file()
        text = self.model_path.text().strip()
        return Path(text) if text else None

    def _choose_default_model(self) -> None:
        has_active = self._store is not None and versions.active_version(self._store)
        self.use_active.setEnabled(bool(has_active))
        (self.use_active if has_active else self.use_file).setChecked(True)
        self._on_model_source_changed()

    def _on_model_source_changed(self) -> None:
        self._metadata = None
        self.export_button.setVisible(
            self.use_active.isChecked() and self.active_model_file() is None
        )
        path = self.chosen_model()
        if path is None:
            if self.use_active.isChecked():
                self.model_info.show_message(
                    "info", "The active model has not been exported yet: export it first."
                )
            else:
                self.model_info.clear()
            self._update_controls()
            return
        worker = Worker(model_metadata, path)
        worker.finished.connect(lambda m, w=worker: self._on_model_checked(w, m, None))
        worker.failed.connect(lambda text, w=worker: self._on_model_checked(w, None, text))
        self._model_worker = worker
        self._running.add(worker)
        self.model_info.show_message("info", f"Reading {path.name}…")
        self._update_controls()
        worker.start(owner=self)

    def _on_model_checked(
        self, worker: Worker, metadata: OnnxMetadata | None, error: str | None
    ) -> None:
        self._running.discard(worker)
        if worker is not self._model_worker:
            return
        self._metadata = metadata
        if metadata is not None:
            self.model_info.show_message("success", describe_model(metadata))
        else:
            self.model_info.show_message("error", error or "This is not a Linnaeus model.")
        self._update_controls()

    # -- running ------------------------------------------------------------

    def request(self) -> ClassifyRequest | None:
        """What the dialog would classify now, or None while something is missing."""
        model, folder, csv = self.chosen_model(), self.folder.text().strip(), self.csv_path.text()
        if model is None or self._metadata is None or not folder or not csv.strip():
            return None
        sort = (
            Path(self.sort_path.text()) if self.sort.isChecked() and self.sort_path.text() else None
        )
        if self.sort.isChecked() and sort is None:
            return None
        unknown = self.unknown_below.value() / 100 if self.unknown.isChecked() else None
        return ClassifyRequest(model, Path(folder), Path(csv.strip()), sort, unknown)

    def is_running(self) -> bool:
        return self._worker is not None

    def start(self) -> None:
        """Classify with the settings shown."""
        request = self.request()
        if request is None or self.is_running():
            return
        self.message.clear()
        self.results_model.set_predictions([], None)
        self.progress.setRange(0, 0)
        worker = Worker(
            classify, request.model, request.folder, request.csv, sort_into=request.sort_into,
            unknown_below=request.unknown_below, keep_predictions=True,
        )  # fmt: skip
        worker.progress.connect(self._on_worker_progress)
        worker.finished.connect(self._on_worker_finished)
        worker.failed.connect(self._on_worker_failed)
        worker.cancelled.connect(self._on_worker_cancelled)
        self._worker = worker
        self._update_controls()
        worker.start(owner=self)

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self.cancel_button.setEnabled(False)

    def _on_worker_progress(self, progress: Progress) -> None:
        self.progress.setRange(0, max(progress.total, 1))
        self.progress.setValue(progress.done)
        verb = "Copying" if progress.stage == "sort" else "Classifying"
        self.progress.setFormat(f"{verb}: {progress.done:,} of {progress.total:,}")

    def _on_worker_finished(self, result: ClassifyResult) -> None:
        self._ended()
        self.result = result
        self.results_model.set_predictions(result.predictions, result.unknown_below)
        # Models exported before unfamiliar images were scored have nothing to show there.
        self.results.setColumnHidden(UNFAMILIAR_COLUMN, result.unfamiliar is None)
        self.results.resizeColumnsToContents()
        self.results.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.message.show_message("success", result_summary(result))
        self.classification_finished.emit(str(result.csv))

    def _on_worker_failed(self, text: str) -> None:
        self._ended()
        self.message.show_message("error", text)

    def _on_worker_cancelled(self) -> None:
        self._ended()
        self.message.show_message("info", "Cancelled. No results were written.")

    def _ended(self) -> None:
        self._worker = None
        self.progress.setRange(0, 1)
        self.progress.reset()
        self.progress.setFormat("%p%")
        self._update_controls()

    def _update_controls(self) -> None:
        running = self.is_running()
        self.classify_button.setEnabled(not running and self.request() is not None)
        self.cancel_button.setEnabled(running)
        self.close_button.setEnabled(not running)
        self.progress.setVisible(running)
        self.model_path.setEnabled(self.use_file.isChecked() and not running)
        self.model_browse.setEnabled(self.use_file.isChecked() and not running)
        self.sort_path.setEnabled(self.sort.isChecked())
        self.sort_browse.setEnabled(self.sort.isChecked())
        self.unknown_below.setEnabled(self.unknown.isChecked())

    # -- slots --------------------------------------------------------------

    def _on_folder_changed(self, text: str) -> None:
        folder = Path(text.strip())
        if text.strip() and folder.name:
            self.csv_path.setText(str(folder.parent / f"{folder.name}_predictions.csv"))
            if not self.sort_path.text():
                self.sort_path.setText(str(folder.parent / f"{folder.name}_sorted"))
        self._update_controls()

    def _on_model_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", "", "ONNX models (*.onnx)")
        if path:
            self.model_path.setText(path)
            self._on_model_source_changed()

    def _on_export_button_clicked(self) -> None:
        if self._store is None:
            return
        dialog = ExportDialog(self._store, self)
        dialog.model_exported.connect(lambda path: self._on_model_source_changed())
        dialog.exec()

    def _on_folder_browse_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of images to classify")
        if path:
            self.folder.setText(path)

    def _on_csv_browse_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Write the results to", self.csv_path.text(), "CSV files (*.csv)"
        )
        if path:
            self.csv_path.setText(path)

    def _on_sort_browse_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Copy the sorted images into")
        if path:
            self.sort_path.setText(path)

    def _on_results_double_clicked(self, index: QModelIndex) -> None:
        if self.result is None or not index.isValid():
            return
        row = self.sorted_results.mapToSource(index).row()
        path = self.result.folder / self.results_model.predictions[row].path
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def reject(self) -> None:
        """Closing is refused while classifying (cancel first)."""
        if not self.is_running():
            super().reject()

    def closeEvent(self, event: Any) -> None:
        if self.is_running():
            event.ignore()
        else:
            super().closeEvent(event)
