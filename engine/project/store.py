"""The project store: one SQLite database per project.

A project is a folder the user chooses, holding ``linnaeus.db`` (this store),
the thumbnail cache and, later, model versions. Images are referenced by their
path relative to the image root, which lives elsewhere and is only ever read.

Every change runs in one transaction. `ProjectStore` holds the images, their
classes and splits; label changes, their history and undo/redo live in
`linnaeus.engine.project.label_edits` and are reached through the store's label
methods.
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
from pathlib import Path

import numpy as np

from linnaeus.engine.disk_space import disk_full_as_error
from linnaeus.engine.errors import LabelError
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.project import label_edits
from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project.database import DATABASE_NAME
from linnaeus.engine.project.database import connect
from linnaeus.engine.project.database import display_path
from linnaeus.engine.project.database import from_db_path
from linnaeus.engine.project.database import to_db_path
from linnaeus.engine.project.database import utc_now
from linnaeus.engine.project.folders import check_existing_project
from linnaeus.engine.project.folders import check_new_image_root
from linnaeus.engine.project.folders import check_project_folder
from linnaeus.engine.project.folders import make_project_folder
from linnaeus.engine.project.label_edits import Edit

SPLITS = ("train", "val", "test")
# How `label_split_counts` names unlabelled images and images without a split.
UNLABELLED = "(unlabelled)"
NO_SPLIT = "(none)"
IMAGE_STATUSES = ("ok", "unreadable", "missing")
# Colour-blind-safe palette (Okabe-Ito, then Tableau), cycled for new classes.
CLASS_COLOURS = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9",
    "#D55E00", "#F0E442", "#000000", "#8C564B", "#7F7F7F",
)  # fmt: skip
SHORTCUT_KEYS = tuple("123456789") + tuple("abcdefghijklmnopqrstuvwxyz")


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
class ImageColumns:
    """Every image of a project (or the first few by path) as columns, ordered by path.

    ``label`` holds class ids (-1: unlabelled); ``split`` and ``status`` are
    indices into `SPLITS` (-1: none) and `IMAGE_STATUSES`.
    """

    ids: np.ndarray
    paths: list[str]
    hashes: list[str | None]
    label: np.ndarray
    split: np.ndarray
    status: np.ndarray
    errors: list[str | None]


_IMAGE_COLUMNS = (
    "images.id, path, content_hash, byte_size, mtime_ns, width, height, channels, bit_depth, "
    "format, status, error, classes.name, group_id, split, split_source"
)
_IMAGE_SELECT = (
    f"SELECT {_IMAGE_COLUMNS} FROM images LEFT JOIN classes ON classes.id = images.label_id"
)
_COLUMNS_SELECT = (
    "SELECT id, path, content_hash, coalesce(label_id, -1), "
    "CASE split WHEN 'train' THEN 0 WHEN 'val' THEN 1 WHEN 'test' THEN 2 ELSE -1 END, "
    "CASE status WHEN 'ok' THEN 0 WHEN 'unreadable' THEN 1 ELSE 2 END, error FROM images"
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
        make_project_folder(project_dir, image_root)
        with project_lock.hold(project_dir, "creating the project"):
            check_project_folder(project_dir, image_root)  # made while this one waited?
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
    def open(
        cls, project_dir: Path | str, *, image_root: Path | str | None = None, tidy: bool = True
    ) -> ProjectStore:
        """Open an existing project; with ``image_root``, point it at the image
        folder's new place (to re-import from there).

        A project whose folder and image folder overlap is refused; what a process
        that ended abruptly left in it is settled (`leftovers.tidy`), unless
        ``tidy`` is False: a second connection that only reads, beside one that
        opened the project already (the window's worker threads), takes no lock,
        so that it never makes the project look busy to the window itself.
        """
        project_dir = Path(project_dir).absolute()
        if not (project_dir / DATABASE_NAME).is_file():
            raise ProjectError(
                f"{project_dir} is not a Linnaeus project (no {DATABASE_NAME} in it). "
                "Create one with `linnaeus import IMAGE_FOLDER --project DIR`."
            )
        store = cls._connect(project_dir)
        try:
            store._check_opened(
                None if image_root is None else Path(image_root).absolute(), tidy=tidy
            )
        except BaseException:
            store.close()
            raise
        return store

    def _check_opened(self, image_root: Path | None, *, tidy: bool = True) -> None:
        if image_root is not None:
            check_new_image_root(self.project_dir, image_root)
            if image_root != self.image_root:
                self.set_meta("image_root", str(image_root))
        elif self.meta("image_root"):
            check_existing_project(self.project_dir, self.image_root)
        if tidy:
            from linnaeus.engine.project import leftovers  # it reads versions, which import this

            leftovers.tidy(self)

    @classmethod
    def _connect(cls, project_dir: Path) -> ProjectStore:
        return cls(project_dir, connect(project_dir))

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
        self._depth = 1
        try:
            with disk_full_as_error(self.project_dir):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:  # SQLite may have rolled back already
                        self._db.execute("ROLLBACK")
                    raise
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

    def delete_meta(self, key: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM meta WHERE key = ?", (key,))

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

    def status_counts(self) -> dict[str, int]:
        """How many images have each status ("ok", "unreadable", "missing"); absent: none."""
        rows = self._db.execute("SELECT status, count(*) FROM images GROUP BY status")
        return {status: int(n) for status, n in rows}

    def image_columns(self, first: int | None = None) -> ImageColumns:
        """Every image (or only the ``first`` by path) as columns, ordered by path."""
        if first is None:
            rows = self._db.execute(_COLUMNS_SELECT).fetchall()
        else:  # the path index gives these in milliseconds
            query = f"{_COLUMNS_SELECT} ORDER BY path LIMIT ?"
            rows = self._db.execute(query, (first,)).fetchall()
        if not rows:
            no_ids, no_codes = np.zeros(0, np.int64), np.zeros(0, np.int8)
            return ImageColumns(no_ids, [], [], no_ids.copy(), no_codes, no_codes.copy(), [])
        ids, paths, hashes, label, split, status, errors = zip(*rows, strict=True)
        paths = [p if isinstance(p, str) else from_db_path(p) for p in paths]
        order = sorted(range(len(paths)), key=paths.__getitem__)  # faster than ORDER BY path
        pick = np.array(order, np.int64)
        return ImageColumns(
            ids=np.array(ids, np.int64)[pick],
            paths=[paths[i] for i in order],
            hashes=[hashes[i] for i in order],
            label=np.array(label, np.int64)[pick],
            split=np.array(split, np.int8)[pick],
            status=np.array(status, np.int8)[pick],
            errors=[errors[i] for i in order],
        )

    def label_split_counts(self, status: str = "ok") -> dict[str, dict[str, int]]:
        """Image counts per class and split: ``{class: {split: n}}``.

        Unlabelled images count under `UNLABELLED`, images without a split
        under `NO_SPLIT`.
        """
        counts: dict[str, dict[str, int]] = {}
        rows = self._db.execute(
            "SELECT classes.name, images.split, count(*) FROM images "
            "LEFT JOIN classes ON classes.id = images.label_id WHERE images.status = ? "
            "GROUP BY classes.name, images.split",
            (status,),
        )
        for label, split, n in rows:
            per_split = counts.setdefault(label or UNLABELLED, {})
            per_split[split or NO_SPLIT] = n
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

    # -- labels, history, undo: the functions of `label_edits`, as methods ----

    set_labels = label_edits.set_labels
    apply_labels = label_edits.apply_labels
    undoable_edit = label_edits.undoable_edit
    redoable_edit = label_edits.redoable_edit
    undo = label_edits.undo
    redo = label_edits.redo
    history = label_edits.history
