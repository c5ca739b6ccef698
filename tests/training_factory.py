"""Small learnable image sets and projects for training tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.engine.training.config import TrainConfig

SEED_CNN = TrainConfig(
    model="seed-cnn", epochs=1, image_size=32, batch_size=16, augmentation=PRESETS["none"]
)


def draw_shape(kind: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A bright disk or square at a random place on dark noise."""
    image = rng.integers(0, 70, (size, size, 3), dtype=np.uint8)
    cx, cy = (int(v) for v in rng.integers(size // 3, 2 * size // 3, 2))
    radius = int(rng.integers(size // 6, size // 4))
    colour = tuple(int(c) for c in rng.integers(150, 255, 3))
    if kind == "disk":
        cv2.circle(image, (cx, cy), radius, colour, -1)
    else:
        cv2.rectangle(image, (cx - radius, cy - radius), (cx + radius, cy + radius), colour, 2)
    return image


def make_shapes_project(
    tmp_path: Path, per_class: dict[str, int] | None = None, seed: int = 0
) -> ProjectStore:
    """A project of ``disk`` and ``square`` images (default 40 each), imported."""
    per_class = per_class or {"disk": 40, "square": 40}
    rng = np.random.default_rng(seed)
    root = tmp_path / "images"
    for kind, count in per_class.items():
        (root / kind).mkdir(parents=True)
        for i in range(count):
            pixels = draw_shape(kind, rng)
            cv2.imwrite(str(root / kind / f"{kind}_{i:03}.png"), pixels[..., ::-1])
    store = ProjectStore.create(tmp_path / "project", root)
    import_images(store)
    return store


def make_structures_project(tmp_path: Path, classes: int, size: int = 48) -> ProjectStore:
    """A project of ``classes`` classes of ONE image each (`draw_structure`), imported:
    every image lands in the training split, as with seed 000's drawings."""
    root = tmp_path / "images"
    for index in range(classes):
        name = f"structure_{index:02}"
        (root / name).mkdir(parents=True)
        cv2.imwrite(str(root / name / f"{name}.png"), draw_structure(index, size))
    store = ProjectStore.create(tmp_path / "project", root)
    import_images(store)
    return store


def trained_shapes_project(
    tmp_path: Path, per_class: dict[str, int], config: TrainConfig = SEED_CNN
) -> tuple[ProjectStore, ModelVersion]:
    """`make_shapes_project`, trained with ``config`` (default: one epoch of seed-cnn)."""
    from linnaeus.engine.training.train import train

    store = make_shapes_project(tmp_path, per_class)
    return store, train(store, config).version


_ATOMS = ("O", "N", "S", "F", "Cl", "Br")


def draw_structure(index: int, size: int = 96) -> np.ndarray:
    """A drawing like a skeletal chemical formula, one per ``index``: a random
    branched chain of bonds at multiples of 60 degrees, some double, a ring or two
    and a few atom letters, in black on white (seed 000's kind of image)."""
    rng = np.random.default_rng([index, 17])
    directions = [(np.cos(a), np.sin(a)) for a in np.deg2rad(np.arange(0, 360, 60) + 30)]
    atoms = [(0.0, 0.0)]
    bonds: list[tuple[int, int, bool]] = []
    for _ in range(int(rng.integers(5, 12))):
        start = int(rng.integers(len(atoms)))
        dx, dy = directions[int(rng.integers(6))]
        end = (round(atoms[start][0] + dx, 3), round(atoms[start][1] + dy, 3))
        if end not in atoms:
            atoms.append(end)
            bonds.append((start, len(atoms) - 1, bool(rng.random() < 0.25)))
    rings = [atoms[int(rng.integers(len(atoms)))] for _ in range(int(rng.integers(0, 3)))]
    points = np.array(atoms + [(x + dx, y + dy) for x, y in rings for dx, dy in directions])
    low, high = points.min(axis=0), points.max(axis=0)
    scale = 0.75 * size / max(float((high - low).max()), 1.0)
    offset = size / 2 - scale * (low + high) / 2

    def at(point: tuple[float, float]) -> tuple[int, int]:
        return tuple(int(v) for v in np.round(np.asarray(point) * scale + offset))

    image = np.full((size, size, 3), 255, np.uint8)
    for start, end, double in bonds:
        cv2.line(image, at(atoms[start]), at(atoms[end]), (0, 0, 0), 2, cv2.LINE_AA)
        if double:
            shift = np.array([atoms[end][1] - atoms[start][1], atoms[start][0] - atoms[end][0]])
            a, b = (np.asarray(atoms[i]) + 0.15 * shift for i in (start, end))
            cv2.line(image, at(a), at(b), (0, 0, 0), 1, cv2.LINE_AA)
    for x, y in rings:
        corners = np.array([at((x + dx, y + dy)) for dx, dy in directions], np.int32)
        cv2.polylines(image, [corners], True, (0, 0, 0), 2, cv2.LINE_AA)
    for i in rng.choice(len(atoms), size=int(rng.integers(0, 3)), replace=False):
        label = _ATOMS[int(rng.integers(len(_ATOMS)))]
        x, y = at(atoms[int(i)])
        cv2.rectangle(image, (x - 6, y - 7), (x + 6 * len(label), y + 7), (255, 255, 255), -1)
        cv2.putText(image, label, (x - 5, y + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    return image
