"""Stored predictions of a model version.

Training predicts every readable image once (labelled or not) and stores the
class probabilities here, so the grid, the evaluation, the relabel queue and
the report need neither TensorFlow nor a second pass over the images. A version
validated on augmented views of its training images (classes too small for a
validation split: `linnaeus.engine.training.augmented_views`) keeps the views'
predictions in a file of its folder; they are its validation split.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linnaeus.engine.atomic import atomic_write_bytes
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion


def save_predictions(
    store: ProjectStore, version_id: int, image_ids: Sequence[int], probabilities: np.ndarray
) -> None:
    """Replace the stored predictions of ``version_id`` for these images."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    rows = [
        (version_id, int(i), int(p.argmax()), float(p.max()), p.tobytes())
        for i, p in zip(image_ids, probabilities, strict=True)
    ]
    with store.transaction():
        store.execute_many(
            "INSERT OR REPLACE INTO predictions (model_id, image_id, predicted, confidence, "
            "probabilities) VALUES (?, ?, ?, ?, ?)",
            rows,
        )


def load_predictions(store: ProjectStore, version_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(image ids, probabilities N x K) of a version, ordered by image id."""
    rows = store.execute(
        "SELECT image_id, probabilities FROM predictions WHERE model_id = ? ORDER BY image_id",
        (version_id,),
    ).fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    if not rows:
        return ids, np.zeros((0, 0), np.float32)
    return ids, np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])


@dataclass(frozen=True)
class SplitPredictions:
    """A split's labelled images (as the version was trained on them) and their predictions."""

    image_ids: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray


def split_predictions(store: ProjectStore, version: ModelVersion, split: str) -> SplitPredictions:
    """The labelled images of ``split`` and their stored predictions; for a version
    validated on augmented views, its "val" split is the views (`view_predictions`)."""
    if split == "val" and (views := view_predictions(version)) is not None:
        return views
    snapshot = versions.label_snapshot(store, version.id)
    ids, probabilities = load_predictions(store, version.id)
    position = {int(i): n for n, i in enumerate(ids)}
    chosen = sorted(i for i, (_, s) in snapshot.items() if s == split and i in position)
    return SplitPredictions(
        np.array(chosen, dtype=np.int64),
        np.array([snapshot[i][0] for i in chosen], dtype=np.int64),
        probabilities[[position[i] for i in chosen]] if chosen else np.zeros((0, 0)),
    )


VIEWS_FILE = "augmented_views.npz"  # in the version's folder
OUT_OF_FOLD_FILE = "out_of_fold.npz"  # in the version's folder


def save_view_predictions(
    version: ModelVersion, image_ids: np.ndarray, labels: np.ndarray, probabilities: np.ndarray
) -> None:
    """Keep the predictions of the augmented views ``version`` was validated on (each
    view named by the id of the image it was drawn from, with that image's class)."""
    _save(version.folder / VIEWS_FILE, image_ids, labels, probabilities)


def view_predictions(version: ModelVersion) -> SplitPredictions | None:
    """The augmented views ``version`` was validated on, or None if it had a validation split."""
    return _load(version.folder / VIEWS_FILE)


def save_out_of_fold_predictions(
    version: ModelVersion, image_ids: np.ndarray, labels: np.ndarray, probabilities: np.ndarray
) -> None:
    """Keep the held-out predictions of ``version``'s labelled images (each from a
    head fitted on the other folds), with the labels they were judged against."""
    _save(version.folder / OUT_OF_FOLD_FILE, image_ids, labels, probabilities)


def out_of_fold_predictions(version: ModelVersion) -> SplitPredictions | None:
    """The held-out predictions kept with ``version``, or None if it has none."""
    return _load(version.folder / OUT_OF_FOLD_FILE)


def _save(path: Path, image_ids: np.ndarray, labels: np.ndarray, probabilities: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        image_ids=np.asarray(image_ids, np.int64),
        labels=np.asarray(labels, np.int64),
        probabilities=np.asarray(probabilities, np.float32),
    )
    atomic_write_bytes(path, buffer.getvalue())


def _load(path: Path) -> SplitPredictions | None:
    if not path.is_file():
        return None
    with np.load(path) as saved:
        return SplitPredictions(saved["image_ids"], saved["labels"], saved["probabilities"])
