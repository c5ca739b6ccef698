"""File > Export labels…: the project's labels as a CSV table or a folder tree of copies.

The work is `engine.dataset.export_labels` (the same as ``linnaeus labels
export``) on a worker thread; copies only, never inside the image folder.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QButtonGroup
from PySide6.QtWidgets import QCheckBox
from PySide6.QtWidgets import QFileDialog
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QLineEdit
from PySide6.QtWidgets import QPushButton
from PySide6.QtWidgets import QRadioButton
from PySide6.QtWidgets import QWidget

from linnaeus.engine.dataset.export_labels import ExportReport
from linnaeus.engine.dataset.export_labels import export_csv
from linnaeus.engine.dataset.export_labels import export_tree
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.project.store import ProjectStore
from linnaeus.gui.widgets.job_dialog import JobDialog
from linnaeus.gui.workers import Worker


def export_labels(
    project_dir: Path,
    destination: Path,
    *,
    tree: bool,
    by_split: bool = False,
    on_progress: ProgressCallback,
    cancel: CancelToken,
) -> ExportReport:
    """Write the labels of the project in ``project_dir`` (run by a `Worker`, which
    opens its own connection to the project)."""
    with ProjectStore.open(project_dir) as store:
        if not tree:
            return export_csv(store, destination)
        return export_tree(
            store, destination, by_split=by_split, on_progress=on_progress, cancel=cancel
        )


def default_destination(project_dir: Path, *, tree: bool) -> Path:
    """Beside the project folder: ``<project>-labels.csv`` or ``<project> by class``."""
    name = project_dir.name
    return project_dir.parent / (f"{name} by class" if tree else f"{name}-labels.csv")


class ExportLabelsDialog(JobDialog):
    """Choose CSV or copies and where; export with progress and Cancel."""

    def __init__(self, project_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__("Export labels", "Export", parent)
        self.project_dir = project_dir
        self.as_csv = QRadioButton("A table (CSV): path, label, group, split of every image")
        self.as_tree = QRadioButton("Copies of the labelled images in a folder per class")
        self.by_split = QCheckBox("with a folder per split first (train, val, test)")
        kind = QButtonGroup(self)
        for button in (self.as_csv, self.as_tree):
            kind.addButton(button)
        self.as_csv.setChecked(True)
        self.destination = QLineEdit(str(default_destination(project_dir, tree=False)))
        self.browse = QPushButton("Choose…")
        where = QHBoxLayout()
        where.addWidget(QLabel("Save to"))
        where.addWidget(self.destination, 1)
        where.addWidget(self.browse)
        note = QLabel("Your image files are only read; copies go to a new or empty folder.")
        note.setWordWrap(True)
        indented = QHBoxLayout()
        indented.addSpacing(24)  # under the choice it belongs to
        indented.addWidget(self.by_split, 1)
        self.form.addWidget(self.as_csv)
        self.form.addWidget(self.as_tree)
        self.form.addLayout(indented)
        self.form.addLayout(where)
        self.form.addWidget(note)
        self.as_tree.toggled.connect(self._on_kind_toggled)
        self.browse.clicked.connect(self._on_browse_clicked)
        self.destination.textChanged.connect(self._update_buttons)
        self._on_kind_toggled(False)
        self.resize(620, 280)

    def _on_kind_toggled(self, tree: bool) -> None:
        self.by_split.setEnabled(tree)
        self.destination.setText(str(default_destination(self.project_dir, tree=tree)))

    def _on_browse_clicked(self) -> None:
        current = self.destination.text().strip()
        if self.as_tree.isChecked():
            folder = QFileDialog.getExistingDirectory(self, "A new or empty folder", current)
            chosen = folder
        else:
            chosen, _ = QFileDialog.getSaveFileName(
                self, "Save the labels as", current, "CSV files (*.csv)"
            )
        if chosen:
            self.destination.setText(chosen)

    def _update_buttons(self) -> None:
        super()._update_buttons()
        if not self.is_running():
            self.start_button.setEnabled(bool(self.destination.text().strip()))

    def start(self) -> None:
        destination = Path(self.destination.text().strip()).expanduser()
        tree = self.as_tree.isChecked()
        worker = Worker(export_labels, self.project_dir, destination, tree=tree,
                        by_split=self.by_split.isChecked())  # fmt: skip
        self.run(worker, f"Writing {destination}…")

    def finished_text(self, result: ExportReport) -> tuple[str, str]:
        if not self.as_tree.isChecked():
            return (
                "success",
                f"Wrote the labels of {result.written:,} images to {result.destination}.",
            )
        text = f"Copied {result.written:,} labelled images into {result.destination}."
        if result.skipped:
            first = "; ".join(f"{path}: {why}" for path, why in result.skipped[:3])
            return "warning", f"{text} {len(result.skipped):,} could not be copied ({first}…)."
        return "success", text
