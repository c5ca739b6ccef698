"""The image rows: what import writes about each file, and what training reads back.

Import reads every new or changed file once and records what it found (content
hash, size, modification time, decoded size and format, or why the file cannot
be read); re-import finds moved files by their content and marks vanished ones
missing. Training reads the labelled images and records the files it can no
longer read. These functions hold that bookkeeping's SQL; what to write is
decided by `linnaeus.engine.dataset.importer` and `linnaeus.engine.training.data`.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import astuple
from dataclasses import dataclass

from linnaeus.engine.project.database import from_db_path
from linnaeus.engine.project.database import to_db_path
from linnaeus.engine.project.database import utc_now
from linnaeus.engine.project.store import ProjectStore


@dataclass(frozen=True)
class KnownFile:
    """What the project knows of a file, to tell whether it changed since."""

    image_id: int
    byte_size: int | None
    mtime_ns: int | None
    status: str


@dataclass(frozen=True)
class FileRecord:
    """What reading a file found, as the project stores it."""

    content_hash: str | None
    byte_size: int | None
    mtime_ns: int | None
    width: int | None
    height: int | None
    channels: int | None
    bit_depth: int | None
    format: str | None
    status: str  # "ok" or "unreadable"
    error: str | None
    perceptual_hashes: bytes | None = None  # engine.images.perceptual_hash, of readable files


def known_files(store: ProjectStore) -> dict[str, KnownFile]:
    """Every image of the project by its path."""
    rows = store.execute("SELECT id, path, byte_size, mtime_ns, status FROM images")
    return {
        from_db_path(path): KnownFile(image_id, size, mtime, status)
        for image_id, path, size, mtime, status in rows
    }


def add_file(store: ProjectStore, path: str, record: FileRecord, split: str | None) -> int:
    """Add an image; ``split`` is the one its folder gives (None: none). Returns its id."""
    cursor = store.execute(
        "INSERT INTO images (content_hash, byte_size, mtime_ns, width, height, channels, "
        "bit_depth, format, status, error, perceptual_hashes, path, split, split_source, "
        "added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (*astuple(record), to_db_path(path), split, "folder" if split else None, utc_now()),
    )
    return int(cursor.lastrowid or 0)


def update_file(store: ProjectStore, image_id: int, record: FileRecord) -> None:
    """Record what reading the image's file found this time."""
    store.execute(
        "UPDATE images SET content_hash = ?, byte_size = ?, mtime_ns = ?, width = ?, "
        "height = ?, channels = ?, bit_depth = ?, format = ?, status = ?, error = ?, "
        "perceptual_hashes = ? WHERE id = ?",
        (*astuple(record), image_id),
    )


def move_file(store: ProjectStore, image_id: int, path: str) -> None:
    """The image's file is now at ``path`` (moved or renamed)."""
    store.execute("UPDATE images SET path = ? WHERE id = ?", (to_db_path(path), image_id))


def ids_with_content(store: ProjectStore, content_hash: str) -> list[int]:
    """The images whose file has this content, by id."""
    rows = store.execute(
        "SELECT id FROM images WHERE content_hash = ? ORDER BY id", (content_hash,)
    ).fetchall()
    return [int(image_id) for (image_id,) in rows]


def mark_missing(store: ProjectStore, image_ids: Iterable[int]) -> None:
    """These images' files are no longer in the image folder."""
    ids = ",".join(str(int(i)) for i in image_ids)
    store.execute(
        "UPDATE images SET status = 'missing', error = 'file no longer in the image folder' "
        f"WHERE id IN ({ids})"
    )


def never_labelled(store: ProjectStore) -> dict[str, int]:
    """Images without a label that never had one (path -> id)."""
    rows = store.execute(
        "SELECT id, path FROM images WHERE label_id IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM label_history h WHERE h.image_id = images.id)"
    )
    return {from_db_path(path): image_id for image_id, path in rows}


def set_groups(store: ProjectStore, groups: Mapping[int, str]) -> None:
    """Give images (by id) their patient/specimen group."""
    store.execute_many(
        "UPDATE images SET group_id = ? WHERE id = ?", [(g, i) for i, g in groups.items()]
    )


@dataclass(frozen=True)
class LabelledImage:
    """A labelled image as training and evaluation read it."""

    image_id: int
    path: str
    content_hash: str | None
    label: str  # class name
    split: str | None


def labelled_images(store: ProjectStore, *, trainable: bool = False) -> list[LabelledImage]:
    """Every labelled image, by id; with ``trainable`` only the readable ones in a split."""
    query = (
        "SELECT images.id, images.path, images.content_hash, classes.name, images.split "
        "FROM images JOIN classes ON classes.id = images.label_id"
    )
    if trainable:
        query += " WHERE images.status = 'ok' AND images.split IS NOT NULL"
    rows = store.execute(f"{query} ORDER BY images.id").fetchall()
    return [
        LabelledImage(int(image_id), from_db_path(path), content_hash, label, split)
        for image_id, path, content_hash, label, split in rows
    ]


def readable_images(store: ProjectStore) -> list[LabelledImage]:
    """Every readable image, labelled or not, by id (``label`` is "" when there is none)."""
    rows = store.execute(
        "SELECT images.id, images.path, images.content_hash, coalesce(classes.name, ''), "
        "images.split FROM images LEFT JOIN classes ON classes.id = images.label_id "
        "WHERE images.status = 'ok' ORDER BY images.id"
    ).fetchall()
    return [
        LabelledImage(int(image_id), from_db_path(path), content_hash, label, split)
        for image_id, path, content_hash, label, split in rows
    ]


def mark_unreadable(store: ProjectStore, reasons: Mapping[int, str]) -> None:
    """These images' files can no longer be read (image id -> why)."""
    with store.transaction():
        store.execute_many(
            "UPDATE images SET status = 'unreadable', error = ? WHERE id = ?",
            [(reason, int(image_id)) for image_id, reason in reasons.items()],
        )


@dataclass(frozen=True)
class HashedImage:
    """A readable image as the duplicate search reads it."""

    image_id: int
    path: str
    content_hash: str | None
    perceptual_hashes: bytes | None  # None: not yet (imported before hashes were kept)
    label: str | None
    split: str | None
    group_id: str | None


def hashed_images(store: ProjectStore) -> list[HashedImage]:
    """Every readable image with its hashes, label, split and group, by id."""
    rows = store.execute(
        "SELECT images.id, images.path, images.content_hash, images.perceptual_hashes, "
        "classes.name, images.split, images.group_id FROM images "
        "LEFT JOIN classes ON classes.id = images.label_id "
        "WHERE images.status = 'ok' ORDER BY images.id"
    ).fetchall()
    return [
        HashedImage(int(row[0]), from_db_path(row[1]), *row[2:])  # type: ignore[arg-type]
        for row in rows
    ]


def set_perceptual_hashes(store: ProjectStore, hashes: Mapping[int, bytes]) -> None:
    """Record the perceptual hashes of images (image id -> hashes as stored)."""
    with store.transaction():
        store.execute_many(
            "UPDATE images SET perceptual_hashes = ? WHERE id = ?",
            [(value, int(image_id)) for image_id, value in hashes.items()],
        )
