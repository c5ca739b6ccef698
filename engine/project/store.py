"""The project store: one SQLite database per project.

A project is a folder the user chooses, holding ``linnaeus.db`` (this store),
the thumbnail cache and, later, model versions. Images are referenced by their
path relative to the image root, which lives elsewhere and is only ever read.

Every change runs in one transaction; label changes are grouped into edits that
can be undone and redone from any process (the CLI and the GUI share them).
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone
from pathlib import Path

from linnaeus.engine.errors import LabelError
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project import schema

DATABASE_NAME = "linnaeus.db"
SPLITS = ("train", "val", "test")
LABEL_SOURCES = ("import", "user", "model-suggestion")
# Colour-blind-safe palette (Okabe-Ito, then Tableau), cycled for new classes.
CLASS_COLOURS = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9",
    "#D55E00", "#F0E442", "#000000", "#8C564B", "#7F7F7F",
)  # fmt: skip
SHORTCUT_KEYS = tuple("123456789") + tuple("abcdefghijklmnopqrstuvwxyz")
_CHUNK = 500


def utc_now() -> str:
    """Current time as an ISO 8601 UTC string, the format of every time stored."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def to_db_path(relative: str) -> str | bytes:
    """The stored form of a relative path: text, or raw bytes if not valid UTF-8."""
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(relative)
    return relative


