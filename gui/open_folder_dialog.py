"""Making a project from a folder: check it first, then create it where the user says.

The dialog imports the folder into a staging project in a temporary folder,
on a worker thread with progress and Cancel: every file is read once, so it
can then show what import found (the layout it recognised, images per class
and split, each unreadable file with the reason, and the rows of a label table
it did not take as written) before anything is
created where the user can see it. "Create project" moves the staging
project to the chosen folder; Cancel deletes it. The image folder is only
ever read.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog
from PySide6.QtWidgets import QDialogButtonBox
from PySide6.QtWidgets import QFileDialog
from PySide6.QtWidgets import QFormLayout
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QHeaderView
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QLineEdit
from PySide6.QtWidgets import QProgressBar
from PySide6.QtWidgets import QPushButton
from PySide6.QtWidgets import QTableWidget
from PySide6.QtWidgets import QTableWidgetItem
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.dataset.importer import ImportOptions
from linnaeus.engine.dataset.importer import ImportReport
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.dataset.splits import SplitFractions
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.project.folders import check_project_folder
from linnaeus.engine.project.store import NO_SPLIT
from linnaeus.engine.project.store import SPLITS
from linnaeus.engine.project.store import UNLABELLED
from linnaeus.engine.project.store import ProjectStore
from linnaeus.gui.app_settings import default_projects_folder
from linnaeus.gui.workers import Worker

_SPLIT_COLUMNS = (*SPLITS, NO_SPLIT)
_WINDING_DOWN: set[Worker] = set()  # cancelled checks still running after their dialog closed
_SPLIT_TITLES = ("Training", "Validation", "Test", "No split")


def suggest_project_dir(image_folder: Path, projects: Path | None = None) -> Path:
    """A free folder named after the image folder in ``projects`` (default: the
    "Linnaeus projects" folder in the user's home; shared image folders are
    often read-only)."""
    base = (projects or default_projects_folder()) / image_folder.name
    candidate, n = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{base.name} {n}")
        n += 1
    return candidate


def project_dir_problem(image_folder: Path, project_dir: Path) -> str | None:
    """Why ``project_dir`` cannot hold the new project, or None if it can."""
    if not str(project_dir).strip() or project_dir == Path():
        return "Choose a folder for the project."
    try:  # the staging project is moved there, so it must be new or empty
        check_project_folder(project_dir.expanduser(), image_folder, must_be_empty=True)
    except ProjectError as problem:
        return str(problem)
    return None


def check_folder(
    image_folder: Path,
    staging_dir: Path,
    options: ImportOptions | None = None,
    *,
    on_progress: ProgressCallback,
    cancel: CancelToken,
) -> ImportReport:
    """Import ``image_folder`` into a new project in ``staging_dir`` (run by a `Worker`)."""
    with ProjectStore.create(staging_dir, image_folder) as store:
        return import_images(
            store, options or ImportOptions(), on_progress=on_progress, cancel=cancel
        )


def import_options(split_text: str, group_pattern: str) -> ImportOptions:
    """The options the dialog's fields describe; LinnaeusError says what is wrong."""
    fractions = SplitFractions.parse(split_text.strip() or "70/15/15")
    return ImportOptions(group_regex=group_pattern.strip() or None, fractions=fractions)


def move_project(staging_dir: Path, project_dir: Path) -> Path:
    """Move the staging project (closed) to ``project_dir`` (new or empty)."""
    project_dir = project_dir.expanduser().absolute()
    if project_dir.exists():
        project_dir.rmdir()  # empty, checked by project_dir_problem
    project_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging_dir), str(project_dir))
    return project_dir


