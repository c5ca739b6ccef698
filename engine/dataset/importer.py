"""Importing a folder of images into a project, and re-importing it later.

Import reads every image once (to hash it and to prove it decodes), records
unreadable files with their reason and carries on, takes labels from class
folders or a label table, and assigns fixed train/validation/test splits.
Re-import adds new files, marks vanished ones as missing and recognises moved
or renamed files by their content, so they keep their labels and splits.
Nothing under the image root is ever written.
"""

from __future__ import annotations

import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from linnaeus.engine.dataset.labels_csv import CsvLabel
from linnaeus.engine.dataset.labels_csv import find_label_csv
from linnaeus.engine.dataset.labels_csv import read_label_csv
from linnaeus.engine.dataset.layout import SPLIT_FOLDER_NAMES
from linnaeus.engine.dataset.layout import FoundImage
from linnaeus.engine.dataset.layout import scan_folder
from linnaeus.engine.dataset.splits import SplitFractions
from linnaeus.engine.dataset.splits import SplitItem
from linnaeus.engine.dataset.splits import assign_splits
from linnaeus.engine.dataset.splits import compile_group_pattern
from linnaeus.engine.dataset.splits import group_from_path
from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.errors import ImportSourceError
from linnaeus.engine.images.imageio import DEFAULT_MAX_PIXELS
from linnaeus.engine.images.imageio import ImageInfo
from linnaeus.engine.images.imageio import content_hash
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project.database import from_db_path
from linnaeus.engine.project.database import to_db_path
from linnaeus.engine.project.database import utc_now
from linnaeus.engine.project.store import ProjectStore

log = logging.getLogger(__name__)
_BATCH = 256


@dataclass(frozen=True)
class FileFacts:
    """What reading one file taught us."""

    path: str
    content_hash: str | None
    byte_size: int | None
    mtime_ns: int | None
    info: ImageInfo | None
    error: str | None


@dataclass(frozen=True)
class ImportOptions:
    """How to import: where labels and groups come from, how to split."""

    labels_csv: Path | None = None
    group_regex: str | None = None
    fractions: SplitFractions = field(default_factory=SplitFractions)
    seed: int = 0
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.group_regex:
            compile_group_pattern(self.group_regex)  # a bad pattern is refused here, early


@dataclass(frozen=True)
class ImportReport:
    """The outcome of an import, for the CLI summary, its JSON and the GUI."""

    image_root: str
    layout: str
    found: int
    added: int
    renamed: int
    updated: int
    unchanged: int
    missing: int
    skipped_files: int
    unreadable: list[tuple[str, str]]
    table_problems: list[tuple[str, str]]
    labels_kept: int  # table labels that disagreed with a label the project already had
    counts: dict[str, dict[str, int]]
    seconds: float


