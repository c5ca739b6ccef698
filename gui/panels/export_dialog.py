"""Export a model version to ONNX, or write its HTML report, as ``linnaeus`` child processes.

Both need TensorFlow (export converts the Keras model; the report renders
heatmaps), which the GUI never imports: ``linnaeus export|report ... --json``
runs as a child process and answers with one JSON object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtCore import Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QCheckBox
from PySide6.QtWidgets import QComboBox
from PySide6.QtWidgets import QDialog
from PySide6.QtWidgets import QDialogButtonBox
from PySide6.QtWidgets import QFileDialog
from PySide6.QtWidgets import QFormLayout
from PySide6.QtWidgets import QGroupBox
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QLineEdit
from PySide6.QtWidgets import QProgressBar
from PySide6.QtWidgets import QPushButton
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import exported_model_path
from linnaeus.engine.project.versions import report_path
from linnaeus.gui.processes.child_process import ChildProcess
from linnaeus.gui.processes.child_process import CommandFactory
from linnaeus.gui.processes.child_process import ProcessEnd
from linnaeus.gui.processes.child_process import failure_message
from linnaeus.gui.processes.child_process import linnaeus_command
from linnaeus.gui.widgets.formatting import format_duration
from linnaeus.gui.widgets.formatting import format_size
from linnaeus.gui.widgets.message_line import MessageLine

INT8_LOSS_POINTS = 1.0  # an int8 model this many accuracy points worse than float: advise float


def int8_advice(change: float | None, int8_file: Path, float_file: Path, float_exists: bool) -> str:
    """Which file to classify with, after an int8 export changed the accuracy by
    ``change`` (a share: -0.04 is four points worse than the float model)."""
    if change is None:
        return ""
    points = change * 100
    if points > -INT8_LOSS_POINTS:
        return (
            f"Within {INT8_LOSS_POINTS:g} point of the float model: classify with "
            f"{int8_file.name} (smaller, often faster)."
        )
    shown = float_file.name if float_file.parent == int8_file.parent else str(float_file)
    make = "" if float_exists else " (export again without int8 to write it)"
    return (
        f"Advice: int8 is {-points:.1f} points less accurate, so classify with the float "
        f"model, {shown}{make}. Keep {int8_file.name} only for computers where size or "
        "speed matters more than those points."
    )


def export_summary(result: dict[str, Any], advice: str = "") -> str:
    """What ``linnaeus export --json`` reported, in words (and ``advice`` after an
    int8 export: `int8_advice`)."""
    text = (
        f"Exported {result.get('model_version', 'the model')} to {result.get('onnx')} "
        f"({format_size(result.get('size_bytes'))}) in "
        f"{format_duration(result.get('seconds'))}."
    )
    difference, checked = result.get("max_abs_difference"), result.get("images_checked")
    if difference is not None and checked:
        text += (
            f" Checked on {checked} project images: the largest difference from the "
            f"trained model's probabilities is {difference:.1e}."
        )
    if result.get("int8"):
        change = result.get("int8_accuracy_change")
        text += " Quantised to int8" + (
            f": accuracy change {change * 100:+.1f} points." if change is not None else "."
        )
    return f"{text}\n{advice}" if advice else text


def _right(button: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addStretch(1)
    row.addWidget(button)
    return row


def _path_row(parent: QWidget, edit: QLineEdit, browse: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(browse)
    return row


class ExportDialog(QDialog):
    """Export a model version to ONNX (optionally int8) and write its HTML model card.

    Signal ``model_exported(str)``: the path of a newly exported .onnx file.
    ``command`` turns ``linnaeus`` arguments into a program (tests pass a fake).
    """

    model_exported = Signal(str)

    def __init__(
        self,
        store: ProjectStore,
        parent: QWidget | None = None,
        *,
        command: CommandFactory = linnaeus_command,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export the model")
        self._store = store
        self._command = command
        self._result: dict[str, Any] | None = None
        self._running_kind = ""
        self._last_path: Path | None = None
        self.process = ChildProcess(self, kill_after_ms=5_000)
        self.process.line_received.connect(self._on_process_line)
        self.process.ended.connect(self._on_process_ended)

        self.version_choice = QComboBox(self)
        active = versions.active_version(store)
        for version in versions.list_versions(store):
            if version.status == "done":
                mark = " (active)" if active and version.id == active.id else ""
                self.version_choice.addItem(version.name + mark, version.name)
        if active is not None:
            self.version_choice.setCurrentIndex(self.version_choice.findData(active.name))
        self.onnx_path = QLineEdit(self)
        self.onnx_browse = QPushButton("Browse…", self)
        self.int8 = QCheckBox("Quantise to int8 (smaller, often faster on CPUs)", self)
        self.int8.setToolTip(
            "The int8 model is compared with the float one on held-out images; the "
            "dialog says which to classify with."
        )
        self.export_button = QPushButton("Export ONNX model", self)
        self.report_path = QLineEdit(self)
        self.report_browse = QPushButton("Browse…", self)
        self.report_button = QPushButton("Write report", self)
        self.busy = QProgressBar(self)
        self.busy.setRange(0, 0)
        self.busy.hide()
        self.status = QLabel(self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.hide()
        self.result = MessageLine(self)
        self.show_button = QPushButton("Show in folder", self)
        self.show_button.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self._layout()
        self.version_choice.currentIndexChanged.connect(self._on_version_changed)
        self.int8.toggled.connect(self._on_version_changed)
        self.onnx_browse.clicked.connect(self._on_onnx_browse_clicked)
        self.report_browse.clicked.connect(self._on_report_browse_clicked)
        self.export_button.clicked.connect(self.export_model)
        self.report_button.clicked.connect(self.write_report)
        self.cancel_button.clicked.connect(self.process.stop)
        self.show_button.clicked.connect(self._on_show_button_clicked)
        self.buttons.rejected.connect(self.reject)
        self._on_version_changed()

    def _layout(self) -> None:
        onnx = QGroupBox("ONNX model, to classify folders on any computer", self)
        onnx_form = QFormLayout(onnx)
        onnx_form.addRow("Save as", _path_row(onnx, self.onnx_path, self.onnx_browse))
        onnx_form.addRow("", self.int8)
        onnx_form.addRow("", _right(self.export_button))
        report = QGroupBox("Report: the model card, as one HTML page", self)
        report_form = QFormLayout(report)
        report_form.addRow("Save as", _path_row(report, self.report_path, self.report_browse))
        report_form.addRow("", _right(self.report_button))
        top = QFormLayout()
        top.addRow("Model version", self.version_choice)
        progress = QHBoxLayout()
        progress.addWidget(self.busy, 1)
        progress.addWidget(self.cancel_button)
        outcome = QHBoxLayout()
        outcome.addWidget(self.result, 1)
        outcome.addWidget(self.show_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(onnx)
        layout.addWidget(report)
        layout.addWidget(self.status)
        layout.addLayout(progress)
        layout.addLayout(outcome)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.resize(max(640, self.sizeHint().width()), self.sizeHint().height())

    # -- public -------------------------------------------------------------

    def is_running(self) -> bool:
        return self.process.is_running

    def export_model(self) -> None:
        """Run ``linnaeus export`` for the chosen version (not while another process
        writes to the project: the dialog says which)."""
        busy = project_lock.busy_message(self._store.project_dir)
        if busy is not None:
            self.result.show_message("error", busy)
            return
        arguments = ["export", *self._common_arguments(), "--out", self.onnx_path.text()]
        self._start(
            "export",
            arguments + (["--int8"] if self.int8.isChecked() else []),
            "Exporting: converting the model and checking it on project images…",
        )

    def write_report(self) -> None:
        """Run ``linnaeus report`` for the chosen version."""
        arguments = ["report", *self._common_arguments(), "--out", self.report_path.text()]
        self._start("report", arguments, "Writing the report…")

    # -- running ------------------------------------------------------------

    def _common_arguments(self) -> list[str]:
        return [
            "--project",
            str(self._store.project_dir),
            "--model",
            str(self.version_choice.currentData()),
            "--json",
        ]

    def _start(self, kind: str, arguments: list[str], status: str) -> None:
        if self.is_running() or self.version_choice.currentData() is None:
            return
        out = Path(arguments[arguments.index("--out") + 1])
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self.result.show_message("error", f"Cannot create {out.parent}: {error.strerror}")
            return
        self._result, self._running_kind, self._last_path = None, kind, None
        self.result.clear()
        self.show_button.hide()
        self.status.setText(status)
        self._set_running(True)
        self.process.start(*self._command(arguments))

    def _set_running(self, running: bool) -> None:
        self.busy.setVisible(running)
        self.cancel_button.setVisible(running)
        for widget in (
            self.export_button,
            self.report_button,
            self.version_choice,
            self.onnx_path,
            self.report_path,
            self.int8,
            self.onnx_browse,
            self.report_browse,
        ):
            widget.setEnabled(not running and self.version_choice.count() > 0)

    def _on_process_line(self, line: dict[str, Any]) -> None:
        self._result = line

    def _on_process_ended(self, end: ProcessEnd) -> None:
        self._set_running(False)
        self.status.clear()
        result, kind = self._result, self._running_kind
        what = "The export" if kind == "export" else "The report"
        if end.exit_code == 0 and result is not None:
            if kind == "export":
                self._last_path = Path(str(result.get("onnx")))
                self._show_export(result, self._last_path)
                self.model_exported.emit(str(self._last_path))
            else:
                self._last_path = Path(str(result.get("report")))
                self.result.show_message(
                    "success",
                    f"Wrote the report of {result.get('model_version')} to {self._last_path}.",
                )
            self.show_button.show()
        elif end.stop_requested:
            self.result.show_message("info", f"{what} was cancelled; nothing was written.")
        else:
            self.result.show_message("error", failure_message(end, what))
        self.fit_contents()

    def _show_export(self, result: dict[str, Any], path: Path) -> None:
        if not result.get("int8"):
            self.result.show_message("success", export_summary(result))
            return
        change = result.get("int8_accuracy_change")
        float_file = exported_model_path(self._store.project_dir, str(result.get("model_version")))
        advice = int8_advice(change, path, float_file, float_file.is_file())
        worse = change is not None and change * 100 <= -INT8_LOSS_POINTS
        self.result.show_message("warning" if worse else "success", export_summary(result, advice))

    def fit_contents(self) -> None:
        """Grow to show everything after the outcome's text changed: a word-wrapped
        message asks for its height only for a given width, which a dialog's minimum
        size does not follow, so the buttons and the check box were squashed."""
        layout = self.layout()
        layout.activate()
        needed = max(layout.totalHeightForWidth(self.width()), layout.totalMinimumSize().height())
        self.setMinimumHeight(needed)
        if self.height() < needed:
            self.resize(self.width(), needed)

    # -- slots --------------------------------------------------------------

    def _on_version_changed(self) -> None:
        name = self.version_choice.currentData()
        if name is None:
            self.result.show_message("info", "This project has no trained model yet.")
            self._set_running(False)
            return
        project = self._store.project_dir
        self.onnx_path.setText(str(exported_model_path(project, name, self.int8.isChecked())))
        self.report_path.setText(str(report_path(project, name)))

    def _on_onnx_browse_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the model as", self.onnx_path.text(), "ONNX models (*.onnx)"
        )
        if path:
            self.onnx_path.setText(path if path.endswith(".onnx") else f"{path}.onnx")

    def _on_report_browse_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Write the report as", self.report_path.text(), "Web pages (*.html)"
        )
        if path:
            self.report_path.setText(path if path.endswith(".html") else f"{path}.html")

    def _on_show_button_clicked(self) -> None:
        if self._last_path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._last_path.parent)))

    def reject(self) -> None:
        """Closing stops a running export (nothing half-written is left)."""
        if self.is_running():
            self.process.kill()
        super().reject()
