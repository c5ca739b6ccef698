"""A dialog that runs one engine call on a `Worker`, with progress, Cancel and its outcome.

Subclasses put their fields in `form`, start the work with `run` and say what
came of it in `finished_text`; the dialog shows the engine's progress (a bar
and its message), lets the user cancel, and keeps its Close button for the
end. Closing the dialog while the work runs cancels it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QProgressBar
from PySide6.QtWidgets import QPushButton
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.progress import Progress
from linnaeus.gui.widgets.message_line import MessageLine
from linnaeus.gui.workers import Worker


class JobDialog(QDialog):
    """See the module docstring; ``start_text`` names the button that starts the work
    (None: the subclass starts it itself, e.g. as the dialog opens)."""

    succeeded = Signal(object)  # the engine call's result

    def __init__(self, title: str, start_text: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self._worker: Worker | None = None
        self.form = QVBoxLayout()
        self.progress = QProgressBar(self)
        policy = self.progress.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # the buttons stay put when it hides
        self.progress.setSizePolicy(policy)
        self.progress.hide()
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.message = MessageLine(self)
        self.start_button = QPushButton(start_text or "", self)
        self.start_button.setVisible(start_text is not None)
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.close_button = QPushButton("Close", self)
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.status)
        layout.addWidget(self.message)
        layout.addStretch(1)
        layout.addLayout(buttons)

    # -- for subclasses -----------------------------------------------------

    def start(self) -> None:
        """Start the work (the start button calls this); subclasses call `run`."""
        raise NotImplementedError

    def finished_text(self, result: Any) -> tuple[str, str]:
        """(kind, text) of the message that says what the work did."""
        raise NotImplementedError

    def run(self, worker: Worker, text: str) -> None:
        """Run ``worker``, showing ``text`` until its first progress report."""
        self.message.clear()
        self.status.setText(text)
        self.progress.setRange(0, 0)
        self.progress.show()
        worker.progress.connect(self._on_worker_progress)
        worker.finished.connect(self._on_worker_finished)
        worker.failed.connect(self._on_worker_failed)
        worker.cancelled.connect(self._on_worker_cancelled)
        self._worker = worker.start(owner=self)
        self._update_buttons()

    # -- state --------------------------------------------------------------

    def is_running(self) -> bool:
        return self._worker is not None

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self.status.setText("Stopping…")
            self.cancel_button.setEnabled(False)

    def reject(self) -> None:
        self.cancel()  # closing stops the work; what it saved stays saved
        super().reject()

    def _update_buttons(self) -> None:
        running = self.is_running()
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _ended(self, kind: str, text: str) -> None:
        self._worker = None
        self.progress.hide()
        self.status.clear()
        self.message.show_message(kind, text)
        self._update_buttons()

    def _on_worker_progress(self, progress: Progress) -> None:
        if progress.total:
            self.progress.setRange(0, progress.total)
            self.progress.setValue(min(progress.done, progress.total))
        if progress.message:
            self.status.setText(progress.message)

    def _on_worker_finished(self, result: object) -> None:
        self._ended(*self.finished_text(result))
        self.succeeded.emit(result)

    def _on_worker_failed(self, message: str) -> None:
        self._ended("error", message)

    def _on_worker_cancelled(self) -> None:
        self._ended("info", "Stopped; what was done before stays done.")
