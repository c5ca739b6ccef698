"""The start page: open a folder, open a project, a recent project, or the demo.

The demo project is made by the command line (``linnaeus demo --project DIR
--json``) in a child process, so its training (TensorFlow) never loads into
the window's process; the page shows that it is busy and can cancel it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import platformdirs
from PySide6.QtCore import QObject
from PySide6.QtCore import QProcess
from PySide6.QtCore import Qt
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame
from PySide6.QtWidgets import QGridLayout
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QListWidget
from PySide6.QtWidgets import QListWidgetItem
from PySide6.QtWidgets import QProgressBar
from PySide6.QtWidgets import QPushButton
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.project.database import DATABASE_NAME
from linnaeus.gui.processes.child_process import linnaeus_command


def demo_project_dir() -> Path:
    """Where the demo project lives: Linnaeus' data folder (beside its weights)."""
    return platformdirs.user_data_path("Linnaeus") / "demo-project"


def demo_command(project_dir: Path) -> list[str]:
    """The child process that makes the demo project: ``linnaeus demo ... --json``."""
    program, arguments = linnaeus_command(["demo", "--project", str(project_dir), "--json"])
    return [program, *arguments]


def is_project(folder: Path) -> bool:
    return (folder / DATABASE_NAME).is_file()


class DemoRunner(QObject):
    """Runs ``linnaeus demo`` in a child process; reports the project or the error."""

    finished = Signal(Path)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._process: QProcess | None = None
        self._project_dir = Path()

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self, project_dir: Path) -> None:
        self._project_dir = project_dir
        command = demo_command(project_dir)
        process = QProcess(self)
        process.finished.connect(self._on_process_finished)
        process.errorOccurred.connect(self._on_process_error_occurred)
        self._process = process
        process.start(command[0], command[1:])

    def cancel(self) -> None:
        if self._process is not None:
            process, self._process = self._process, None
            process.kill()
            process.waitForFinished(3000)
            process.deleteLater()

    def _on_process_finished(self, exit_code: int, _status: QProcess.ExitStatus) -> None:
        process, self._process = self._process, None
        if process is None:
            return  # cancelled
        errors = bytes(process.readAllStandardError().data()).decode("utf-8", "replace")
        process.deleteLater()
        if exit_code == 0 and is_project(self._project_dir):
            self.finished.emit(self._project_dir)
            return
        last = [line for line in errors.splitlines() if line.strip()][-3:]
        self.failed.emit("\n".join(last) or f"The demo ended with status {exit_code}.")

    def _on_process_error_occurred(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self._process is not None:
            self._process = None
            self.failed.emit("The demo could not start: Python was not found.")


class StartPage(QWidget):
    """What the window shows before a project is open."""

    open_folder_requested = Signal()
    open_project_requested = Signal()
    project_chosen = Signal(Path)
    guide_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.demo = DemoRunner(self)
        self.demo.finished.connect(self._on_demo_finished)
        self.demo.failed.connect(self._on_demo_failed)

        title = QLabel("Linnaeus")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 2.4)
        font.setBold(True)
        title.setFont(font)
        subtitle = QLabel("Sort folders of images into classes, on your own computer.")
        self.guide = QPushButton("How it works…")
        self.open_folder = QPushButton("Open a folder of images…")
        self.open_project = QPushButton("Open a project…")
        self.try_demo = QPushButton("Try the demo project")
        self.recent = QListWidget()
        self.recent.setToolTip("Double-click or press Enter to open")
        self.demo_progress = QProgressBar(maximum=0)
        self.demo_status = QLabel(wordWrap=True)
        self.cancel_demo = QPushButton("Cancel")
        for widget in (self.demo_progress, self.cancel_demo):
            widget.hide()
        self._lay_out(title, subtitle)

        self.open_folder.clicked.connect(self.open_folder_requested)
        self.open_project.clicked.connect(self.open_project_requested)
        self.try_demo.clicked.connect(self._on_try_demo_clicked)
        self.guide.clicked.connect(self.guide_requested)
        self.cancel_demo.clicked.connect(self._on_cancel_demo_clicked)
        self.recent.itemActivated.connect(self._on_recent_item_activated)

    def _lay_out(self, title: QLabel, subtitle: QLabel) -> None:
        actions = QGridLayout()
        actions.setHorizontalSpacing(16)
        rows = (
            (
                self.open_folder,
                "Make a new project from a folder. Class sub-folders and "
                "train/val/test folders become labels and splits; your files are never changed.",
            ),
            (self.open_project, "Continue with a project you made before."),
            (
                self.try_demo,
                "Microscope-like cells of three kinds, with a few wrong labels to "
                "find. Takes a minute the first time.",
            ),
            (
                self.guide,
                "New here? The whole workflow in ten steps, from labelling to classifying "
                "new folders (Help > User guide, F1, any time).",
            ),
        )
        for row, (button, text) in enumerate(rows):
            button.setFixedWidth(max(230, button.sizeHint().width()))
            button.setMinimumHeight(int(button.sizeHint().height() * 1.3))
            hint = QLabel(text, wordWrap=True)
            actions.addWidget(button, row, 0, Qt.AlignmentFlag.AlignTop)
            actions.addWidget(hint, row, 1, Qt.AlignmentFlag.AlignTop)
        actions.setColumnStretch(1, 1)
        demo_row = QHBoxLayout()
        demo_row.addWidget(self.demo_progress, 1)
        demo_row.addWidget(self.cancel_demo)

        column = QVBoxLayout()
        column.addStretch(1)
        column.addWidget(title)
        column.addWidget(subtitle)
        column.addSpacing(18)
        column.addLayout(actions)
        column.addLayout(demo_row)
        column.addWidget(self.demo_status)
        column.addSpacing(18)
        column.addWidget(_bold("Recent projects"))
        column.addWidget(self.recent)
        column.addStretch(2)
        card = QFrame()
        card.setMinimumWidth(560)
        card.setMaximumWidth(760)
        card.setLayout(column)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(card, 4)
        outer.addStretch(1)

    def set_recent_projects(self, folders: Sequence[Path]) -> None:
        self.recent.clear()
        for folder in folders:
            exists = is_project(folder)
            item = QListWidgetItem(
                f"{folder.name}    {folder}" + ("" if exists else "   (not found)")
            )
            item.setData(Qt.ItemDataRole.UserRole, str(folder))
            item.setToolTip(str(folder))
            if not exists:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self.recent.addItem(item)
        if not folders:
            item = QListWidgetItem("Projects you open will be listed here.")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.recent.addItem(item)
        else:
            self.recent.setCurrentRow(0)
        rows = max(1, self.recent.count())
        row_height = self.recent.sizeHintForRow(0) if self.recent.count() else 20
        self.recent.setFixedHeight(min(rows, 8) * row_height + 2 * self.recent.frameWidth() + 4)

    def _on_recent_item_activated(self, item: QListWidgetItem) -> None:
        folder = item.data(Qt.ItemDataRole.UserRole)
        if folder:
            self.project_chosen.emit(Path(folder))

    def _on_try_demo_clicked(self) -> None:
        folder = demo_project_dir()
        if is_project(folder):
            self.project_chosen.emit(folder)
            return
        self._set_demo_busy(True, "Drawing the demo images, importing them and training a model…")
        self.demo.start(folder)

    def _on_cancel_demo_clicked(self) -> None:
        self.demo.cancel()
        self._set_demo_busy(False, "Demo cancelled.")

    def _on_demo_finished(self, folder: Path) -> None:
        self._set_demo_busy(False, "")
        self.project_chosen.emit(folder)

    def _on_demo_failed(self, message: str) -> None:
        self._set_demo_busy(False, f"The demo could not be made:\n{message}")

    def _set_demo_busy(self, busy: bool, text: str) -> None:
        self.demo_progress.setVisible(busy)
        self.cancel_demo.setVisible(busy)
        self.try_demo.setEnabled(not busy)
        self.demo_status.setText(text)


def _bold(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label
