"""Exporting labels: a CSV table, or a folder-per-class tree of copies.

Copies only: the user's image files are never moved or changed. Class names
become folder names only after `safe_folder_name`, so a class called ``../x``
or ``CON`` cannot escape or break the output folder.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from linnaeus.engine.dataset.labels_csv import write_label_csv
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project.database import display_path
from linnaeus.engine.project.store import ProjectStore

# Names Windows reserves for devices, with or without an extension.
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{n}" for p in ("COM", "LPT") for n in range(1, 10)}
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


def safe_folder_name(name: str) -> str:
    """A folder name for ``name`` that is valid on Windows, macOS and Linux and
    stays inside its parent folder."""
    text = unicodedata.normalize("NFC", name)
    text = _UNSAFE.sub("_", text).strip().rstrip(". ")
    text = text.lstrip(".") or "_"
    if text.split(".")[0].upper() in _RESERVED:
        text = f"_{text}"
    return text[:120]


def unique_folder_names(names: list[str]) -> dict[str, str]:
    """Map each class name to a distinct safe folder name (case-insensitively distinct)."""
    result: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = safe_folder_name(name)
        candidate, n = base, 2
        while candidate.lower() in used:
            candidate, n = f"{base}_{n}", n + 1
        used.add(candidate.lower())
        result[name] = candidate
    return result


@dataclass(frozen=True)
class ExportReport:
    destination: str
    written: int
    skipped: list[tuple[str, str]]  # (image path, reason)


def export_csv(store: ProjectStore, destination: Path) -> ExportReport:
    """Write every image's path, label, group and split to a CSV file (never one
    inside the image folder)."""
    if destination.absolute().resolve().is_relative_to(store.image_root.resolve()):
        raise ProjectError("Choose a place for the CSV file outside the image folder.")
    images = store.images()
    rows = [(i.path, i.label or "", i.group_id or "", i.split or "") for i in images]
    try:
        write_label_csv(destination, rows)
    except OSError as error:
        raise ProjectError(f"Cannot write {destination}: {error.strerror or error}") from None
    return ExportReport(str(destination), len(rows), [])


def export_tree(
    store: ProjectStore,
    destination: Path,
    *,
    by_split: bool = False,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> ExportReport:
    """Copy every labelled, readable image into ``destination/<class>/`` (or
    ``destination/<split>/<class>/``). The destination must be new or empty."""
    root = store.image_root.resolve()
    destination = destination.absolute()
    if destination.resolve().is_relative_to(root):
        raise ProjectError("Choose an output folder outside the image folder.")
    if destination.exists() and any(destination.iterdir()):
        raise ProjectError(f"The output folder {destination} is not empty; choose a new one.")
    folders = unique_folder_names([c.name for c in store.classes()])
    images = [i for i in store.images(status="ok") if i.label]
    skipped: list[tuple[str, str]] = []
    written = 0
    for done, image in enumerate(images, start=1):
        check_cancelled(cancel)
        folder = destination / (image.split or "unsplit") if by_split else destination
        target_dir = folder / folders[image.label]  # type: ignore[index]
        target = target_dir / flat_file_name(image.path)
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / image.path, _free_name(target))
            written += 1
        except OSError as error:
            if error.errno == 28:  # ENOSPC
                raise ProjectError(
                    f"The disk is full after copying {written} images to {destination}."
                ) from None
            skipped.append((display_path(image.path), error.strerror or str(error)))
        on_progress(Progress("export", done, len(images)))
    return ExportReport(str(destination), written, skipped)


def flat_file_name(relative: str) -> str:
    """The file name of a copy: the base name, sanitised (sub-folders are dropped)."""
    stem, dot, suffix = relative.rsplit("/", 1)[-1].rpartition(".")
    return safe_folder_name(stem or suffix) + (f".{suffix}" if stem and dot else "")


def _free_name(target: Path) -> Path:
    """``target``, or ``name_2.ext``... if two images share a file name."""
    candidate, n = target, 2
    while candidate.exists():
        candidate = target.with_name(f"{target.stem}_{n}{target.suffix}")
        n += 1
    return candidate


__all__ = ["ExportReport", "export_csv", "export_tree", "safe_folder_name", "unique_folder_names"]
