"""Training as a child process: ``linnaeus train --json-progress`` under a QProcess.

The child prints one JSON object per line (see engine/cli/train.py): progress
lines with a "phase" of "decode", "embed", "pretrain", "head", "train" or
"fine-tune", then exactly one of {"phase": "done", ...}, {"phase": "error",
"message": ...} or {"phase": "cancelled"}. SIGTERM cancels it cleanly after a
checkpoint (exit status 130), so "Resume" can continue later.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtCore import Signal

from linnaeus.gui.processes.child_process import ChildProcess
from linnaeus.gui.processes.child_process import CommandFactory
from linnaeus.gui.processes.child_process import ProcessEnd
from linnaeus.gui.processes.child_process import failure_message
from linnaeus.gui.processes.child_process import linnaeus_command

FINAL_PHASES = ("done", "error", "cancelled")
# Training options -> `linnaeus train` flags; None values are left to the trainer's defaults.
_VALUE_FLAGS = {
    "model": "--model",
    "backbone": "--backbone",
    "epochs": "--epochs",
    "image_size": "--image-size",
    "augment": "--augment",
    "imbalance": "--imbalance",
    "batch_size": "--batch-size",
    "learning_rate": "--learning-rate",
    "l1": "--l1",
    "l2": "--l2",
    "dropout": "--dropout",
    "activation": "--activation",
    "resize": "--resize",
    "seed": "--seed",
}
_SWITCH_FLAGS = {"grayscale": "--grayscale", "binarize": "--binarize"}


def train_arguments(project: Path, options: Mapping[str, Any], *, resume: bool) -> list[str]:
    """The ``linnaeus`` arguments of a training run.

    ``options`` holds `TrainConfig`-like settings ("model", "epochs", "image_size",
    "imbalance", "l2", "dropout", "augment" as a preset name or a JSON file...).
    Resuming continues the interrupted run with its own stored settings, so
    ``options`` are then ignored.
    """
    arguments = ["train", "--project", str(project), "--json-progress"]
    if resume:
        return [*arguments, "--resume"]
    unknown = set(options) - set(_VALUE_FLAGS) - set(_SWITCH_FLAGS)
    if unknown:
        raise ValueError(f"unknown training options: {sorted(unknown)}")
    for key, value in options.items():
        if key in _SWITCH_FLAGS:
            arguments += [_SWITCH_FLAGS[key]] if value else []
        elif value is not None:
            arguments += [_VALUE_FLAGS[key], str(value)]
    return arguments


class TrainRunner(QObject):
    """Runs one training at a time as a ``linnaeus train --json-progress`` child process.

    Signals:
    - ``progress_received(dict)``: each progress line, as printed by the trainer;
    - ``finished(dict)``: the final "done" line (model_version, metrics, duration_s...);
    - ``failed(str)``: a message for the user (the trainer's error, or what is known
      of a crash: exit status and last error output);
    - ``cancelled()``: the run stopped because `cancel` was called.
    Exactly one of the last three follows each `start`, once the process has ended.
    ``command`` turns ``linnaeus`` arguments into a program to start (tests pass a
    fake trainer); ``kill_after_ms`` is how long a cancelled trainer may take to
    save its checkpoint before it is killed.
    """

    progress_received = Signal(dict)
    finished = Signal(dict)
    failed = Signal(str)
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
        self._final: dict[str, Any] | None = None
        self._settings_folder: tempfile.TemporaryDirectory[str] | None = None

    @property
    def is_running(self) -> bool:
        return self._process.is_running

    def start(self, project: Path, options: Mapping[str, Any], resume: bool = False) -> None:
        """Start training the project at ``project``. An "augment" option may be a preset
        name, a JSON file, or a dict of `Augmentation` settings (passed on in a file)."""
        if self.is_running:
            raise RuntimeError("a training is already running")
        options = dict(options)
        if isinstance(options.get("augment"), Mapping):
            options["augment"] = str(self._settings_file(options["augment"]))
        program, arguments = self._command(train_arguments(Path(project), options, resume=resume))
        self._final = None
        self._process.start(program, arguments)

    def cancel(self) -> None:
        """Ask the trainer to stop after saving a checkpoint; ``cancelled`` follows."""
        self._process.stop()

    def kill(self) -> None:
        """Stop the trainer at once (e.g. when the application quits)."""
        self._process.kill()

    def _settings_file(self, augmentation: Mapping[str, Any]) -> Path:
        self._settings_folder = tempfile.TemporaryDirectory(prefix="linnaeus-train-")
        path = Path(self._settings_folder.name) / "augmentation.json"
        path.write_text(json.dumps(dict(augmentation)), encoding="utf-8")
        return path

    def _on_process_line(self, line: dict[str, Any]) -> None:
        if line.get("phase") in FINAL_PHASES:
            self._final = line
        else:
            self.progress_received.emit(line)

    def _on_process_ended(self, end: ProcessEnd) -> None:
        final, self._final = self._final or {}, None
        if self._settings_folder is not None:
            self._settings_folder.cleanup()
            self._settings_folder = None
        phase = final.get("phase")
        if phase == "done":
            self.finished.emit(final)
        elif phase == "cancelled":
            self.cancelled.emit()
        elif phase == "error":
            self.failed.emit(str(final.get("message") or "Training failed."))
        elif end.stop_requested:  # stopped before it could say so (killed)
            self.cancelled.emit()
        else:
            self.failed.emit(failure_message(end, "The trainer"))
