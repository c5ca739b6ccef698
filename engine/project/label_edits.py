"""Label edits: labels set as one undoable edit, the label history, undo and redo.

Every label change is a row of ``label_history`` belonging to an edit (a row
of ``edits``); undo and redo replay an edit's rows backwards or forwards, so
the command line and the desktop application share one history. Each change
returns the `Edit` with the images it changed and the class each has now, so
a view can update just those images without reading the store again.
`ProjectStore` has these functions as its label methods (``store.undo()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from linnaeus.engine.errors import LabelError
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project.database import CHUNK
from linnaeus.engine.project.database import from_db_path
from linnaeus.engine.project.database import utc_now

if TYPE_CHECKING:
    from linnaeus.engine.project.store import ProjectStore

LABEL_SOURCES = ("import", "user", "model-suggestion")

# (image id, class id before, class id after) of one image in one edit
_Change = tuple[int, int | None, int | None]


@dataclass(frozen=True)
class LabelChanges:
    """Images whose label a call changed, each with the class id it has now
    (None: unlabelled)."""

    image_ids: tuple[int, ...] = ()
    class_ids: tuple[int | None, ...] = ()

    def __len__(self) -> int:
        return len(self.image_ids)


@dataclass(frozen=True)
class Edit:
    """One undoable label change (single image or batch).

    ``changes`` is what the call that returned the edit did (set, undo or
    redo); an edit only looked up (`undoable_edit`) has none.
    """

    id: int
    description: str
    source: str
    state: str
    image_count: int
    changes: LabelChanges = LabelChanges()

    def summary(self) -> dict[str, object]:
        """The edit without its per-image changes, as the command line prints it."""
        return {
            "id": self.id,
            "description": self.description,
            "source": self.source,
            "state": self.state,
            "image_count": self.image_count,
        }


@dataclass(frozen=True)
class HistoryEntry:
    """One row of an image's label history."""

    image_id: int
    image_path: str
    old_label: str | None
    new_label: str | None
    changed_at: str
    source: str
    action: str
    edit_id: int


def describe_labelling(
    labels: Mapping[int, str | None], source: str, count: int | None = None
) -> str:
    """The words for an edit giving these labels, e.g. "label 3 image(s) as cat";
    ``count`` is how many images it changed (default: all of them)."""
    names = set(labels.values())
    target = names.pop() if len(names) == 1 else "several classes"
    verb = "accept suggestion for" if source == "model-suggestion" else "label"
    count = len(labels) if count is None else count
    return f"{verb} {count} image(s) as {target or 'unlabelled'}"


