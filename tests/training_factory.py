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


def trained_shapes_project(
    tmp_path: Path, per_class: dict[str, int], config: TrainConfig = SEED_CNN
) -> tuple[ProjectStore, ModelVersion]:
    """`make_shapes_project`, trained with ``config`` (default: one epoch of seed-cnn)."""
    from linnaeus.engine.training.train import train

    store = make_shapes_project(tmp_path, per_class)
    return store, train(store, config).version
