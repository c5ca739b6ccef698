"""Progress reports and cancellation shared by every long engine operation.

Long engine calls take keyword-only ``on_progress`` (any callable receiving a
`Progress`) and ``cancel`` (a `CancelToken`). The CLI plugs in a progress bar,
the GUI a Qt signal's ``emit``; neither is known here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from linnaeus.engine.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """How far an operation is: ``done`` of ``total`` steps of ``stage``."""

    stage: str
    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


ProgressCallback = Callable[[Progress], None]


def ignore_progress(progress: Progress) -> None:
    """The default ``on_progress``: report nothing."""


class CancelToken:
    """Set from any thread to ask a running operation to stop at its next check."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def duration_words(seconds: float) -> str:
    """A duration as people read it: ``"45 s"``, ``"3 min 20 s"``, ``"12 min"``,
    ``"1 h 05 min"`` (e.g. the time left of a training)."""
    whole = max(round(seconds), 0)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s" if minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def check_cancelled(cancel: CancelToken | None) -> None:
    """Raise `Cancelled` if ``cancel`` is set; ``None`` means not cancellable."""
    if cancel is not None:
        cancel.raise_if_cancelled()


# The phases of a training run, in the order they can happen: reading images,
# drawing augmented views to validate on (classes too small to split), computing
# backbone features, pretraining an autoencoder, fitting the quick model's last
# layer, epoch training, fine-tuning, measuring.
TRAINING_PHASES = (
    "decode",
    "augment",
    "embed",
    "pretrain",
    "head",
    "train",
    "fine-tune",
    "evaluate",
)
# The phases that report epochs and loss/accuracy (the ones with curves).
EPOCH_PHASES = ("pretrain", "head", "train", "fine-tune")


# The stages of the default (anytime) training, `engine.training.anytime`: the quick
# model, then fine-tuning within the time budget.
QUICK_STAGE = "quick"
FINE_TUNE_STAGE = "fine-tune"


def curve_key(phase: str, metric: str) -> str:
    """The name under which a model version stores one metric's per-epoch values
    of one phase, e.g. ``fine-tune_val_loss``."""
    return f"{phase}_{metric}"


@dataclass(frozen=True)
class TrainingProgress(Progress):
    """Progress of a training run: ``done`` of ``total`` batches of this phase.

    ``phase`` is one of `TRAINING_PHASES`. Metrics are None until known.
    In an anytime training, ``anytime_stage`` says which model is being trained
    (`QUICK_STAGE`, `FINE_TUNE_STAGE`; empty otherwise), ``budget_left_s`` how
    much of the time budget is left, and ``model_ready`` names a version that
    has just finished and become the active model while training goes on.
    """

    phase: str = "train"
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    loss: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    images_per_s: float | None = None
    eta_s: float | None = None
    anytime_stage: str = ""
    budget_left_s: float | None = None
    model_ready: str = ""
