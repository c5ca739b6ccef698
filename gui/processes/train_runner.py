"""Training as a child process: ``linnaeus train --json-progress`` under a QProcess.

The command line and the child's JSON lines are `engine.cli.protocol`'s: the
runner builds the arguments with `train_arguments` and turns each line back
into a typed event with `decode` (`TrainingProgress` reports, then one of
`TrainingDone`, `TrainingFailed` or `TrainingCancelled`). SIGTERM cancels the
child cleanly after a checkpoint (exit status 130), so "Resume" can continue later.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtCore import Signal

from linnaeus.engine.cli.protocol import TrainingCancelled
from linnaeus.engine.cli.protocol import TrainingDone
from linnaeus.engine.cli.protocol import TrainingEnd
from linnaeus.engine.cli.protocol import TrainingFailed
from linnaeus.engine.cli.protocol import TrainOptions
from linnaeus.engine.cli.protocol import decode
from linnaeus.engine.cli.protocol import train_arguments
from linnaeus.engine.progress import TrainingProgress
from linnaeus.gui.processes.child_process import ChildProcess
from linnaeus.gui.processes.child_process import CommandFactory
from linnaeus.gui.processes.child_process import ProcessEnd
from linnaeus.gui.processes.child_process import failure_message
from linnaeus.gui.processes.child_process import linnaeus_command

log = logging.getLogger(__name__)


class TrainRunner(QObject):
    """Runs one training at a time as a ``linnaeus train --json-progress`` child process.

    Signals:
    - ``progress_received(TrainingProgress)``: each progress report of the trainer;
    - ``finished(TrainingDone)``: the new model version, its metrics, duration...;
    - ``failed(str)``: a message for the user (the trainer's error, or what is known
      of a crash: exit status and last error output);
    - ``busy(str)``: it did not start: another process is writing to the project
      (the message says which);
    - ``cancelled()``: the run stopped because `cancel` was called.
    Exactly one of the last four follows each `start`, once the process has ended.
    ``command`` turns ``linnaeus`` arguments into a program to start (tests pass a
    fake trainer); ``kill_after_ms`` is how long a cancelled trainer may take to
    save its checkpoint before it is killed.
    """

    progress_received = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    busy = Signal(str)
    cancelled = Signal()

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        command: CommandFactory = linnaeus_command,
        kill_after_ms: int = 30_000,
    ) -> None:
        super().__init__(parent)
        self._command = command
        self._process = ChildProcess(self, kill_after_ms=kill_after_ms)
        self._process.line_received.connect(self._on_process_line)
        self._process.ended.connect(self._on_process_ended)
        self._end: TrainingEnd | None = None
        self._settings_folder: tempfile.TemporaryDirectory[str] | None = None

    @property
    def is_running(self) -> bool:
        return self._process.is_running

    def start(
        self,
        project: Path,
        options: TrainOptions | None = None,
        resume: bool = False,
        *,
        augmentation: Mapping[str, Any] | None = None,
    ) -> None:
        """Start training the project at ``project`` with ``options`` (default: the
        trainer's). ``augmentation``, custom `Augmentation` settings, replaces
        ``options.augment`` (passed on in a file)."""
        if self.is_running:
            raise RuntimeError("a training is already running")
        options = options or TrainOptions()
        if augmentation is not None:
            options = replace(options, augment=str(self._settings_file(augmentation)))
        program, arguments = self._command(train_arguments(Path(project), options, resume=resume))
        self._end = None
        self._process.start(program, arguments)

    def cancel(self, *, kill_after_ms: int | None = None) -> None:
        """Ask the trainer to stop after saving a checkpoint; ``cancelled`` follows (or,
        when an anytime training keeps its best so far, ``finished``). ``kill_after_ms``:
        how long it may take before it is killed (default: the runner's)."""
        self._process.stop(kill_after_ms=kill_after_ms)

    def kill(self) -> None:
        """Stop the trainer at once (e.g. when the application quits)."""
        self._process.kill()

    def _settings_file(self, augmentation: Mapping[str, Any]) -> Path:
        self._settings_folder = tempfile.TemporaryDirectory(prefix="linnaeus-train-")
        path = Path(self._settings_folder.name) / "augmentation.json"
        path.write_text(json.dumps(dict(augmentation)), encoding="utf-8")
        return path

    def _on_process_line(self, line: dict[str, Any]) -> None:
        event = decode(line)
        if event is None:
            log.debug("trainer line outside the protocol: %s", line)
        elif isinstance(event, TrainingProgress):
            self.progress_received.emit(event)
        else:
            self._end = event

    def _on_process_ended(self, end: ProcessEnd) -> None:
        final, self._end = self._end, None
        if self._settings_folder is not None:
            self._settings_folder.cleanup()
            self._settings_folder = None
        if isinstance(final, TrainingDone):
            self.finished.emit(final)
        elif isinstance(final, TrainingCancelled):
            self.cancelled.emit()
        elif isinstance(final, TrainingFailed) and final.busy:
            self.busy.emit(final.message)
        elif isinstance(final, TrainingFailed):
            self.failed.emit(final.message or "Training failed.")
        elif end.stop_requested:  # stopped before it could say so (killed)
            self.cancelled.emit()
        else:
            self.failed.emit(failure_message(end, "The trainer"))
