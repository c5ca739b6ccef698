"""Importing a folder of images into a project, and re-importing it later.

Import reads every image once (to hash it and to prove it decodes), records
unreadable files with their reason and carries on, takes labels from class
folders or a label table, and assigns fixed train/validation/test splits.
Re-import adds new files, marks vanished ones as missing and recognises moved
or renamed files by their content, so they keep their labels and splits.
Nothing under the image root is ever written.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from linnaeus.engine.dataset.duplicates import cached_features
from linnaeus.engine.dataset.duplicates import split_keys
from linnaeus.engine.dataset.labels_csv import CsvLabel
from linnaeus.engine.dataset.labels_csv import TableProblem
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
from linnaeus.engine.disk_space import check_free_space
from linnaeus.engine.disk_space import disk_full_as_error
from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.errors import ImportSourceError
from linnaeus.engine.images.imageio import DEFAULT_MAX_PIXELS
from linnaeus.engine.images.imageio import ImageInfo
from linnaeus.engine.images.imageio import content_hash
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.perceptual_hash import perceptual_hashes
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project import image_files
from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project.database import DATABASE_NAME
from linnaeus.engine.project.database import utc_now
from linnaeus.engine.project.image_files import FileRecord
from linnaeus.engine.project.image_files import KnownFile
from linnaeus.engine.project.store import ProjectStore

log = logging.getLogger(__name__)
_BATCH = 256
_IMPORTING = "import_in_progress"  # meta key: set while an import runs, cleared at its end
# Disk space an import needs per new image (measured on 5,000 images: 340
# bytes of rows, indexes and label history in the database, and up to 740 in
# its write-ahead log, which stops growing at SQLite's automatic checkpoint of
# 1,000 pages).
_BYTES_PER_IMAGE = 400
_LOG_BYTES_PER_IMAGE = 800
_LOG_LIMIT = 4_200_000


@dataclass(frozen=True)
class FileFacts:
    """What reading one file taught us."""

    path: str
    content_hash: str | None
    byte_size: int | None
    mtime_ns: int | None
    info: ImageInfo | None
    error: str | None
    perceptual_hashes: bytes | None = None

    def record(self) -> FileRecord:
        """The facts as the project stores them."""
        info = self.info
        return FileRecord(
            self.content_hash, self.byte_size, self.mtime_ns,
            info.width if info else None, info.height if info else None,
            info.channels if info else None, info.bit_depth if info else None,
            info.format if info else None, "ok" if info else "unreadable", self.error,
            self.perceptual_hashes,
        )  # fmt: skip


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
class InterruptedImport:
    """An import that stopped before it finished: some images are in, labels and
    splits may be missing."""

    project_dir: Path
    imported: int  # images the project holds now
    found: int  # images the folder held when the import started

    @property
    def message(self) -> str:
        return (
            f"The last import was interrupted ({self.imported:,} of {self.found:,} images); "
            f"run `linnaeus import --project {self.project_dir}` again to finish it."
        )


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
    table_problems: list[TableProblem]  # label-table rows not taken as written, with why
    labels_kept: int  # table labels that disagreed with a label the project already had
    counts: dict[str, dict[str, int]]
    seconds: float


def inspect_file(root: Path, relative: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> FileFacts:
    """Read, hash and decode one file, and take its perceptual hashes; never raises
    for a bad file."""
    full = root / relative
    try:
        status = full.stat()
        data = full.read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        return FileFacts(relative, None, None, None, None, f"cannot read file: {reason}")
    digest = content_hash(data)
    try:
        decoded = read_image(full, data=data, max_pixels=max_pixels)
    except ImageReadError as error:
        return FileFacts(relative, digest, len(data), status.st_mtime_ns, None, str(error))
    except MemoryError:
        message = "not enough memory to decode this image"
        return FileFacts(relative, digest, len(data), status.st_mtime_ns, None, message)
    fingerprint = perceptual_hashes(decoded.pixels)
    return FileFacts(
        relative, digest, len(data), status.st_mtime_ns, decoded.info, None, fingerprint
    )


@project_lock.holding_lock("importing images")
def import_images(
    store: ProjectStore,
    options: ImportOptions = ImportOptions(),
    *,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> ImportReport:
    """(Re-)import the project's image root into ``store``, holding the project's lock."""
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

    known = image_files.known_files(store)
    to_read = [path for path in found if _needs_reading(root, path, known.get(path))]
    vanished = {file.image_id: path for path, file in known.items() if path not in found}
    needed = bytes_needed(store, sum(path not in known for path in to_read))
    check_free_space(store.project_dir, needed)
    store.set_meta(_IMPORTING, json.dumps({"found": len(found), "started_at": utc_now()}))
    with disk_full_as_error(store.project_dir, needed):
        counts = _read_files(store, to_read, found, known, vanished, options, on_progress, cancel)

    on_progress(Progress("save", 0, 1, "Saving labels and splits"))
    with disk_full_as_error(store.project_dir, needed), store.transaction():
        image_files.mark_missing(store, vanished)
        if options.group_regex:
            store.set_meta("group_regex", options.group_regex)
        rows = table.rows if table else {}
        labels_kept = _apply_labels(store, found, rows, labels_csv)
        _apply_groups(store, rows, group_regex)
        _apply_splits(store, rows, options)
        store.delete_meta(_IMPORTING)
    on_progress(Progress("save", 1, 1, "Import finished"))

    unreadable = [(image.path, image.error or "") for image in store.images(status="unreadable")]
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


def bytes_needed(store: ProjectStore, new_images: int) -> int:
    """About how many bytes importing ``new_images`` more images adds to the project:
    their rows and label history, and the database's write-ahead log."""
    log_file = store.project_dir / f"{DATABASE_NAME}-wal"
    log_size = log_file.stat().st_size if log_file.exists() else 0
    log_room = max(min(_LOG_BYTES_PER_IMAGE * new_images, _LOG_LIMIT) - log_size, 0)
    return _BYTES_PER_IMAGE * new_images + log_room


