"""Undoable changes to a model version, as QUndoCommands over the project store: its
decision threshold ("Use this threshold" in the Evaluate tab)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.evaluation.version import calibrate_version
from linnaeus.engine.onnx.saved_threshold import set_threshold
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore


class SetThresholdCommand(QUndoCommand):
    """Make a two-class version decide at ``threshold``; undo puts back the threshold
    it had, and where that one was chosen. ``changed`` is called with the
    version's id after each change; ``failed`` with a message when the
    threshold was saved but an exported model could not be updated."""

    def __init__(
        self,
        store: ProjectStore,
        version_id: int,
        threshold: float,
        changed: Callable[[int], None],
        failed: Callable[[str], None],
    ) -> None:
        version = versions.get_version(store, version_id)
        super().__init__(f"use threshold {threshold:.3f} for {version.name}")
        self._store, self._version_id, self._threshold = store, version_id, threshold
        self._changed, self._failed = changed, failed
        calibration = calibrate_version(store, version)
        self._before = (float(calibration["threshold"]), str(calibration["chosen_on"]))

    def redo(self) -> None:
        self._set(self._threshold, "user")

    def undo(self) -> None:
        self._set(*self._before)

    def _set(self, threshold: float, chosen_on: str) -> None:
        try:  # the version may have been deleted since (Train tab)
            version = versions.get_version(self._store, self._version_id)
        except LinnaeusError as error:
            self._failed(f"{error} Its threshold cannot be changed any more.")
            return
        try:
            set_threshold(self._store, version, threshold, chosen_on=chosen_on)
        except LinnaeusError as error:  # saved with the version; an exported file was not
            self._failed(str(error))
        self._changed(self._version_id)
