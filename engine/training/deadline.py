"""Epoch training that ends by a deadline and keeps its best epoch (the anytime
fine-tuning of `engine.training.anytime`).

`Deadline` is a Keras callback given to the run (``train(..., callbacks=...)``)
beside the `Checkpointer`, which keeps the best epoch's weights by validation
loss and restores them when training ends. `Deadline` starts no epoch that
cannot end in time: each epoch's measured duration (training and validation)
says whether the next one fits, leaving room for measuring the model on every
image afterwards (timed on the validation pass). The first epoch has no measured
duration yet, so after a few batches it is projected from their pace; if it
cannot end in time, `OutOfTime` stops the run.

At each epoch's end the learning-rate plan the epoch loop follows
(``params["schedule"]``, a `WarmupCosine`) is fitted to the epochs that fit (never
more than asked), so that its decay ends within the budget instead of the run
stopping mid-decay.

A cancel after at least one whole epoch stops the same way (the best epoch is
measured and kept): give the run `run_cancel` as its ``cancel``, which reads as
not cancelled once `Deadline` has taken the cancel as "stop here".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import keras

from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import OutOfTime
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import duration_words

# Batches timed, after the first (which traces the training step), before the
# first epoch's duration is projected from their pace; then re-projected each batch.
PROJECT_AFTER_BATCHES = 3
# A forward pass (validation, measuring) costs about this share of a training step.
FORWARD_SHARE = 0.4
# Margin on every estimate: an epoch is started only if 1.15 times its duration fits.
SAFETY = 1.15

STOPPED_AT_DEADLINE = "deadline"
STOPPED_ON_CANCEL = "cancel"


class Deadline(keras.callbacks.Callback):
    """Stops epoch training by ``at`` (a `time.monotonic` time), ``images_after``
    images still to be measured after it; ``batch_size`` images per training step,
    ``val_images`` validated after each epoch.
    ``cancel`` is the user's token (None: not cancellable); ``clock`` is for tests.

    After training, ``stopped`` says why it ended early (`STOPPED_AT_DEADLINE`,
    `STOPPED_ON_CANCEL`) or is None, and ``epochs_done`` how many epochs ended.
    """

    def __init__(
        self,
        at: float,
        *,
        images_after: int,
        batch_size: int,
        val_images: int,
        cancel: CancelToken | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.at = at
        self.images_after = images_after
        self.batch_size = batch_size
        self.val_images = val_images
        self.cancel = cancel
        self.clock = clock
        self.stopped: str | None = None
        self.epochs_done = 0
        self.planned_epochs: int | None = None  # as many as fit, from the first epoch's end
        self.run_cancel = _UnlessStopped(self)
        self._epoch_started = 0.0
        self._batches = 0  # of this epoch
        self._last_batch_end: float | None = None
        self._paced_batches = 0  # training batches timed (all but the first, which traces)
        self._paced_s = 0.0
        self._test_started: float | None = None
        self._validations = 0
        self._forward_s_per_image: float | None = None  # timed on validation, after the first

    @property
    def stopped_on_cancel(self) -> bool:
        """Whether a cancel ended training early, keeping the best epoch so far."""
        return self.stopped == STOPPED_ON_CANCEL

    def seconds_left(self) -> float:
        return self.at - self.clock()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_started, self._batches = self.clock(), 0
        self._last_batch_end = None if self._paced_batches == 0 else self._epoch_started

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = self.clock()
        self._batches += 1
        if self._last_batch_end is not None:
            self._paced_batches += 1
            self._paced_s += now - self._last_batch_end
        self._last_batch_end = now
        if self.stopped is not None:
            return
        if self.cancel is not None and self.cancel.cancelled and self.epochs_done:
            self._stop(STOPPED_ON_CANCEL)
        elif self.epochs_done:  # this epoch was judged to fit at the previous one's end
            if now >= self.at:
                self._stop(STOPPED_AT_DEADLINE)
        elif self._paced_batches >= PROJECT_AFTER_BATCHES or now >= self.at:
            self._check_first_epoch(now)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._test_started = self.clock()

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._test_started is None:
            return
        seconds = self.clock() - self._test_started
        self._test_started = None
        self._validations += 1
        if self._validations > 1 and self.val_images:  # the first traces the model
            self._forward_s_per_image = seconds / self.val_images

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epochs_done += 1
        last = epoch + 1 >= int(self.params.get("epochs") or 0)
        now = self.clock()
        self._plan(epoch + 1, self.at - now - SAFETY * self._measuring_s())
        needed = SAFETY * (self._epoch_s() + self._measuring_s())
        planned_end = self.planned_epochs is not None and epoch + 1 >= self.planned_epochs
        if self.stopped is None and not last and (self.at - now < needed or planned_end):
            self._stop(STOPPED_AT_DEADLINE)

    def _step_s(self) -> float:
        """Seconds per training step, at the pace measured so far."""
        return self._paced_s / self._paced_batches if self._paced_batches else 0.0

    def _forward_s(self) -> float:
        """Seconds to predict one image (timed on validation, else from the training pace)."""
        if self._forward_s_per_image is not None:
            return self._forward_s_per_image
        return FORWARD_SHARE * self._step_s() / self.batch_size

    def _epoch_s(self) -> float:
        """Seconds of one whole epoch: its steps and its validation."""
        steps = int(self.params.get("steps") or self._batches)
        return steps * self._step_s() + self.val_images * self._forward_s()

    def _measuring_s(self) -> float:
        """Seconds to measure the model on every image once training ends."""
        return self.images_after * self._forward_s()

    def _check_first_epoch(self, now: float) -> None:
        """Raise `OutOfTime` when the first epoch, at the pace of its batches, and the
        measuring after it cannot end by the deadline."""
        steps = int(self.params.get("steps") or self._batches)
        rest_s = (steps - self._batches) * self._step_s() + self._forward_s() * (
            self.val_images + self.images_after
        )
        needed = now - self._epoch_started + SAFETY * rest_s
        left = self.at - self._epoch_started
        if needed > left or now >= self.at:
            raise OutOfTime(
                f"The time budget is too short to fine-tune: one epoch and measuring the "
                f"model need about {duration_words(max(needed, left))}, and "
                f"{duration_words(left)} of the budget were left."
            )

    def _plan(self, begun: int, seconds_after: float) -> None:
        """Plan the ``begun`` epochs and those that fit in ``seconds_after`` them (with
        the margin once, as each epoch's end checks it), at most the asked ones, and fit
        the learning-rate plan to as many. Planned at each epoch's end, on the whole
        epochs' pace: the first epoch is the warm-up, which no plan changes."""
        epoch_s = self._epoch_s()
        asked = int(self.params.get("epochs") or 0)
        if epoch_s <= 0 or not math.isfinite(seconds_after) or not asked:
            return
        more = math.floor((seconds_after - (SAFETY - 1) * epoch_s) / epoch_s)
        fit = min(begun + max(more, 0), asked)
        self.planned_epochs = self.params["planned_epochs"] = fit  # the progress counts them
        schedule = self.params.get("schedule")
        if schedule is not None:
            schedule.plan_for(fit * int(self.params.get("steps") or self._batches))

    def _stop(self, why: str) -> None:
        self.stopped = why
        self.model.stop_training = True


class _UnlessStopped(CancelToken):
    """The user's cancel token as the run sees it: not cancelled once `Deadline` has
    taken the cancel as "stop after the best epoch" (so the run measures and keeps it)."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def cancel(self) -> None:
        if self._deadline.cancel is not None:
            self._deadline.cancel.cancel()

    @property
    def cancelled(self) -> bool:
        user = self._deadline.cancel
        return user is not None and user.cancelled and self._deadline.stopped != STOPPED_ON_CANCEL

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled()
