"""Undoable label and class changes, as QUndoCommands over the project store.

The store keeps the real undo history (shared with the command line): a
label command's first ``redo`` makes an edit with `ProjectStore.apply_labels`,
later ones call `ProjectStore.redo`, and ``undo`` calls `ProjectStore.undo`.
A QUndoStack of these commands drives Ctrl+Z / Ctrl+Shift+Z and the Edit
menu. Consecutive labels given to the same single image merge into one step,
so pressing 1, 2, 3 on one image is undone by one Ctrl+Z.

Every command hands what the store says it changed (`LabelChanges`: images
and the class each has now) to a `LabelEvents` callback set, so the grid
repaints just those images without reading the store again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass

from PySide6.QtGui import QUndoCommand

from linnaeus.engine.project.label_edits import Edit
from linnaeus.engine.project.label_edits import LabelChanges
from linnaeus.engine.project.label_edits import describe_labelling
from linnaeus.engine.project.store import ProjectStore

log = logging.getLogger(__name__)

_LABEL_COMMAND_ID = 1


@dataclass(frozen=True)
class LabelEvents:
    """What to call after a command changed the store."""

    labels_changed: Callable[[LabelChanges], None]  # these images' labels
    classes_changed: Callable[[], None]  # names or colours
    classes_removed_or_restored: Callable[[LabelChanges], None]  # merged or deleted, or back


class LabelImagesCommand(QUndoCommand):
    """Give images labels (image id -> class name, or None to unlabel), as one step."""

    def __init__(
        self,
        store: ProjectStore,
        labels: Mapping[int, str | None],
        events: LabelEvents,
        *,
        source: str = "user",
    ) -> None:
        super().__init__(describe_labelling(labels, source))
        self._store = store
        self._labels = dict(labels)
        self._events = events
        self._source = source
        self._edits: list[Edit] = []
        self._done_once = False

    @property
    def image_ids(self) -> list[int]:
        return list(self._labels)

    def id(self) -> int:
        return _LABEL_COMMAND_ID

    def redo(self) -> None:
        if not self._done_once:
            self._done_once = True
            edit = self._store.apply_labels(self._labels, source=self._source)
            if edit is None:
                self.setObsolete(True)  # nothing changed: not worth an undo step
                return
            self._edits.append(edit)
            self.setText(edit.description)  # the store's words: the images it changed
            self._events.labels_changed(edit.changes)
            return
        done = [_check(self._store.redo(), edit, "redo") for edit in self._edits]
        self._events.labels_changed(_changes(*done))

    def undo(self) -> None:
        done = [_check(self._store.undo(), edit, "undo") for edit in reversed(self._edits)]
        self._events.labels_changed(_changes(*done))

    def mergeWith(self, other: QUndoCommand) -> bool:
        """Absorb the next label change of the same single image."""
        if not isinstance(other, LabelImagesCommand):
            return False
        if len(self._labels) != 1 or other.image_ids != self.image_ids:
            return False
        self._edits.extend(other._edits)
        self._labels = other._labels
        self.setText(other.text())
        return True


class AddClassCommand(QUndoCommand):
    def __init__(self, store: ProjectStore, name: str, events: LabelEvents) -> None:
        super().__init__(f"add class {name}")
        self._store, self._name, self._events = store, name.strip(), events

    def redo(self) -> None:
        self._store.ensure_class(self._name)
        self._events.classes_changed()

    def undo(self) -> None:
        self._store.delete_class(self._name)  # it has no images: undo steps came first
        self._events.classes_changed()


class RenameClassCommand(QUndoCommand):
    def __init__(self, store: ProjectStore, old: str, new: str, events: LabelEvents) -> None:
        super().__init__(f"rename class {old} to {new.strip()}")
        self._store, self._old, self._new, self._events = store, old, new.strip(), events

    def redo(self) -> None:
        self._store.rename_class(self._old, self._new)
        self._events.classes_changed()

    def undo(self) -> None:
        self._store.rename_class(self._new, self._old)
        self._events.classes_changed()


class RecolourClassCommand(QUndoCommand):
    def __init__(self, store: ProjectStore, name: str, colour: str, events: LabelEvents) -> None:
        super().__init__(f"recolour class {name}")
        self._store, self._name, self._events = store, name, events
        self._old = store.class_named(name).colour
        self._new = colour

    def redo(self) -> None:
        self._store.set_class_colour(self._name, self._new)
        self._events.classes_changed()

    def undo(self) -> None:
        self._store.set_class_colour(self._name, self._old)
        self._events.classes_changed()


class _RemoveClassCommand(QUndoCommand):
    """Merge or delete a class. Each ``redo`` runs the store operation afresh (a
    new edit that ends the store's redo list, as the stack's own redo list
    ends); ``undo`` undoes that edit, which brings the class back, and puts
    its colour back."""

    def __init__(self, store: ProjectStore, name: str, events: LabelEvents, text: str) -> None:
        super().__init__(text)
        self._store, self._name, self._events = store, name, events
        self._colour = store.class_named(name).colour
        self._edit: Edit | None = None

    def _remove(self) -> Edit | None:
        raise NotImplementedError

    def redo(self) -> None:
        self._edit = self._remove()
        self._events.classes_removed_or_restored(_changes(self._edit))

    def undo(self) -> None:
        done = None if self._edit is None else _check(self._store.undo(), self._edit, "undo")
        self._store.ensure_class(self._name)  # a class without images has no edit to undo
        self._store.set_class_colour(self._name, self._colour)
        self._events.classes_removed_or_restored(_changes(done))


class MergeClassesCommand(_RemoveClassCommand):
    """Relabel every image of ``source`` as ``target`` and drop ``source``."""

    def __init__(self, store: ProjectStore, source: str, target: str, events: LabelEvents) -> None:
        super().__init__(store, source, events, f"merge class {source} into {target}")
        self._target = target

    def _remove(self) -> Edit | None:
        return self._store.merge_classes(self._name, self._target)


class DeleteClassCommand(_RemoveClassCommand):
    """Drop a class; its images become unlabelled."""

    def __init__(self, store: ProjectStore, name: str, events: LabelEvents) -> None:
        super().__init__(store, name, events, f"delete class {name}")

    def _remove(self) -> Edit | None:
        return self._store.delete_class(self._name)


def _changes(*edits: Edit | None) -> LabelChanges:
    """What these edits, done in this order, changed: each image with its class now."""
    latest: dict[int, int | None] = {}
    for edit in edits:
        if edit is not None:
            latest.update(zip(edit.changes.image_ids, edit.changes.class_ids, strict=True))
    return LabelChanges(tuple(latest), tuple(latest.values()))


def _check(done: Edit | None, expected: Edit, action: str) -> Edit | None:
    """``done``; warn if the store's history moved under us (another program edited labels)."""
    if done is None or done.id != expected.id:
        log.warning(
            "%s of %r reached store edit %s instead; was the project changed elsewhere?",
            action,
            expected.description,
            getattr(done, "id", None),
        )
    return done