def inspect_file(root: Path, relative: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> FileFacts:
    """Read, hash and decode one file; never raises for a bad file."""
    full = root / relative
    try:
        status = full.stat()
        data = full.read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        return FileFacts(relative, None, None, None, None, f"cannot read file: {reason}")
    digest = content_hash(data)
    try:
        info = read_image(full, data=data, max_pixels=max_pixels).info
    except ImageReadError as error:
        return FileFacts(relative, digest, len(data), status.st_mtime_ns, None, str(error))
    except MemoryError:
        message = "not enough memory to decode this image"
        return FileFacts(relative, digest, len(data), status.st_mtime_ns, None, message)
    return FileFacts(relative, digest, len(data), status.st_mtime_ns, info, None)


def import_images(
    store: ProjectStore,
    options: ImportOptions = ImportOptions(),
    *,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> ImportReport:
    """(Re-)import the project's image root into ``store``."""
    started = time.monotonic()
    root = store.image_root
    if not root.is_dir():
        raise ImportSourceError(
            f"The image folder {root} cannot be found. If it moved, import it again from "
            "its new place with `linnaeus import NEW_FOLDER --project ...`."
        )
    pattern = options.group_regex or store.meta("group_regex")
    group_regex = compile_group_pattern(pattern) if pattern else None
    on_progress(Progress("scan", 0, 0, f"Looking for images in {root}"))
    scan = scan_folder(root)
    found = {image.path: image for image in scan.images}
    labels_csv = options.labels_csv or find_label_csv(root)
    table = read_label_csv(labels_csv, root, found) if labels_csv else None
    layout = scan.layout + (f", labels from {labels_csv.name}" if labels_csv else "")

    existing = {
        from_db_path(path): (image_id, size, mtime, status)
        for image_id, path, size, mtime, status in store.execute(
            "SELECT id, path, byte_size, mtime_ns, status FROM images"
        )
    }
    to_read = [path for path in found if _needs_reading(root, path, existing.get(path))]
    vanished = {row[0]: path for path, row in existing.items() if path not in found}
    counts = {"added": 0, "renamed": 0, "updated": 0}

    workers = options.workers or min(8, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import") as pool:
        for start in range(0, len(to_read), _BATCH):
            check_cancelled(cancel)
            batch = to_read[start : start + _BATCH]
            facts = list(pool.map(lambda p: inspect_file(root, p, options.max_pixels), batch))
            _save_batch(store, facts, found, existing, vanished, counts)
            done = start + len(batch)
            on_progress(Progress("read", done, len(to_read), f"Read {done} of {len(to_read)}"))

    on_progress(Progress("save", 0, 1, "Saving labels and splits"))
    with store.transaction():
        store.execute(
            "UPDATE images SET status = 'missing', error = 'file no longer in the image folder' "
            f"WHERE id IN ({','.join(str(i) for i in vanished)})"
        )
        if options.group_regex:
            store.set_meta("group_regex", options.group_regex)
        rows = table.rows if table else {}
        labels_kept = _apply_labels(store, found, rows, labels_csv)
        _apply_groups(store, rows, group_regex)
        _apply_splits(store, found, rows, options)
    on_progress(Progress("save", 1, 1, "Import finished"))

    unreadable = [
        (from_db_path(path), error)
        for path, error in store.execute(
            "SELECT path, error FROM images WHERE status = 'unreadable' ORDER BY path"
        )
    ]
    return ImportReport(
        image_root=str(root),
        layout=layout,
        found=len(found),
        added=counts["added"],
        renamed=counts["renamed"],
        updated=counts["updated"],
        unchanged=len(found) - len(to_read),
        missing=len(vanished),
        skipped_files=scan.skipped,
        unreadable=unreadable,
        table_problems=table.problems if table else [],
        labels_kept=labels_kept,
        counts=store.label_split_counts(),
        seconds=time.monotonic() - started,
    )


def _needs_reading(root: Path, path: str, known: tuple[int, int, int, str] | None) -> bool:
    """New, changed, or not readable last time: read it. Unchanged: trust the store."""
    if known is None:
        return True
    _, size, mtime, status = known
    if status != "ok":
        return True
    try:
        info = (root / path).stat()
    except OSError:
        return True
    return (info.st_size, info.st_mtime_ns) != (size, mtime)


def _save_batch(
    store: ProjectStore,
    facts: list[FileFacts],
    found: dict[str, FoundImage],
    existing: dict[str, tuple[int, int, int, str]],
    vanished: dict[int, str],
    counts: dict[str, int],
) -> None:
    """Insert or update one batch of read files in one transaction."""
    now = utc_now()
    with store.transaction():
        for fact in facts:
            info = fact.info
            values = (
                fact.content_hash, fact.byte_size, fact.mtime_ns,
                info.width if info else None, info.height if info else None,
                info.channels if info else None, info.bit_depth if info else None,
                info.format if info else None, "ok" if info else "unreadable", fact.error,
            )  # fmt: skip
            known = existing.get(fact.path)
            if known is None and fact.content_hash and vanished:
                known_id = _take_renamed(store, fact.content_hash, vanished)
                if known_id is not None:
                    store.execute(
                        "UPDATE images SET path = ? WHERE id = ?",
                        (to_db_path(fact.path), known_id),
                    )
                    known = (known_id, 0, 0, "")
                    counts["renamed"] += 1
            if known is None:
                image = found[fact.path]
                store.execute(
                    "INSERT INTO images (content_hash, byte_size, mtime_ns, width, height, "
                    "channels, bit_depth, format, status, error, path, split, split_source, "
                    "added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (*values, to_db_path(fact.path), image.split,
                     "folder" if image.split else None, now),
                )  # fmt: skip
                counts["added"] += 1
            else:
                store.execute(
                    "UPDATE images SET content_hash = ?, byte_size = ?, mtime_ns = ?, width = ?, "
                    "height = ?, channels = ?, bit_depth = ?, format = ?, status = ?, error = ? "
                    "WHERE id = ?",
                    (*values, known[0]),
                )
                counts["updated"] += fact.path in existing


def _take_renamed(store: ProjectStore, digest: str, vanished: dict[int, str]) -> int | None:
    """The id of a vanished image with this content (a moved or renamed file), if any."""
    rows = store.execute("SELECT id FROM images WHERE content_hash = ? ORDER BY id", (digest,))
    for (image_id,) in rows.fetchall():
        if vanished.pop(image_id, None) is not None:
            return int(image_id)
    return None


def _apply_labels(
    store: ProjectStore, found: dict[str, FoundImage], rows: dict[str, CsvLabel], table: Path | None
) -> int:
    """Label images that never had a label, from the table or else their folder.

    A label the project already has (set at an earlier import or by the user)
    is never overwritten; returns how many table labels disagreed with one.
    """
    never_labelled = {
        from_db_path(path): image_id
        for image_id, path in store.execute(
            "SELECT id, path FROM images WHERE label_id IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM label_history h WHERE h.image_id = images.id)"
        )
    }
    labels: dict[int, str | None] = {}
    for path, image_id in never_labelled.items():
        row = rows.get(path)
        label = row.label if row and row.label else found[path].label if path in found else None
        if label:
            labels[image_id] = label
    kept = 0
    for path, row in rows.items():
        if row.label and path not in never_labelled:
            current = store.image_by_path(path).label
            kept += current is not None and current != row.label
    source = f"labels from {table.name}" if table else "labels from class folders"
    store.apply_labels(labels, source="import", description=f"import: {source}")
    return kept


def _apply_groups(
    store: ProjectStore, rows: dict[str, CsvLabel], group_regex: re.Pattern[str] | None
) -> None:
    """Set each image's group from the table, else from the file-name pattern."""
    if not rows and group_regex is None:
        return
    updates: list[tuple[str | None, int]] = []
    for image_id, path, group in store.execute("SELECT id, path, group_id FROM images").fetchall():
        path = from_db_path(path)
        row = rows.get(path)
        new = row.group if row and row.group else _group_of(path, group_regex)
        if new is not None and new != group:
            updates.append((new, image_id))
    for new, image_id in updates:
        store.execute("UPDATE images SET group_id = ? WHERE id = ?", (new, image_id))


def _group_of(path: str, pattern: re.Pattern[str] | None) -> str | None:
    return group_from_path(path, pattern) if pattern is not None else None


def _apply_splits(
    store: ProjectStore,
    found: dict[str, FoundImage],
    rows: dict[str, CsvLabel],
    options: ImportOptions,
) -> None:
    """Give every readable image without a split one; splits already set stay."""
    items: list[SplitItem] = []
    sources: dict[int, str] = {}
    for image_id, path, label, group, digest, split in store.execute(
        "SELECT images.id, path, classes.name, group_id, content_hash, split FROM images "
        "LEFT JOIN classes ON classes.id = images.label_id WHERE status = 'ok'"
    ).fetchall():
        path = from_db_path(path)
        row = rows.get(path)
        table_split = _canonical_split(row.split) if row else None
        if split is None and table_split:
            split, sources[image_id] = table_split, "csv"
        key = f"group:{group}" if group else f"content:{digest}"
        items.append(SplitItem(image_id, label, key, split))
    assigned = assign_splits(items, options.fractions, options.seed)
    current = {item.image_id: item.fixed for item in items}
    changed = {i: s for i, s in assigned.items() if s != current[i] or i in sources}
    for image_id, split in changed.items():
        source = sources.get(image_id, "random")
        store.execute(
            "UPDATE images SET split = ?, split_source = ? WHERE id = ?", (split, source, image_id)
        )


def _canonical_split(value: str | None) -> str | None:
    return SPLIT_FOLDER_NAMES.get((value or "").strip().lower())
