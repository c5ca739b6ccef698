"""One open project in the window: its store, grid model, thumbnails and undo stack.

Widgets ask the session to label images, change classes or set a model
version's decision threshold; the session pushes the matching undoable
command (`label_commands`, `version_commands`) and the model repaints the
images the store says the command changed. Opening a project
reads its images on a worker thread (`ImageListModel.reload`); `close` stops
the thumbnail threads and closes the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtCore import QThreadPool
from PySide6.QtCore import Signal
from PySide6.QtGui import QUndoCommand
from PySide6.QtGui import QUndoStack

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.project.label_edits import LabelChanges
from linnaeus.engine.project.store import ProjectStore
from linnaeus.gui.image_model import ImageListModel
from linnaeus.gui.label_commands import AddClassCommand
from linnaeus.gui.label_commands import DeleteClassCommand
from linnaeus.gui.label_commands import LabelEvents
from linnaeus.gui.label_commands import LabelImagesCommand
from linnaeus.gui.label_commands import MergeClassesCommand
from linnaeus.gui.label_commands import RecolourClassCommand
from linnaeus.gui.label_commands import RenameClassCommand
from linnaeus.gui.thumbnail_loader import ThumbnailLoader
from linnaeus.gui.version_commands import SetThresholdCommand


class ProjectSession(QObject):
    """The open project; see the module docstring."""

    classes_changed = Signal()
    labels_changed = Signal(list)  # image ids whose label changed ([] = possibly all)
    error = Signal(str)  # a change the store refused, in words for the user
    decision_changed = Signal(int)  # a model version (id) now decides at another threshold

    def __init__(
        self, store: ProjectStore, *, thumbnail_pixels: int, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.loader = ThumbnailLoader(
            store.thumbnails_dir, pixel_size=thumbnail_pixels, parent=self
        )
        self.model = ImageListModel(store, self.loader, parent=self)
        self.undo_stack = QUndoStack(self)
        self._events = LabelEvents(
            labels_changed=self._on_command_labels_changed,
            classes_changed=self._on_command_classes_changed,
            classes_removed_or_restored=self._on_command_classes_removed_or_restored,
        )

    @classmethod
    def open(
        cls, project_dir: Path, *, thumbnail_pixels: int, parent: QObject | None = None
    ) -> ProjectSession:
        """Open the project in ``project_dir`` and start reading its images."""
        session = cls(
            ProjectStore.open(project_dir), thumbnail_pixels=thumbnail_pixels, parent=parent
        )
        session.model.reload()
        return session

    @property
    def project_dir(self) -> Path:
        return self.store.project_dir

    def close(self) -> None:
        self.loader.shutdown()
        self.undo_stack.clear()
        # Workers may still be reading this store (image list, predictions,
        # evaluation): closing the connection under them would crash.
        QThreadPool.globalInstance().waitForDone(10_000)
        self.store.close()

    # -- labels -------------------------------------------------------------

    def label_images(
        self, image_ids: Sequence[int], class_name: str | None, *, source: str = "user"
    ) -> None:
        """Label these images as ``class_name`` (None: remove their labels), undoably;
        ``source`` goes into the label history ("model-suggestion": a suggestion accepted)."""
        if image_ids:
            labels = dict.fromkeys(image_ids, class_name)
            self._push(LabelImagesCommand(self.store, labels, self._events, source=source))

    def accept_suggestions(self, image_ids: Sequence[int]) -> int:
        """Label each image with the active model's prediction; returns how many had one."""
        labels = {i: s for i in image_ids if (s := self.model.suggestion(i)) is not None}
        if labels:
            self._push(
                LabelImagesCommand(self.store, labels, self._events, source="model-suggestion")
            )
        return len(labels)

    # -- classes ------------------------------------------------------------

    def add_class(self, name: str) -> None:
        if not name.strip():
            self.error.emit("A class name cannot be empty.")
        elif any(c.name == name.strip() for c in self.store.classes()):
            self.error.emit(f"There is already a class called {name.strip()!r}.")
        else:
            self._push(AddClassCommand(self.store, name, self._events))

    def rename_class(self, old: str, new: str) -> None:
        if new.strip() and new.strip() != old:
            self._push(RenameClassCommand(self.store, old, new, self._events))

    def recolour_class(self, name: str, colour: str) -> None:
        self._push(RecolourClassCommand(self.store, name, colour, self._events))

    def merge_classes(self, source: str, target: str) -> None:
        if source != target:
            self._push(MergeClassesCommand(self.store, source, target, self._events))

    def delete_class(self, name: str) -> None:
        self._push(DeleteClassCommand(self.store, name, self._events))

    def reload_after_import(self) -> None:
        """Show what an import (a rescan of the image folder) changed: images, labels,
        classes. Undo history ends here: the import is not undone from the window."""
        self.undo_stack.clear()
        self.model.reload()
        self.classes_changed.emit()
        self.labels_changed.emit([])

    # -- model versions -----------------------------------------------------

    def set_threshold(self, version_id: int, threshold: float) -> None:
        """Make a two-class model version decide at ``threshold``, undoably; the grid's
        predictions are read again and `decision_changed` tells the other views."""
        try:
            command = SetThresholdCommand(
                self.store, version_id, threshold, self._on_command_decision_changed,
                self.error.emit,
            )  # fmt: skip
        except LinnaeusError as refused:
            self.error.emit(str(refused))
            return
        self._push(command)

    def _push(self, command: QUndoCommand) -> None:
        """Run ``command`` through the undo stack; a refusal becomes an `error` message."""
        try:
            self.undo_stack.push(command)
        except LinnaeusError as refused:
            self.error.emit(str(refused))

    # -- command callbacks --------------------------------------------------

    def _on_command_decision_changed(self, version_id: int) -> None:
        self.model.reload()  # the grid's marks, filters and suggestions follow
        self.decision_changed.emit(version_id)

    def _on_command_labels_changed(self, changes: LabelChanges) -> None:
        self.model.refresh_labels(changes)
        self.labels_changed.emit(list(changes.image_ids))

    def _on_command_classes_changed(self) -> None:
        self.model.refresh_classes()
        self.classes_changed.emit()

    def _on_command_classes_removed_or_restored(self, changes: LabelChanges) -> None:
        self.model.refresh_classes_and_labels(changes)
        self.classes_changed.emit()
        self.labels_changed.emit([])