def interrupted_import(store: ProjectStore) -> InterruptedImport | None:
    """The import that started last and never finished (disk full, cancelled,
    killed), if there is one; the next import finishes it."""
    started = store.meta(_IMPORTING)
    if not started:
        return None
    found = int(json.loads(started).get("found", 0))
    return InterruptedImport(store.project_dir, min(store.image_count(), found), found)


def _read_files(
    store: ProjectStore,
    to_read: list[str],
    found: dict[str, FoundImage],
    known: dict[str, KnownFile],
    vanished: dict[int, str],
    options: ImportOptions,
    on_progress: ProgressCallback,
    cancel: CancelToken | None,
) -> dict[str, int]:
    """Read, hash and decode these files in parallel and save what was found, one
    transaction per batch; returns how many images were added, renamed, updated."""
    root = store.image_root
    counts = {"added": 0, "renamed": 0, "updated": 0}
    workers = options.workers or min(8, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import") as pool:
        for start in range(0, len(to_read), _BATCH):
            check_cancelled(cancel)
            batch = to_read[start : start + _BATCH]
            facts = list(pool.map(lambda p: inspect_file(root, p, options.max_pixels), batch))
            _save_batch(store, facts, found, known, vanished, counts)
            done = start + len(batch)
            on_progress(Progress("read", done, len(to_read), f"Read {done} of {len(to_read)}"))
    return counts


def _needs_reading(root: Path, path: str, known: KnownFile | None) -> bool:
    """New, changed, or not readable last time: read it. Unchanged: trust the store."""
    if known is None or known.status != "ok":
        return True
    try:
        info = (root / path).stat()
    except OSError:
        return True
    return (info.st_size, info.st_mtime_ns) != (known.byte_size, known.mtime_ns)


def _save_batch(
    store: ProjectStore,
    facts: list[FileFacts],
    found: dict[str, FoundImage],
    known: dict[str, KnownFile],
    vanished: dict[int, str],
    counts: dict[str, int],
) -> None:
    """Insert or update one batch of read files in one transaction."""
    with store.transaction():
        for fact in facts:
            image_id = known[fact.path].image_id if fact.path in known else None
            if image_id is None and fact.content_hash and vanished:
                image_id = _take_renamed(store, fact.content_hash, vanished)
                if image_id is not None:
                    image_files.move_file(store, image_id, fact.path)
                    counts["renamed"] += 1
            if image_id is None:
                image_files.add_file(store, fact.path, fact.record(), found[fact.path].split)
                counts["added"] += 1
            else:
                image_files.update_file(store, image_id, fact.record())
                counts["updated"] += fact.path in known


def _take_renamed(store: ProjectStore, digest: str, vanished: dict[int, str]) -> int | None:
    """The id of a vanished image with this content (a moved or renamed file), if any."""
    for image_id in image_files.ids_with_content(store, digest):
        if vanished.pop(image_id, None) is not None:
            return image_id
    return None


def _apply_labels(
    store: ProjectStore, found: dict[str, FoundImage], rows: dict[str, CsvLabel], table: Path | None
) -> int:
    """Label images that never had a label, from the table or else their folder.

    A label the project already has (set at an earlier import or by the user)
    is never overwritten; returns how many table labels disagreed with one.
    """
    never_labelled = image_files.never_labelled(store)
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
    groups: dict[int, str] = {}
    for image in store.images():
        row = rows.get(image.path)
        if row and row.group:
            new = row.group
        else:
            new = group_from_path(image.path, group_regex) if group_regex is not None else None
        if new is not None and new != image.group_id:
            groups[image.id] = new
    image_files.set_groups(store, groups)


def _apply_splits(store: ProjectStore, rows: dict[str, CsvLabel], options: ImportOptions) -> None:
    """Give every readable image without a split one; splits already set stay.
    Images of one patient group, and duplicates, go to one split together."""
    items: list[SplitItem] = []
    sources: dict[int, str] = {}
    images = image_files.hashed_images(store)
    features, _ = cached_features(store, [image.content_hash for image in images])
    for image, key in zip(images, split_keys(images, features), strict=True):
        row = rows.get(image.path)
        table_split = _canonical_split(row.split) if row else None
        split = image.split
        if split is None and table_split:
            split, sources[image.image_id] = table_split, "csv"
        items.append(SplitItem(image.image_id, image.label, key, split))
    assigned = assign_splits(items, options.fractions, options.seed)
    current = {item.image_id: item.fixed for item in items}
    changed = {i: s for i, s in assigned.items() if s != current[i] or i in sources}
    for source in ("csv", "random"):
        chosen = {i: s for i, s in changed.items() if sources.get(i, "random") == source}
        store.set_splits(chosen, source)


def _canonical_split(value: str | None) -> str | None:
    return SPLIT_FOLDER_NAMES.get((value or "").strip().lower())
