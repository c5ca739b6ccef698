"""The evaluation panel: how good a model version is, and which labels to check first."""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QModelIndex
from PySide6.QtCore import QSettings
from PySide6.QtCore import Qt
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QAbstractItemView
from PySide6.QtWidgets import QComboBox
from PySide6.QtWidgets import QGridLayout
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QHeaderView
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QProgressBar
from PySide6.QtWidgets import QPushButton
from PySide6.QtWidgets import QSlider
from PySide6.QtWidgets import QSplitter
from PySide6.QtWidgets import QStackedWidget
from PySide6.QtWidgets import QTableView
from PySide6.QtWidgets import QTabWidget
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.evaluation.decision import BinaryRates
from linnaeus.engine.evaluation.decision import binary_rates
from linnaeus.engine.evaluation.metrics import Evaluation
from linnaeus.engine.evaluation.metrics import calibration_note
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.gui.panels.evaluation_data import EvaluationData
from linnaeus.gui.panels.evaluation_data import decision_text
from linnaeus.gui.panels.evaluation_data import load_evaluation
from linnaeus.gui.panels.evaluation_data import rates_text
from linnaeus.gui.panels.evaluation_data import summary_text
from linnaeus.gui.panels.evaluation_models import ConfusionModel
from linnaeus.gui.panels.evaluation_models import PerClassModel
from linnaeus.gui.panels.evaluation_plots import plot_reliability
from linnaeus.gui.panels.evaluation_plots import plot_roc
from linnaeus.gui.panels.label_check import LabelCheckView
from linnaeus.gui.widgets.message_line import MessageLine
from linnaeus.gui.widgets.plots import VERMILION
from linnaeus.gui.widgets.plots import make_plot
from linnaeus.gui.workers import Worker

SLIDER_STEPS = 1000  # threshold resolution 0.001; 0 and 1 themselves are no thresholds
SPLITS = (("test", "Test images"), ("val", "Validation images"))


def _note(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setWordWrap(True)
    return label


def _fit_height(view: QTableView, most_rows: int = 8) -> None:
    """Make ``view`` exactly as tall as its rows (at most ``most_rows``) and a horizontal
    scroll bar: the space left goes to the confusion matrix, never the per-class rows."""
    rows = min(view.model().rowCount(), most_rows)
    height = view.horizontalHeader().sizeHint().height() + 2 * view.frameWidth()
    height += view.horizontalScrollBar().sizeHint().height()
    height += sum(view.rowHeight(row) for row in range(rows))
    view.setFixedHeight(height)


def _table(parent: QWidget, model: Any) -> QTableView:
    view = QTableView(parent)
    view.setModel(model)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 8)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return view


