"""Keras callbacks of a training run: progress, cancel, checkpoints, early stopping.

The checkpoint (model with optimizer state, best weights so far, and a small
state file) is written at the end of every epoch and on cancel, so a crash or
a cancel loses at most one epoch and ``--resume`` continues with the same
optimizer step count.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from pathlib import Path
from typing import Any

import keras
import numpy as np

from linnaeus.engine.atomic import atomic_path
from linnaeus.engine.atomic import atomic_write_bytes
from linnaeus.engine.errors import Cancelled
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.project.versions import CHECKPOINT_FILE
from linnaeus.engine.training.config import BEST_WEIGHTS_FILE
from linnaeus.engine.training.config import STATE_FILE

_REPORT_EVERY_S = 0.25
_OLD_BEST_WEIGHTS_FILE = "best.weights.h5"  # HDF5, before BEST_WEIGHTS_FILE


@dataclass
class TrainState:
    """What resuming needs besides the model: where training stood."""

    phase: str
    epochs_done: int = 0
    best_val_loss: float = math.inf
    best_epoch: int = -1
    wait: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    planned_epochs: int | None = None  # those a deadline planned (at most the asked ones)

    @classmethod
    def load(cls, folder: Path) -> TrainState | None:
        try:
            data = json.loads((folder / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        data["best_val_loss"] = float(data.get("best_val_loss", math.inf))
        known = {f.name for f in fields(cls)}  # a newer version's file may say more
        return cls(**{key: value for key, value in data.items() if key in known})

    def save(self, folder: Path) -> None:
        data = asdict(self)
        data["best_val_loss"] = None if math.isinf(self.best_val_loss) else self.best_val_loss
        atomic_write_bytes(folder / STATE_FILE, json.dumps(data).encode())


class ProgressReporter(keras.callbacks.Callback):
    """Turns Keras' batch and epoch ends into `TrainingProgress` reports; counts the
    epochs a deadline planned (``params["planned_epochs"]``) when fewer were asked for."""

    def __init__(
        self, on_progress: ProgressCallback, phase: str, epochs: int, steps: int, batch_size: int
    ) -> None:
        super().__init__()
        self.on_progress = on_progress
        self.phase = phase
        self.asked_epochs = epochs
        self.steps = steps
        self.batch_size = batch_size
        self._epoch = 0
        self._started = time.monotonic()
        self._batches_seen = 0
        self._last_report = 0.0
        self._last_val: dict[str, float | None] = {"val_loss": None, "val_accuracy": None}

    @property
    def epochs(self) -> int:
        planned = (self.params or {}).get("planned_epochs")
        return min(planned, self.asked_epochs) if planned else self.asked_epochs

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._started = time.monotonic()
        self._batches_seen = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches_seen += 1
        now = time.monotonic()
        if now - self._last_report >= _REPORT_EVERY_S or batch + 1 == self.steps:
            self._last_report = now
            self._report(batch + 1, logs or {}, now)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        self._last_val = {k: _number(logs.get(k)) for k in ("val_loss", "val_accuracy")}
        self._report(self.steps, logs, time.monotonic())

    def _report(self, batch: int, logs: dict[str, Any], now: float) -> None:
        elapsed = max(now - self._started, 1e-6)
        rate = self._batches_seen / elapsed
        remaining = (self.epochs - self._epoch - 1) * self.steps + (self.steps - batch)
        self.on_progress(
            TrainingProgress(
                stage=self.phase,
                done=self._epoch * self.steps + batch,
                total=self.epochs * self.steps,
                message=f"{self.phase}: epoch {self._epoch + 1}/{self.epochs}",
                phase=self.phase,
                epoch=self._epoch + 1,
                epochs=self.epochs,
                batch=batch,
                batches=self.steps,
                loss=_number(logs.get("loss")),
                accuracy=_number(logs.get("accuracy")),
                images_per_s=rate * self.batch_size,
                eta_s=remaining / rate if rate > 0 else None,
                **self._last_val,
            )
        )


class Checkpointer(keras.callbacks.Callback):
    """Saves a resumable checkpoint each epoch, keeps the best weights by
    validation loss, stops early after ``patience`` epochs without improvement
    and restores the best weights at the end. Raises `Cancelled` between
    batches once ``cancel`` is set, after saving."""

    def __init__(
        self, folder: Path, state: TrainState, patience: int, cancel: CancelToken | None
    ) -> None:
        super().__init__()
        self.folder = folder
        self.state = state
        self.patience = patience
        self.cancel = cancel
        self._epoch = state.epochs_done

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            self.state.epochs_done = self._epoch  # this epoch is redone on resume
            self.save()
            raise Cancelled("Training cancelled; resume it with --resume.")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        for key, value in logs.items():
            self.state.history.setdefault(key, []).append(float(value))
        self.state.epochs_done = epoch + 1
        val_loss = _number(logs.get("val_loss"))
        if val_loss is None:
            val_loss = _number(logs.get("loss"))
        if val_loss is not None and val_loss < self.state.best_val_loss - 1e-6:
            self.state.best_val_loss, self.state.best_epoch, self.state.wait = val_loss, epoch, 0
            save_weights(self.model, self.folder / BEST_WEIGHTS_FILE)
        else:
            self.state.wait += 1
            if self.state.wait >= self.patience:
                self.model.stop_training = True
        self.save()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if (self.folder / BEST_WEIGHTS_FILE).exists():
            load_weights(self.model, self.folder / BEST_WEIGHTS_FILE)
        elif (self.folder / _OLD_BEST_WEIGHTS_FILE).exists():  # a run interrupted before the npz
            self.model.load_weights(self.folder / _OLD_BEST_WEIGHTS_FILE)

    def save(self) -> None:
        """Write the checkpoint, then the state that points to it; a failed write
        (a full disk) leaves the previous checkpoint whole."""
        planned = (self.params or {}).get("planned_epochs")
        if planned:  # resume keeps to the plan a deadline made
            self.state.planned_epochs = planned
        with atomic_path(self.folder / CHECKPOINT_FILE) as temporary:
            self.model.save(temporary)
        self.state.save(self.folder)


def save_weights(model: keras.Model, destination: Path) -> None:
    """Write the model's weights atomically, from memory.

    Not Keras' ``save_weights``: HDF5 writing straight to a disk that fills up
    leaves a file open that crashes Python when it exits (h5py issue 914).
    """
    buffer = io.BytesIO()
    np.savez(buffer, *model.get_weights())
    atomic_write_bytes(destination, buffer.getvalue())


def load_weights(model: keras.Model, source: Path) -> None:
    """Set the model's weights from a file `save_weights` wrote."""
    with np.load(source) as saved:
        model.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
