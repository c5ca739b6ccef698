"""The benchmark sets: ../shared/data laid out as folders Linnaeus imports, and
one-image-per-class drawings.

Each set becomes a tree of links to the original files (nothing is copied or
changed): ``<class>/...`` when Linnaeus should draw the split itself (grouped by
patient where the set says which), ``train|test/<class>/...`` when the set comes
with its own test images. The test images never take part in training or in
choosing anything: Linnaeus carves validation out of the training images only,
and the peer recipe is given the same train / validation / test images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from linnaeus.engine.dataset.layout import scan_folder
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.augment import augment_image

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
UNSEEN_SEED = 3  # neither training's nor the validation views' random numbers


@dataclass(frozen=True)
class BenchSet:
    """Where a set's images are, how Linnaeus should split them, and what the
    figures mean (its positive class, for the recall of a two-class set)."""

    name: str
    source: str  # a folder under ../shared/data, or "drawn"
    pool: bool  # join the set's own train and test folders and split them anew
    group_regex: str | None  # the patient / specimen id in the file names
    positive: str | None
    note: str


SETS = {
    "malaria": BenchSet(
        "malaria", "malaria", False, None, "Parasitized",
        "own train/test folders (they share patients)",
    ),
    "malaria-patients": BenchSet(
        "malaria-patients", "malaria", True, r"(P\d+|C\d+N)", "Parasitized",
        "train+test pooled, split by patient: unseen patients in test",
    ),
    "wbc": BenchSet(
        "wbc", "wbc", False, None, None,
        "train = augmented copies, test = 71 originals",
    ),
    "potato": BenchSet("potato", "potato", False, None, None, "random 70/15/15 split"),
    "brain_mri": BenchSet("brain_mri", "brain_mri", False, None, "yes", "random 70/15/15 split"),
    "one-image": BenchSet(
        "one-image", "drawn", False, None, None,
        "one drawing per class; test = unseen augmented views",
    ),
}  # fmt: skip


def lay_out(bench: BenchSet, root: Path, per_class: int | None, classes: int, seed: int) -> Path:
    """The set as a folder of links under ``root``, at most ``per_class`` images of
    each class in each of its folders (a seeded draw); returns the folder."""
    images = root / "images"
    if bench.source == "drawn":
        draw_structures(images / "train", images / "test", classes)
        return images
    rng = np.random.default_rng(seed)
    found = scan_folder(SHARED_DATA / bench.source).images
    by_folder: dict[tuple[str | None, str], list[str]] = {}
    for image in found:
        if image.label is not None:
            split = None if bench.pool else image.split
            by_folder.setdefault((split, image.label), []).append(image.path)
    for (split, label), paths in sorted(by_folder.items(), key=str):
        chosen = sorted(paths)
        if per_class is not None and len(chosen) > per_class:
            chosen = sorted(rng.choice(chosen, per_class, replace=False))
        folder = images / split / label if split else images / label
        folder.mkdir(parents=True, exist_ok=True)
        for path in chosen:
            (folder / path.replace("/", "__")).symlink_to(SHARED_DATA / bench.source / path)
    return images


def draw_structures(drawings: Path, unseen: Path, classes: int, views: int = 5) -> None:
    """One drawing per class in ``drawings/<class>/``; ``views`` unseen augmented
    views of each (the seed's gentle preset, another seed than training's and the
    validation views') in ``unseen/<class>/``."""
    from tests.training_factory import draw_structure

    for index in range(classes):
        name = f"structure_{index:04}"
        pixels = draw_structure(index)
        (drawings / name).mkdir(parents=True)
        (unseen / name).mkdir(parents=True)
        cv2.imwrite(str(drawings / name / f"{name}.png"), pixels)
        for view in range(views):
            rng = np.random.default_rng([UNSEEN_SEED, index, view])
            variant = augment_image(pixels, PRESETS["gentle"], rng)
            cv2.imwrite(str(unseen / name / f"{name}_view{view}.png"), variant)