class OpenFolderDialog(QDialog):
    """Check a folder, show what import found, then create the project."""

    def __init__(
        self, image_folder: Path, parent: QWidget | None = None, *, projects: Path | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"New project from {image_folder.name}")
        self.resize(760, 660)
        self.image_folder = image_folder.absolute()
        self.project_dir: Path | None = None  # set when the project was created
        self.report: ImportReport | None = None
        self._staging = Path(tempfile.mkdtemp(prefix="linnaeus-new-project-")) / "project"
        self._worker: Worker | None = None
        self._checked_options = ("70/15/15", "")
        self._projects = projects  # where new projects go (Settings); None: the default
        browse = self._make_fields()
        self._make_results()
        self._lay_out(browse)
        self.counts.hide()
        self.unreadable.hide()
        self.table_problems.hide()
        self._update_create_button()

    def _make_fields(self) -> QPushButton:
        """The fields the user fills in; returns the button that browses for a folder."""
        self.destination = QLineEdit(str(suggest_project_dir(self.image_folder, self._projects)))
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._on_browse_clicked)
        self.destination_problem = QLabel(wordWrap=True)
        self.destination_problem.setStyleSheet("color: #D55E00;")
        self.split_sizes = QLineEdit("70/15/15")
        self.split_sizes.setToolTip(
            "Training / validation / test shares, in percent, for images that are not in "
            "train/val/test folders already. Fixed once the project exists."
        )
        self.group_pattern = QLineEdit()
        self.group_pattern.setPlaceholderText(
            r"optional, e.g. P(\d+) for names like P0042_scan3.png"
        )
        self.group_pattern.setToolTip(
            "A pattern whose part in brackets (or, without brackets, whose whole match) is "
            "the patient (or specimen, slide) id in each file's path. All images of one "
            "patient then land in the same split, so the test figures are not flattered by "
            "near-duplicates."
        )
        self.check_again = QPushButton("Check again with these settings")
        self.check_again.clicked.connect(self.recheck)
        self.options_problem = QLabel(wordWrap=True)
        self.options_problem.setStyleSheet("color: #D55E00;")
        self.destination.textChanged.connect(self._update_create_button)
        self.split_sizes.textChanged.connect(self._update_create_button)
        self.group_pattern.textChanged.connect(self._update_create_button)
        return browse

    def _make_results(self) -> None:
        """What the check found, and the buttons that end the dialog."""
        self.progress = QProgressBar()
        self.progress_text = QLabel()
        self.layout_text = QLabel(wordWrap=True)
        self.layout_text.setTextFormat(Qt.TextFormat.RichText)
        self.counts = QTableWidget()
        self.unreadable_title = QLabel()
        self.unreadable = QTableWidget(0, 2)
        self.unreadable.setHorizontalHeaderLabels(["File", "Why it cannot be read"])
        self.table_problems_title = QLabel(wordWrap=True)
        self.table_problems = QTableWidget(0, 2)
        self.table_problems.setHorizontalHeaderLabels(["Rows", "What import did"])
        self.table_problems.setWordWrap(True)
        for table in (self.counts, self.unreadable, self.table_problems):
            table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
            table.verticalHeader().hide()
        for table in (self.unreadable, self.table_problems):
            table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.buttons = QDialogButtonBox()
        self.create_button = self.buttons.addButton(
            "Create project", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.create_button.setEnabled(False)
        self.create_button.clicked.connect(self._on_create_clicked)
        self.cancel_button.clicked.connect(self.reject)

    def _lay_out(self, browse: QPushButton) -> None:
        where = QHBoxLayout()
        where.addWidget(self.destination, 1)
        where.addWidget(browse)
        form = QFormLayout()
        form.addRow("Images", QLabel(str(self.image_folder), wordWrap=True))
        form.addRow("Project folder", where)
        form.addRow("", self.destination_problem)
        form.addRow("Split sizes", self.split_sizes)
        form.addRow("Patient id pattern", self.group_pattern)
        again = QHBoxLayout()
        again.addWidget(self.options_problem, 1)
        again.addWidget(self.check_again)
        form.addRow("", again)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.progress_text)
        layout.addWidget(self.layout_text)
        layout.addWidget(self.counts)
        layout.addWidget(self.unreadable_title)
        layout.addWidget(self.unreadable, 1)
        layout.addWidget(self.table_problems_title)
        layout.addWidget(self.table_problems, 1)
        layout.addStretch(1)  # takes the room while there is nothing to list
        self._layout = layout
        layout.addWidget(self.buttons)

    # -- checking -----------------------------------------------------------

    def _options_text(self) -> tuple[str, str]:
        return self.split_sizes.text().strip(), self.group_pattern.text().strip()

    def start_check(self, options: ImportOptions | None = None) -> None:
        """Read every file of the folder on a worker thread."""
        self.progress_text.setText("Looking for images…")
        self.progress.setRange(0, 0)
        self.progress.show()
        self._checked_options = self._options_text()
        self._update_create_button()
        worker = Worker(check_folder, self.image_folder, self._staging, options)
        worker.progress.connect(self._on_worker_progress)
        worker.finished.connect(self._on_worker_finished)
        worker.failed.connect(self._on_worker_failed)
        self._worker = worker.start(owner=self)

    def recheck(self) -> None:
        """Check the folder again with the split and patient settings shown (a new
        staging project: splits are fixed once made)."""
        try:
            options = import_options(*self._options_text())
        except LinnaeusError as error:
            self.options_problem.setText(str(error))
            return
        if self._worker is not None:
            _discard_when_stopped(self._worker, self._staging.parent)
            self._worker = None
        else:
            self._discard_staging()
        self._staging = Path(tempfile.mkdtemp(prefix="linnaeus-new-project-")) / "project"
        self.report = None
        self.counts.hide()
        self.unreadable.hide()
        self.unreadable_title.clear()
        self.table_problems.hide()
        self.table_problems_title.clear()
        self.layout_text.clear()
        self.start_check(options)

    def showEvent(self, event: object) -> None:
        super().showEvent(event)  # type: ignore[arg-type]
        if self._worker is None and self.report is None:
            self.start_check()

    def _on_worker_progress(self, progress: Progress) -> None:
        if progress.total:
            self.progress.setRange(0, progress.total)
            self.progress.setValue(progress.done)
        if progress.message:
            self.progress_text.setText(progress.message)

    def _on_worker_finished(self, report: ImportReport) -> None:
        self._worker = None
        self.report = report
        self.progress.hide()
        readable = report.found - len(report.unreadable)
        self.progress_text.setText(
            f"Found {report.found:,} images: {readable:,} can be used"
            + (f", {len(report.unreadable):,} cannot be read." if report.unreadable else ".")
            + (
                f" {report.skipped_files:,} other files were ignored."
                if report.skipped_files
                else ""
            )
        )
        grouped = " Images of one patient stay in one split." if self._checked_options[1] else ""
        self.layout_text.setText(
            f"<b>Layout:</b> {report.layout}. Images without a split folder were split into "
            "training, validation and test class by class; the split stays fixed from now on."
            + grouped
        )
        self._fill_counts(report)
        self._fill_unreadable(report)
        self._fill_table_problems(report)
        self._update_create_button()

    def _on_worker_failed(self, message: str) -> None:
        self._worker = None
        self.progress.hide()
        self.progress_text.setText(f"<b>This folder cannot be imported:</b> {message}")
        self._discard_staging()

    def _fill_counts(self, report: ImportReport) -> None:
        labels = sorted(report.counts, key=lambda n: (n == UNLABELLED, n.lower()))
        columns = [s for s in _SPLIT_COLUMNS if any(s in report.counts[c] for c in labels)]
        titles = [_SPLIT_TITLES[_SPLIT_COLUMNS.index(s)] for s in columns]
        self.counts.setRowCount(len(labels) + 1)
        self.counts.setColumnCount(len(columns) + 2)
        self.counts.setHorizontalHeaderLabels(["Class", *titles, "Total"])
        for row, label in enumerate([*labels, "Total"]):
            per_split = (
                report.counts[label]
                if label != "Total"
                else {s: sum(report.counts[c].get(s, 0) for c in labels) for s in columns}
            )
            cells = [
                label,
                *(f"{per_split.get(s, 0):,}" for s in columns),
                f"{sum(per_split.values()):,}",
            ]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.counts.setItem(row, column, item)
        header = self.counts.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(80)
        rows = sum(self.counts.rowHeight(r) for r in range(self.counts.rowCount()))
        self.counts.setMaximumHeight(rows + header.height() + 2 * self.counts.frameWidth() + 2)
        self.counts.show()

    def _fill_unreadable(self, report: ImportReport) -> None:
        problems = report.unreadable
        self.unreadable_title.setText(
            f"<b>{len(problems):,} files cannot be read</b> and will be left out:"
            if problems
            else "Every image could be read."
        )
        self.unreadable.setRowCount(len(problems))
        for row, (path, reason) in enumerate(problems):
            self.unreadable.setItem(row, 0, QTableWidgetItem(path))
            self.unreadable.setItem(row, 1, QTableWidgetItem(reason))
        self.unreadable.resizeColumnToContents(0)
        self.unreadable.setVisible(bool(problems))
        self._update_stretch()

    def _fill_table_problems(self, report: ImportReport) -> None:
        problems = report.table_problems
        self.table_problems_title.setText(
            f"<b>The label table ({len(problems):,} notes):</b> when rows disagree about an "
            "image, the first row wins. Fix the table and check again to change what is "
            "taken from it."
            if problems
            else ""
        )
        self.table_problems.setRowCount(len(problems))
        for row, problem in enumerate(problems):
            numbers = ", ".join(str(number) for number in problem.rows[:6])
            more = len(problem.rows) - 6
            self.table_problems.setItem(
                row, 0, QTableWidgetItem(numbers + (f" and {more:,} more" if more > 0 else ""))
            )
            self.table_problems.setItem(row, 1, QTableWidgetItem(problem.message))
        self.table_problems.resizeColumnToContents(0)
        self.table_problems.resizeRowsToContents()
        self.table_problems.setVisible(bool(problems))
        self._update_stretch()

    def _update_stretch(self) -> None:
        """The empty stretch below takes the room while no list is shown."""
        listing = not (self.unreadable.isHidden() and self.table_problems.isHidden())
        self._layout.setStretch(self._layout.count() - 2, 0 if listing else 1)

    # -- creating -----------------------------------------------------------

    def _chosen_dir(self) -> Path:
        return Path(self.destination.text().strip()).expanduser()

    def _update_create_button(self) -> None:
        problem = project_dir_problem(self.image_folder, self._chosen_dir())
        self.destination_problem.setText(problem or "")
        self.destination_problem.setVisible(problem is not None)
        changed = self._options_text() != self._checked_options
        self.check_again.setVisible(changed)
        self.options_problem.setText(
            "Settings changed: check again to see the new split." if changed else ""
        )
        ready = problem is None and self.report is not None and not changed
        self.create_button.setEnabled(ready)

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Folder for the new project", str(self._chosen_dir().parent)
        )
        if folder:
            self.destination.setText(folder)

    def _on_create_clicked(self) -> None:
        if self.report is None or project_dir_problem(self.image_folder, self._chosen_dir()):
            return
        self.project_dir = move_project(self._staging, self._chosen_dir())
        shutil.rmtree(self._staging.parent, ignore_errors=True)
        self.accept()

    def reject(self) -> None:
        if self._worker is not None:
            _discard_when_stopped(self._worker, self._staging.parent)
            self._worker = None
        else:
            self._discard_staging()
        super().reject()

    def _discard_staging(self) -> None:
        shutil.rmtree(self._staging.parent, ignore_errors=True)


def _discard_when_stopped(worker: Worker, staging_root: Path) -> None:
    """Cancel a check and delete its staging folder once the worker has stopped."""
    _WINDING_DOWN.add(worker)
    worker.disown()  # the dialog may be gone when the check stops

    def discard(*_: object) -> None:
        shutil.rmtree(staging_root, ignore_errors=True)
        _WINDING_DOWN.discard(worker)

    for signal in (worker.finished, worker.failed, worker.cancelled):
        signal.connect(discard)
    worker.cancel()
