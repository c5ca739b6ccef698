"""Finding the images under a folder and what their place says about them.

Recognised layouts (the user never has to say which):
- class sub-folders: ``root/<class>/...`` (Keras' image_dataset_from_directory);
- split folders: ``root/train|val|test/<class>/...``, also inside one wrapper
  folder such as Kermany's ``chest_xray/``;
- flat: images directly in ``root``, unlabelled;
- any of these plus a CSV of labels (`engine.labels_csv`).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from linnaeus.engine.errors import ImportSourceError
from linnaeus.engine.images.imageio import is_image_candidate

log = logging.getLogger(__name__)

SPLIT_FOLDER_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
IGNORED_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class FoundImage:
    """An image file found under the root, with what its folders say."""

    path: str  # relative to the root, '/' separators
    label: str | None
    split: str | None


@dataclass(frozen=True)
class ScanResult:
    """Everything found under a root folder."""

    images: list[FoundImage]
    skipped: int  # files that are not images (by name and content)
    layout: str  # plain-language description of the layout detected


def walk_files(root: Path) -> Iterator[str]:
    """Yield every file under ``root`` as a relative '/' path, sorted, following
    folder links once (a link loop is visited only once) and skipping hidden files."""
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        try:
            info = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (info.st_dev, info.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in IGNORED_NAMES)
        relative_folder = os.path.relpath(folder, root)
        for name in sorted(files):
            if name.startswith(".") or name in IGNORED_NAMES:
                continue
            relative = name if relative_folder == "." else os.path.join(relative_folder, name)
            yield relative.replace(os.sep, "/")


def scan_folder(root: Path) -> ScanResult:
    """List the image files under ``root`` with the labels and splits their folders give."""
    if not root.is_dir():
        raise ImportSourceError(f"{root} is not a folder (or cannot be opened).")
    candidates: list[str] = []
    skipped = 0
    for relative in walk_files(root):
        if is_image_candidate(root / relative):
            candidates.append(relative)
        else:
            skipped += 1
    parts = [relative.split("/") for relative in candidates]
    wrapper = _wrapper_depth(parts)
    images = [
        _interpret(relative, p[wrapper:]) for relative, p in zip(candidates, parts, strict=True)
    ]
    return ScanResult(images, skipped, describe_layout(images))


def _wrapper_depth(parts: list[list[str]]) -> int:
    """How many leading folders all images share before a split folder (0 if none)."""
    depth = 0
    while parts and all(len(p) > depth + 1 for p in parts):
        if any(p[depth].lower() in SPLIT_FOLDER_NAMES for p in parts):
            return depth
        if len({p[depth] for p in parts}) != 1:
            return 0
        depth += 1
    return 0


def _interpret(relative: str, parts: list[str]) -> FoundImage:
    if len(parts) == 1:
        return FoundImage(relative, None, None)
    split = SPLIT_FOLDER_NAMES.get(parts[0].lower())
    if split is None:
        return FoundImage(relative, name_from_path(parts[0]), None)
    label = name_from_path(parts[1]) if len(parts) >= 3 else None
    return FoundImage(relative, label, split)


def name_from_path(part: str) -> str:
    """A class or group name taken from a file path, as text the project can store:
    a byte that is not UTF-8 (a folder named on an older system) is read as the
    Latin-1 character it is, so a folder named ``caf\\xe9`` gives the class "café"."""
    return "".join(chr(ord(c) - 0xDC00) if "\udc80" <= c <= "\udcff" else c for c in part)


def describe_layout(images: list[FoundImage]) -> str:
    """A sentence a user understands: what the folders were taken to mean."""
    if not images:
        return "no images found"
    splits = sorted({i.split for i in images if i.split}, key=["train", "val", "test"].index)
    labelled = Counter(i.label is not None for i in images)
    classes = len({i.label for i in images if i.label})
    if splits:
        text = f"split folders ({'/'.join(splits)}) with {_plural(classes, 'class sub-folder')}"
    elif labelled[True]:
        text = _plural(classes, "class sub-folder")
    else:
        text = "one flat folder of unlabelled images"
    if labelled[True] and labelled[False]:
        text += f", plus {_plural(labelled[False], 'unlabelled image')} outside class folders"
    return text


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