def from_db_path(value: str | bytes) -> str:
    """Inverse of `to_db_path`."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def display_path(relative: str) -> str:
    """A relative path safe to print or write as UTF-8 (undecodable bytes shown as �)."""
    return relative.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True)
class ClassInfo:
    """One class (a possible label) of the project."""

    id: int
    name: str
    position: int
    colour: str
    shortcut: str | None


@dataclass(frozen=True)
class ImageRecord:
    """One image file known to the project, readable or not."""

    id: int
    path: str
    content_hash: str | None
    byte_size: int | None
    mtime_ns: int | None
    width: int | None
    height: int | None
    channels: int | None
    bit_depth: int | None
    format: str | None
    status: str
    error: str | None
    label: str | None
    group_id: str | None
    split: str | None
    split_source: str | None


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


@dataclass(frozen=True)
class Edit:
    """One undoable label change (single image or batch)."""

    id: int
    description: str
    source: str
    state: str
    image_count: int


_IMAGE_COLUMNS = (
    "images.id, path, content_hash, byte_size, mtime_ns, width, height, channels, bit_depth, "
    "format, status, error, classes.name, group_id, split, split_source"
)
_IMAGE_SELECT = (
    f"SELECT {_IMAGE_COLUMNS} FROM images LEFT JOIN classes ON classes.id = images.label_id"
)


def _image_from_row(row: Sequence[object]) -> ImageRecord:
    values = list(row)
    values[1] = from_db_path(values[1])  # type: ignore[arg-type]
    return ImageRecord(*values)  # type: ignore[arg-type]


class ProjectStore:
    """Read and change one project's database. Use `create` or `open`."""

    def __init__(self, project_dir: Path, connection: sqlite3.Connection) -> None:
        self.project_dir = project_dir
        self._db = connection
        self._depth = 0

    # -- opening ------------------------------------------------------------

    @classmethod
    def create(cls, project_dir: Path | str, image_root: Path | str) -> ProjectStore:
        """Make a new project in ``project_dir`` for images under ``image_root``."""
        project_dir = Path(project_dir).absolute()
        image_root = Path(image_root).absolute()
        if not image_root.is_dir():
            raise ProjectError(
                f"The image folder {image_root} is not a folder (or cannot be opened)."
            )
        if (project_dir / DATABASE_NAME).exists():
            raise ProjectError(f"{project_dir} already holds a Linnaeus project.")
        if project_dir.resolve().is_relative_to(image_root.resolve()):
            raise ProjectError(
                f"The project folder {project_dir} is inside the image folder {image_root}. "
                "Choose a project folder elsewhere: Linnaeus never writes into your image folder."
            )
        try:
            project_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ProjectError(f"Cannot create the project folder {project_dir}: {error}") from None
        store = cls._connect(project_dir)
        with store.transaction():
            store.set_meta("image_root", str(image_root))
            store.set_meta("created_at", utc_now())
            store.set_meta("project_id", uuid.uuid4().hex)
        return store

    @property
    def project_id(self) -> str:
        """A random id naming this project, written into its exported models so
        a model is never mistaken for one of another project."""
        value = self.meta("project_id")
        if value is None:  # projects made before ids existed get one now
            value = uuid.uuid4().hex
            self.set_meta("project_id", value)
        return value

    @classmethod
    def open(cls, project_dir: Path | str) -> ProjectStore:
        """Open an existing project."""
        project_dir = Path(project_dir).absolute()
        if not (project_dir / DATABASE_NAME).is_file():
            raise ProjectError(
                f"{project_dir} is not a Linnaeus project (no {DATABASE_NAME} in it). "
                "Create one with `linnaeus import IMAGE_FOLDER --project DIR`."
            )
        return cls._connect(project_dir)

    @classmethod
    def _connect(cls, project_dir: Path) -> ProjectStore:
        path = project_dir / DATABASE_NAME
        try:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA busy_timeout = 10000")
            schema.migrate(connection)
        except sqlite3.DatabaseError as error:
            raise ProjectError(f"Cannot open the project database {path}: {error}") from None
        return cls(project_dir, connection)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ProjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All changes inside happen together or not at all; nests freely."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> sqlite3.Cursor:
        """Run one SQL statement (for engine modules that own a table's logic)."""
        return self._db.execute(sql, parameters)

    def execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one SQL statement for each row of parameters."""
        self._db.executemany(sql, rows)

    # -- metadata -----------------------------------------------------------

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @property
    def image_root(self) -> Path:
        return Path(self.meta("image_root") or "")

    @property
    def thumbnails_dir(self) -> Path:
        return self.project_dir / "thumbnails"

    # -- classes ------------------------------------------------------------

    def classes(self) -> list[ClassInfo]:
        """All classes in their display order."""
        rows = self._db.execute(
            "SELECT id, name, position, colour, shortcut FROM classes ORDER BY position, id"
        )
        return [ClassInfo(*row) for row in rows]

    def class_named(self, name: str) -> ClassInfo:
        for info in self.classes():
            if info.name == name:
                return info
        known = ", ".join(c.name for c in self.classes()) or "none yet"
        raise LabelError(f"There is no class called {name!r} (classes: {known}).")

    def ensure_class(self, name: str) -> ClassInfo:
        """The class called ``name``, added (with colour and shortcut) if new."""
        name = name.strip()
        if not name:
            raise LabelError("A class name cannot be empty.")
        existing = {c.name: c for c in self.classes()}
        if name in existing:
            return existing[name]
        taken = {c.shortcut for c in existing.values()}
        shortcut = next((key for key in SHORTCUT_KEYS if key not in taken), None)
        position = len(existing)
        colour = CLASS_COLOURS[position % len(CLASS_COLOURS)]
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO classes (name, position, colour, shortcut) VALUES (?, ?, ?, ?)",
                (name, position, colour, shortcut),
            )
        return ClassInfo(int(cursor.lastrowid or 0), name, position, colour, shortcut)

    def rename_class(self, old: str, new: str) -> None:
        info = self.class_named(old)
        new = new.strip()
        if not new:
            raise LabelError("A class name cannot be empty.")
        if new != old and any(c.name == new for c in self.classes()):
            raise LabelError(f"A class called {new!r} already exists; merge the classes instead.")
        with self.transaction():
            self._db.execute("UPDATE classes SET name = ? WHERE id = ?", (new, info.id))

    def set_class_colour(self, name: str, colour: str) -> None:
        info = self.class_named(name)
        with self.transaction():
            self._db.execute("UPDATE classes SET colour = ? WHERE id = ?", (colour, info.id))

    def merge_classes(self, source: str, target: str) -> Edit | None:
        """Relabel every image of ``source`` as ``target`` (undoable), then drop ``source``."""
        source_info = self.class_named(source)
        self.class_named(target)
        with self.transaction():
            ids = self.image_ids(label=source)
            edit = self.set_labels(ids, target, description=f"merge {source} into {target}")
            self._db.execute("DELETE FROM classes WHERE id = ?", (source_info.id,))
        return edit

    def delete_class(self, name: str) -> Edit | None:
        """Remove a class; its images become unlabelled (undo brings class and labels back)."""
        info = self.class_named(name)
        with self.transaction():
            ids = self.image_ids(label=name)
            edit = self.set_labels(ids, None, description=f"delete class {name}")
            self._db.execute("DELETE FROM classes WHERE id = ?", (info.id,))
        return edit

    # -- images -------------------------------------------------------------

    def images(
        self,
        *,
        status: str | None = None,
        split: str | None = None,
        label: str | None = None,
        unlabelled: bool = False,
    ) -> list[ImageRecord]:
        """Images matching every filter given, ordered by path."""
        where, parameters = self._image_filter(status, split, label, unlabelled)
        rows = self._db.execute(f"{_IMAGE_SELECT} {where} ORDER BY images.path", parameters)
        return [_image_from_row(row) for row in rows]

    def image_ids(
        self,
        *,
        status: str | None = None,
        split: str | None = None,
        label: str | None = None,
        unlabelled: bool = False,
    ) -> list[int]:
        where, parameters = self._image_filter(status, split, label, unlabelled)
        rows = self._db.execute(
            f"SELECT images.id FROM images LEFT JOIN classes ON classes.id = images.label_id "
            f"{where} ORDER BY images.id",
            parameters,
        )
        return [row[0] for row in rows]

    @staticmethod
    def _image_filter(
        status: str | None, split: str | None, label: str | None, unlabelled: bool
    ) -> tuple[str, list[object]]:
        clauses: list[str] = []
        parameters: list[object] = []
        for column, value in (("status", status), ("split", split), ("classes.name", label)):
            if value is not None:
                clauses.append(f"{column} = ?")
                parameters.append(value)
        if unlabelled:
            clauses.append("images.label_id IS NULL")
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), parameters

    def image(self, image_id: int) -> ImageRecord:
        row = self._db.execute(f"{_IMAGE_SELECT} WHERE images.id = ?", (image_id,)).fetchone()
        if row is None:
            raise LabelError(f"There is no image with id {image_id} in this project.")
        return _image_from_row(row)

    def image_by_path(self, path: str) -> ImageRecord:
        """The image at ``path`` (relative to the image root, '/' separators)."""
        key = to_db_path(path.replace(os.sep, "/"))
        row = self._db.execute(f"{_IMAGE_SELECT} WHERE images.path = ?", (key,)).fetchone()
        if row is None:
            raise LabelError(f"There is no image {display_path(path)!r} in this project.")
        return _image_from_row(row)

    def image_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM images").fetchone()[0])

    def label_split_counts(self, status: str = "ok") -> dict[str, dict[str, int]]:
        """Image counts per class and split: ``{class: {split: n}}``.

        Unlabelled images count under ``"(unlabelled)"``, images without a
        split under ``"(none)"``.
        """
        counts: dict[str, dict[str, int]] = {}
        rows = self._db.execute(
            "SELECT classes.name, images.split, count(*) FROM images "
            "LEFT JOIN classes ON classes.id = images.label_id WHERE images.status = ? "
            "GROUP BY classes.name, images.split",
            (status,),
        )
        for label, split, n in rows:
            per_split = counts.setdefault(label or "(unlabelled)", {})
            per_split[split or "(none)"] = n
        return counts

    def set_splits(self, splits: Mapping[int, str | None], source: str) -> None:
        """Assign train/val/test (or none) to images by id."""
        if any(s is not None and s not in SPLITS for s in splits.values()):
            raise ProjectError(f"A split must be one of {', '.join(SPLITS)}.")
        with self.transaction():
            self._db.executemany(
                "UPDATE images SET split = ?, split_source = ? WHERE id = ?",
                [(s, source if s else None, i) for i, s in splits.items()],
            )

    # -- labels, history, undo ----------------------------------------------

    def set_labels(
        self,
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
        return self.apply_labels({i: label for i in image_ids}, source=source,
                                 description=description, on_progress=on_progress,
                                 cancel=cancel)  # fmt: skip

    def apply_labels(
        self,
        labels: Mapping[int, str | None],
        *,
        source: str = "user",
        description: str | None = None,
        on_progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
    ) -> Edit | None:
        """Set each image's label from a mapping image id -> class name (or None), as one edit."""
        if source not in LABEL_SOURCES:
            raise LabelError(f"Unknown label source {source!r}.")
        with self.transaction():
            class_ids: dict[str | None, int | None] = {None: None}
            for name in dict.fromkeys(labels.values()):  # first-seen order, no repeats
                if name:
                    class_ids[name] = self.ensure_class(name).id
            current = self._current_labels(list(labels))
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
                names = {name for name in labels.values()}
                target = names.pop() if len(names) == 1 else "several classes"
                description = f"label {len(changes)} image(s) as {target or 'unlabelled'}"
            if source != "import":
                # A new edit ends the redo stack, as in every editor.
                self._db.execute("UPDATE edits SET state = 'discarded' WHERE state = 'undone'")
            cursor = self._db.execute(
                "INSERT INTO edits (created_at, source, description) VALUES (?, ?, ?)",
                (utc_now(), source, description),
            )
            edit_id = int(cursor.lastrowid or 0)
            self._write_changes(edit_id, changes, source, "set", on_progress, cancel)
        return Edit(edit_id, description, source, "done", len(changes))

    def _current_labels(self, image_ids: list[int]) -> dict[int, int | None]:
        current: dict[int, int | None] = {}
        for start in range(0, len(image_ids), _CHUNK):
            chunk = image_ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT id, label_id FROM images WHERE id IN ({marks})", chunk)
            current.update(rows)
        return current

    def _write_changes(
        self,
        edit_id: int,
        changes: list[tuple[int, int | None, int | None]],
        source: str,
        action: str,
        on_progress: ProgressCallback,
        cancel: CancelToken | None,
    ) -> None:
        names = {c.id: c.name for c in self.classes()}
        now = utc_now()
        for start in range(0, len(changes), _CHUNK):
            check_cancelled(cancel)
            chunk = changes[start : start + _CHUNK]
            self._db.executemany(
                "UPDATE images SET label_id = ? WHERE id = ?", [(new, i) for i, _, new in chunk]
            )
            self._db.executemany(
                "INSERT INTO label_history (image_id, edit_id, old_class_id, new_class_id, "
                "old_name, new_name, changed_at, source, action) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (i, edit_id, old, new, names.get(old), names.get(new), now, source, action)
                    for i, old, new in chunk
                ],
            )
            on_progress(Progress("label", start + len(chunk), len(changes)))

    def undoable_edit(self) -> Edit | None:
        """The edit `undo` would revert, if any."""
        return self._edit_where("state = 'done' AND source != 'import' ORDER BY id DESC")

    def redoable_edit(self) -> Edit | None:
        """The edit `redo` would re-apply, if any."""
        return self._edit_where("state = 'undone' ORDER BY id ASC")

    def _edit_where(self, condition: str) -> Edit | None:
        row = self._db.execute(
            "SELECT id, description, source, state, "
            "(SELECT count(*) FROM label_history h WHERE h.edit_id = edits.id AND action = 'set') "
            f"FROM edits WHERE {condition} LIMIT 1"
        ).fetchone()
        return Edit(*row) if row else None

    def undo(self) -> Edit | None:
        """Revert the latest label edit; returns it, or None if there is nothing to undo."""
        return self._step(self.undoable_edit(), "undo")

    def redo(self) -> Edit | None:
        """Re-apply the most recently undone edit; returns it, or None."""
        return self._step(self.redoable_edit(), "redo")

    def _step(self, edit: Edit | None, action: str) -> Edit | None:
        if edit is None:
            return None
        with self.transaction():
            rows = self._db.execute(
                "SELECT image_id, old_class_id, old_name, new_class_id, new_name "
                "FROM label_history WHERE edit_id = ? AND action = 'set' ORDER BY id",
                (edit.id,),
            ).fetchall()
            current = self._current_labels([row[0] for row in rows])
            changes = []
            for image_id, old_id, old_name, new_id, new_name in rows:
                class_id, name = (old_id, old_name) if action == "undo" else (new_id, new_name)
                if class_id is None and name is not None:
                    # The class was deleted or merged away since: bring it back.
                    class_id = self.ensure_class(name).id
                changes.append((image_id, current.get(image_id), class_id))
            self._write_changes(edit.id, changes, edit.source, action, ignore_progress, None)
            state = "undone" if action == "undo" else "done"
            self._db.execute("UPDATE edits SET state = ? WHERE id = ?", (state, edit.id))
        return Edit(edit.id, edit.description, edit.source, state, edit.image_count)

    def history(self, image_id: int | None = None, *, limit: int = 1000) -> list[HistoryEntry]:
        """Label changes, newest first; of one image if ``image_id`` is given."""
        where = "WHERE h.image_id = ?" if image_id is not None else ""
        parameters: tuple[object, ...] = (image_id,) if image_id is not None else ()
        rows = self._db.execute(
            "SELECT h.image_id, images.path, h.old_name, h.new_name, h.changed_at, h.source, "
            "h.action, h.edit_id FROM label_history h JOIN images ON images.id = h.image_id "
            f"{where} ORDER BY h.id DESC LIMIT ?",
            (*parameters, limit),
        )
        return [
            HistoryEntry(row[0], from_db_path(row[1]), *row[2:]) for row in rows
        ]  # fmt: skip