class EvaluationPanel(QWidget):
    """Confusion matrix, per-class figures, ROC with a live threshold, reliability and
    the Check labels list of a model version (default: the active one) on a split.

    Every figure counts the model's own decisions. For two classes the threshold
    slider recounts them live at another threshold (a what-if: the model keeps
    deciding at its saved threshold); "Use this threshold" asks to save it.

    The main window calls `set_project(store)`, then `refresh()` after a training
    (``training_finished``), a change of active model or label edits, and connects:
    - ``filter_requested(dict)``: a confusion-matrix cell was clicked; show its
      images in the grid: {"image_ids": [...], "title": "Test images labelled
      disk, predicted square (v3)", "label": "disk", "predicted": "square",
      "split": "test", "model_version": "v3"} (e.g. ``show_images(d["image_ids"],
      d["title"])``);
    - ``open_image_requested(int)``: an image of the Check labels list was activated
      (double-click or Enter): show it in the viewer with the heatmap of the class
      `suggested_class` gives;
    - ``suggestion_accepted(int, str)``: label this image as this class, undoably
      (A in the Check labels list); then pass the new labels to `labels_changed`;
    - ``threshold_chosen(int, float)``: "Use this threshold" was pressed: save the
      threshold with this version (id), undoably, then `refresh()`.
    The evaluation is computed in a `Worker`, off the GUI thread.
    """

    filter_requested = Signal(dict)
    open_image_requested = Signal(int)
    suggestion_accepted = Signal(int, str)
    threshold_chosen = Signal(int, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store: ProjectStore | None = None
        self._worker: Worker | None = None
        self._running: set[Worker] = set()
        self._threshold = 0.5
        self._data: EvaluationData | None = None
        self._shown: Evaluation | None = None  # at the slider's threshold
        self.version_choice = QComboBox(self)
        self.version_choice.setToolTip("The model version to evaluate.")
        self.split_choice = QComboBox(self)
        for split, label in SPLITS:
            self.split_choice.addItem(label, split)
        self.split_choice.setToolTip(
            "Test images were never used to train or tune the model: "
            "report these. Validation images tuned it."
        )
        self.busy = QProgressBar(self)
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.hide()
        self.summary = _note("", self)
        self.decision = _note("", self)
        self.message = MessageLine(self)

        self._make_tables()
        self._make_plots()
        self._layout()
        self.version_choice.currentIndexChanged.connect(self._on_choice_changed)
        self.split_choice.currentIndexChanged.connect(self._on_choice_changed)
        self._show_empty("Open a project to evaluate its models.")

    def _make_tables(self) -> None:
        """The confusion matrix, the per-class figures and the relabel queue."""
        self.confusion_model = ConfusionModel(self)
        self.confusion_view = QTableView(self)
        self.confusion_view.setModel(self.confusion_model)
        self.confusion_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        for header in (
            self.confusion_view.horizontalHeader(),
            self.confusion_view.verticalHeader(),
        ):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
            header.setDefaultAlignment(Qt.AlignmentFlag.AlignCenter)
        self.confusion_view.clicked.connect(self._on_confusion_view_clicked)
        self.per_class_model = PerClassModel(self)
        self.per_class_view = _table(self, self.per_class_model)
        self.per_class_view.horizontalHeader().setStretchLastSection(True)  # names never elided
        self.label_check = LabelCheckView(self)
        self.queue_model, self.queue_view = self.label_check.model, self.label_check.table
        self.label_check.open_image_requested.connect(self.open_image_requested)
        self.label_check.suggestion_accepted.connect(self.suggestion_accepted)
        self.label_check.rows_changed.connect(self._on_label_check_rows_changed)

    def _make_plots(self) -> None:
        """The ROC curve with its threshold slider, and the reliability curve."""
        self.roc_plot = make_plot(
            self,
            title="ROC curve",
            x_label="False positive rate (1 − specificity)",
            y_label="Sensitivity",
            legend="bottom-right",
        )
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.threshold_slider.setRange(1, SLIDER_STEPS - 1)
        self.threshold_slider.setToolTip(
            "What if the model decided at another threshold? Every figure follows; the "
            "model keeps its threshold until you press Use this threshold."
        )
        self.threshold_slider.valueChanged.connect(self._on_threshold_slider_value_changed)
        self.reset_threshold = QPushButton("Model's threshold", self)
        self.reset_threshold.setToolTip("Back to the threshold the model decides with.")
        self.reset_threshold.clicked.connect(self._on_reset_threshold_clicked)
        self.use_threshold = QPushButton("Use this threshold", self)
        tip = "Make the model decide here: the grid, the evaluation, the model card and its "
        self.use_threshold.setToolTip(tip + "exports in the project follow. Undo: Ctrl+Z.")
        self.use_threshold.clicked.connect(self._on_use_threshold_clicked)
        self.rates_label = _note("", self)
        self.reliability_note = _note("", self)
        self.reliability_plot = make_plot(
            self,
            title="Reliability",
            x_label="Confidence",
            y_label="Share correct",
            legend="bottom-right",
        )
        self._roc_marker = pg.ScatterPlotItem(size=12, brush=pg.mkBrush(VERMILION), pen=None)

    def _layout(self) -> None:
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Model", self))
        bar.addWidget(self.version_choice)
        bar.addWidget(QLabel("on", self))
        bar.addWidget(self.split_choice)
        bar.addWidget(self.busy)
        bar.addStretch(1)

        left = self._tables_column()
        self.tabs = self._tabs()

        self.splitter = splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(left)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([400, 600])  # the queue's file names need the room
        content = QWidget(self)
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.addWidget(self.summary)
        content_layout.addWidget(self.decision)
        content_layout.addWidget(splitter, 1)
        self.empty = _note("", self)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pages = QStackedWidget(self)
        self.pages.addWidget(self.empty)
        self.pages.addWidget(content)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.message)
        layout.addWidget(self.pages, 1)

    def _tables_column(self) -> QWidget:
        """The confusion matrix above the per-class table."""
        left = QWidget(self)
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(
            _note(
                "<b>Confusion matrix</b>: rows are the labels, columns the "
                "model's decisions. Click a cell to see its images.",
                left,
            )
        )
        column.addWidget(self.confusion_view, 3)
        column.addWidget(_note("<b>Per class</b>", left))
        column.addWidget(self.per_class_view, 2)
        return left

    def _tabs(self) -> QTabWidget:
        """The Check labels list, the ROC curve with its threshold, and calibration."""
        roc = QWidget(self)
        roc_layout = QVBoxLayout(roc)
        roc_layout.addWidget(self.roc_plot, 1)
        self.threshold_row = QWidget(roc)  # the slider as wide as the plot, buttons below
        slider_row = QGridLayout(self.threshold_row)
        slider_row.setContentsMargins(0, 0, 0, 0)
        slider_row.addWidget(QLabel("Threshold", roc), 0, 0)
        slider_row.addWidget(self.threshold_slider, 0, 1, 1, 3)
        slider_row.setColumnStretch(1, 1)
        slider_row.addWidget(self.reset_threshold, 1, 2)
        slider_row.addWidget(self.use_threshold, 1, 3)
        roc_layout.addWidget(self.threshold_row)
        roc_layout.addWidget(self.rates_label)
        reliability = QWidget(self)
        reliability_layout = QVBoxLayout(reliability)
        reliability_layout.addWidget(self.reliability_note)
        reliability_layout.addWidget(self.reliability_plot, 1)
        tabs = QTabWidget(self)
        tabs.addTab(self.label_check, "Check labels")
        tabs.addTab(roc, "ROC")
        tabs.addTab(reliability, "Calibration")
        return tabs

    # -- public -------------------------------------------------------------

    def save_state(self, settings: QSettings) -> None:
        """Remember the split shown, the tab and the layout."""
        settings.setValue("split", self.split_choice.currentData())
        settings.setValue("tab", self.tabs.currentIndex())
        settings.setValue("splitter", self.splitter.saveState())

    def restore_state(self, settings: QSettings) -> None:
        index = self.split_choice.findData(settings.value("split"))
        if index >= 0:
            self.split_choice.setCurrentIndex(index)
        self.tabs.setCurrentIndex(int(settings.value("tab", 0)))
        if settings.value("splitter"):
            self.splitter.restoreState(settings.value("splitter"))

    def set_project(self, store: ProjectStore | None) -> None:
        """Evaluate this project's models (None: no project)."""
        self._store = store
        self.refresh()

    def refresh(self) -> None:
        """List the finished versions again, select the active one and evaluate it."""
        self.version_choice.blockSignals(True)
        self.version_choice.clear()
        if self._store is not None:
            active = versions.active_version(self._store)
            for version in versions.list_versions(self._store):
                if version.status == "done":
                    mark = " (active)" if active and version.id == active.id else ""
                    self.version_choice.addItem(version.name + mark, version.id)
            if active is not None:
                self.version_choice.setCurrentIndex(self.version_choice.findData(active.id))
        self.version_choice.blockSignals(False)
        self._evaluate()

    def suggested_class(self, image_id: int) -> str | None:
        """The class the Check labels list suggests for an image (None: not listed)."""
        return self.label_check.suggested_class(image_id)

    def evaluation_data(self) -> EvaluationData | None:
        """What is shown (None while nothing is)."""
        return self._data

    # -- computing ----------------------------------------------------------

    def _on_choice_changed(self) -> None:
        self._evaluate()

    def _evaluate(self) -> None:
        if self._worker is not None:
            self._worker.cancel()  # its result, if any, is dropped
            self._worker = None
        self.message.clear()
        if self._store is None:
            self._show_empty("Open a project to evaluate its models.")
            return
        version_id = self.version_choice.currentData()
        if version_id is None:
            self._show_empty("No model yet: train one, and its evaluation appears here.")
            return
        worker = Worker(
            load_evaluation, self._store.project_dir, version_id, self.split_choice.currentData()
        )
        worker.finished.connect(lambda data, w=worker: self._on_worker_ended(w, data, None))
        worker.failed.connect(lambda text, w=worker: self._on_worker_ended(w, None, text))
        worker.cancelled.connect(lambda w=worker: self._on_worker_ended(w, None, None))
        self._worker = worker
        self._running.add(worker)  # alive until it ends, even once replaced
        self.busy.show()
        worker.start(owner=self)

    def _on_worker_ended(
        self, worker: Worker, data: EvaluationData | None, error: str | None
    ) -> None:
        self._running.discard(worker)
        if worker is not self._worker:
            return  # a newer request replaced it
        self._worker = None
        self.busy.hide()
        if data is not None:
            self._show(data)
        elif error is not None:
            self._show_empty("")
            self.message.show_message("error", error)

    # -- showing ------------------------------------------------------------

    def _show_empty(self, text: str) -> None:
        self._data = self._shown = None
        self.empty.setText(text)
        self.pages.setCurrentWidget(self.empty)
        for model in (self.confusion_model, self.per_class_model):
            model.set_evaluation(None)
        self.label_check.set_entries([], held_out=False)

    def _show(self, data: EvaluationData) -> None:
        self._data = data
        evaluation = data.evaluation
        self._show_figures(evaluation)
        _fit_height(self.per_class_view)
        self.label_check.set_entries(data.queue, held_out=data.held_out)
        self._on_label_check_rows_changed()
        binary = evaluation.operating_point is not None
        plot_roc(self.roc_plot, evaluation, binary)
        self._show_threshold_controls(binary)
        plot_reliability(self.reliability_plot, evaluation)
        self.reliability_plot.setVisible(evaluation.shows_calibration)
        self.reliability_note.setText(
            'Does "90% sure" mean right 9 times in 10? Points below the dashed line: the '
            "model is more confident than it is right; above: less."
            if evaluation.shows_calibration
            else calibration_note(evaluation.images)
        )
        self.pages.setCurrentIndex(1)

    def _show_figures(self, evaluation: Evaluation) -> None:
        """Show ``evaluation``'s figures (the saved threshold's, or a what-if's)."""
        self._shown = evaluation
        self.summary.setText(summary_text(self._data, evaluation) if self._data else "")
        self.confusion_model.set_evaluation(evaluation)
        self.per_class_model.set_evaluation(evaluation)

    def _show_threshold_controls(self, binary: bool) -> None:
        self.threshold_row.setVisible(binary)
        for widget in (self.threshold_slider, self.reset_threshold):
            widget.setEnabled(binary)
        if not binary:
            self.use_threshold.setEnabled(False)
            self.decision.setText(decision_text(self._data.evaluation) if self._data else "")
            self.rates_label.setText(
                "Each curve is one class against all others. A decision "
                "threshold applies to two-class tasks; with more classes "
                "the model picks the most probable one."
            )
            return
        self.roc_plot.getPlotItem().addItem(self._roc_marker)
        self._on_reset_threshold_clicked()

    def _on_reset_threshold_clicked(self) -> None:
        point = self._data.evaluation.operating_point if self._data else None
        if point is not None:
            self._set_threshold(point.threshold)

    def _on_threshold_slider_value_changed(self, value: int) -> None:
        self._set_threshold(value / SLIDER_STEPS)

    def _on_use_threshold_clicked(self) -> None:
        if self._data is not None and self.what_if():
            self.threshold_chosen.emit(self._data.version_id, self._threshold)

    def what_if(self) -> bool:
        """Whether the figures shown are at another threshold than the model's."""
        point = self._data.evaluation.operating_point if self._data else None
        return point is not None and self._threshold != point.threshold

    def _set_threshold(self, threshold: float) -> None:
        """Show every figure at ``threshold``; the slider shows it to its resolution."""
        data = self._data
        point = data.evaluation.operating_point if data else None
        if data is None or point is None:
            return
        self._threshold = threshold
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(threshold * SLIDER_STEPS))
        self.threshold_slider.blockSignals(False)
        self._show_figures(data.at_threshold(threshold))
        self.use_threshold.setEnabled(self.what_if())
        decision = decision_text(data.evaluation)
        if self.what_if():
            decision = (
                f"<b>What if</b> the model decided at {threshold:.3f}? The figures show it; "
                f"{decision[0].lower()}{decision[1:]} Press <i>Use this threshold</i> to "
                "change it."
            )
        self.decision.setText(decision)
        rates = self.current_rates()
        if rates is None:
            return
        self.rates_label.setText(rates_text(rates, point.positive_class))
        if math.isfinite(rates.sensitivity) and math.isfinite(rates.specificity):
            self._roc_marker.setData([1 - rates.specificity], [rates.sensitivity])

    def shown_evaluation(self) -> Evaluation | None:
        """The figures on screen: at the slider's threshold (None while nothing is shown)."""
        return self._shown

    def current_rates(self) -> BinaryRates | None:
        """The sensitivity and specificity at the shown threshold (two classes only)."""
        data = self._data
        is_positive = None if data is None else data.is_positive
        if data is None or data.scores is None or is_positive is None:
            return None
        return binary_rates(is_positive, data.scores, self._threshold)

    def _on_confusion_view_clicked(self, index: QModelIndex) -> None:
        data, shown = self._data, self._shown
        if not index.isValid() or data is None or shown is None:
            return
        label, predicted = self.confusion_model.cell(index)
        split = {"test": "test", "val": "validation"}.get(data.evaluation.split, "")
        what_if = f", what if at {self._threshold:.3f}" if self.what_if() else ""
        self.filter_requested.emit(
            {
                "label": label,
                "predicted": predicted,
                "split": data.evaluation.split,
                "model_version": data.version_name,
                "image_ids": data.cell_images(shown, index.row(), index.column()),
                "title": f"{split.capitalize()} images labelled {label}, predicted {predicted} "
                f"({data.version_name}{what_if})",
            }
        )

    def _on_label_check_rows_changed(self) -> None:
        wrong = self.label_check.flagged
        self.tabs.setTabText(0, f"Check labels ({wrong})" if wrong else "Check labels")

    def labels_changed(self, labels: dict[int, str | None]) -> None:
        """These images now have these labels (a label edit, or its undo): the Check
        labels list follows without evaluating again."""
        self.label_check.labels_changed(labels)