def set_labels(
    store: ProjectStore,
    image_ids: Sequence[int],
    label: str | None,
    *,
    source: str = "user",
    description: str | None = None,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> Edit | None:
    """Give every image in ``image_ids`` the class ``label`` (None: unlabelled).

    The whole batch is one transaction and one undoable edit; images that
    already have that label are left out. Returns None if nothing changed.
    """
    return apply_labels(store, {i: label for i in image_ids}, source=source,
                        description=description, on_progress=on_progress,
                        cancel=cancel)  # fmt: skip


def apply_labels(
    store: ProjectStore,
    labels: Mapping[int, str | None],
    *,
    source: str = "user",
    description: str | None = None,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> Edit | None:
    """Set each image's label from a mapping image id -> class name (or None), as
    one edit in one transaction; images that already have their label are left
    out. Returns None if nothing changed."""
    if source not in LABEL_SOURCES:
        raise LabelError(f"Unknown label source {source!r}.")
    with store.transaction():
        class_ids: dict[str | None, int | None] = {None: None}
        for name in dict.fromkeys(labels.values()):  # first-seen order, no repeats
            if name:
                class_ids[name] = store.ensure_class(name).id
        current = _current_labels(store, list(labels))
        missing = set(labels) - set(current)
        if missing:
            raise LabelError(f"There is no image with id {min(missing)} in this project.")
        changes = [
            (image_id, current[image_id], class_ids[name])
            for image_id, name in labels.items()
            if current[image_id] != class_ids[name]
        ]
        if not changes:
            return None
        if description is None:
            description = describe_labelling(labels, source, len(changes))
        if source != "import":
            # A new edit ends the redo stack, as in every editor.
            store.execute("UPDATE edits SET state = 'discarded' WHERE state = 'undone'")
        cursor = store.execute(
            "INSERT INTO edits (created_at, source, description) VALUES (?, ?, ?)",
            (utc_now(), source, description),
        )
        edit_id = int(cursor.lastrowid or 0)
        _write_changes(store, edit_id, changes, source, "set", on_progress, cancel)
    return Edit(edit_id, description, source, "done", len(changes), _label_changes(changes))


def undoable_edit(store: ProjectStore) -> Edit | None:
    """The edit `undo` would revert, if any."""
    return _edit_where(store, "state = 'done' AND source != 'import' ORDER BY id DESC")


def redoable_edit(store: ProjectStore) -> Edit | None:
    """The edit `redo` would re-apply, if any."""
    return _edit_where(store, "state = 'undone' ORDER BY id ASC")


def undo(store: ProjectStore) -> Edit | None:
    """Revert the latest label edit; returns it, or None if there is nothing to undo."""
    return _step(store, undoable_edit(store), "undo")


def redo(store: ProjectStore) -> Edit | None:
    """Re-apply the most recently undone edit; returns it, or None."""
    return _step(store, redoable_edit(store), "redo")


def history(
    store: ProjectStore, image_id: int | None = None, *, limit: int = 1000
) -> list[HistoryEntry]:
    """Label changes, newest first; of one image if ``image_id`` is given."""
    where = "WHERE h.image_id = ?" if image_id is not None else ""
    parameters: tuple[object, ...] = (image_id,) if image_id is not None else ()
    rows = store.execute(
        "SELECT h.image_id, images.path, h.old_name, h.new_name, h.changed_at, h.source, "
        "h.action, h.edit_id FROM label_history h JOIN images ON images.id = h.image_id "
        f"{where} ORDER BY h.id DESC LIMIT ?",
        (*parameters, limit),
    )
    return [
        HistoryEntry(row[0], from_db_path(row[1]), *row[2:]) for row in rows
    ]  # fmt: skip


def _label_changes(changes: list[_Change]) -> LabelChanges:
    return LabelChanges(tuple(i for i, _, _ in changes), tuple(new for _, _, new in changes))


def _current_labels(store: ProjectStore, image_ids: list[int]) -> dict[int, int | None]:
    current: dict[int, int | None] = {}
    for start in range(0, len(image_ids), CHUNK):
        chunk = image_ids[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = store.execute(f"SELECT id, label_id FROM images WHERE id IN ({marks})", chunk)
        current.update(rows)
    return current


def _write_changes(
    store: ProjectStore,
    edit_id: int,
    changes: list[_Change],
    source: str,
    action: str,
    on_progress: ProgressCallback,
    cancel: CancelToken | None,
) -> None:
    names = {c.id: c.name for c in store.classes()}
    now = utc_now()
    for start in range(0, len(changes), CHUNK):
        check_cancelled(cancel)
        chunk = changes[start : start + CHUNK]
        store.execute_many(
            "UPDATE images SET label_id = ? WHERE id = ?", [(new, i) for i, _, new in chunk]
        )
        store.execute_many(
            "INSERT INTO label_history (image_id, edit_id, old_class_id, new_class_id, "
            "old_name, new_name, changed_at, source, action) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (i, edit_id, old, new, names.get(old), names.get(new), now, source, action)
                for i, old, new in chunk
            ],
        )
        on_progress(Progress("label", start + len(chunk), len(changes)))


def _edit_where(store: ProjectStore, condition: str) -> Edit | None:
    row = store.execute(
        "SELECT id, description, source, state, "
        "(SELECT count(*) FROM label_history h WHERE h.edit_id = edits.id AND action = 'set') "
        f"FROM edits WHERE {condition} LIMIT 1"
    ).fetchone()
    return Edit(*row) if row else None


def _step(store: ProjectStore, edit: Edit | None, action: str) -> Edit | None:
    if edit is None:
        return None
    with store.transaction():
        rows = store.execute(
            "SELECT image_id, old_class_id, old_name, new_class_id, new_name "
            "FROM label_history WHERE edit_id = ? AND action = 'set' ORDER BY id",
            (edit.id,),
        ).fetchall()
        current = _current_labels(store, [row[0] for row in rows])
        changes: list[_Change] = []
        for image_id, old_id, old_name, new_id, new_name in rows:
            class_id, name = (old_id, old_name) if action == "undo" else (new_id, new_name)
            if class_id is None and name is not None:
                # The class was deleted or merged away since: bring it back.
                class_id = store.ensure_class(name).id
            changes.append((image_id, current.get(image_id), class_id))
        _write_changes(store, edit.id, changes, edit.source, action, ignore_progress, None)
        state = "undone" if action == "undo" else "done"
        store.execute("UPDATE edits SET state = ? WHERE id = ?", (state, edit.id))
    return Edit(
        edit.id, edit.description, edit.source, state, edit.image_count, _label_changes(changes)
    )
