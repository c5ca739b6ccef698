"""Where the GUI starts threads: every long engine call runs in a `Worker`.

A worker runs one engine function with ``on_progress`` bound to its
``progress`` signal and ``cancel`` bound to its own token, on a thread of the
global QThreadPool, and reports the outcome through ``finished`` (the
result), ``failed`` (a message for the user) or ``cancelled``. Signals are
delivered on the GUI thread; no widget is touched off it.

A worker started with ``owner=widget`` is forgotten when that widget is
deleted: the call is cancelled and nothing more is delivered, so a closed
panel never hears from the work it started.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtCore import QRunnable
from PySide6.QtCore import QThreadPool
from PySide6.QtCore import Signal

from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.progress import CancelToken

log = logging.getLogger(__name__)


class Worker(QObject):
    """One engine call off the GUI thread, with progress, cancel and outcome signals."""

    progress = Signal(object)  # an engine Progress
    finished = Signal(object)  # the function's return value
    failed = Signal(str)  # a message to show the user
    cancelled = Signal()
    _outcome = Signal(str, object)  # emitted on the pool's thread, delivered on the worker's

    def __init__(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self._function = function
        self._args = args
        self._kwargs = kwargs
        self.cancel_token = CancelToken()
        self._runnable = _Runnable(self)
        self._forgotten = False
        self._disowned = False
        self._outcome.connect(self._deliver)

    def start(self, pool: QThreadPool | None = None, *, owner: QObject | None = None) -> Worker:
        """Run on ``pool`` (default: the global pool); returns self for chaining.
        Deleting ``owner`` cancels the call and silences its signals."""
        if owner is not None:
            owner.destroyed.connect(self._forget)
        (pool or QThreadPool.globalInstance()).start(self._runnable)
        return self

    def disown(self) -> None:
        """Keep delivering signals even after the owner is deleted (for clean-up that
        must run when the call ends, whoever started it)."""
        self._disowned = True

    def _forget(self) -> None:
        if not self._disowned:
            self._forgotten = True
            self.cancel()

    def _deliver(self, kind: str, value: object) -> None:
        if self._forgotten:
            return
        if kind == "progress":
            self.progress.emit(value)
        elif kind == "finished":
            self.finished.emit(value)
        elif kind == "failed":
            self.failed.emit(value)
        else:
            self.cancelled.emit()

    def cancel(self) -> None:
        """Ask the engine call to stop at its next check."""
        self.cancel_token.cancel()

    def run(self) -> None:
        """Run the call on the current thread (the pool calls this)."""
        try:
            result = self._function(
                *self._args, on_progress=self._report_progress, cancel=self.cancel_token,
                **self._kwargs,
            )  # fmt: skip
        except Cancelled:
            self._outcome.emit("cancelled", None)
        except LinnaeusError as error:
            self._outcome.emit("failed", str(error))
        except Exception as error:  # a bug: keep the GUI alive, log the traceback
            log.error("unexpected error in %s\n%s", self._function, traceback.format_exc())
            self._outcome.emit("failed", f"Unexpected error: {error}. Details are in the log.")
        else:
            self._outcome.emit("finished", result)

    def _report_progress(self, progress: object) -> None:
        self._outcome.emit("progress", progress)


class _Runnable(QRunnable):
    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self._worker = worker
        self.setAutoDelete(False)  # the worker owns it

    def run(self) -> None:
        self._worker.run()
