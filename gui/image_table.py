"""A project's images as columns of arrays, and the filters and sorts of the grid.

Pure NumPy, no Qt: the grid's model (`image_model.ImageListModel`) shows the
positions that `select_images` returns. One `ImageTable` holds every image of
the project (100,000 images take a few megabytes), read from the store as
columns (`ProjectStore.image_columns`), and then the active model version's
predictions (read second, so that the grid fills first); filtering and sorting
are vectorised and take milliseconds, where a QSortFilterProxyModel would call Python once per row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import numpy as np

from linnaeus.engine.evaluation.label_next import label_next
from linnaeus.engine.evaluation.version import version_predictions
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project.store import SPLITS
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import active_version

NO_CLASS = -1  # label / predicted class id of an image without one
UNLABELLED = -1  # `ImageFilter.label` value meaning "only unlabelled images"

SORT_KEYS = ("name", "confidence", "loss", "uncertainty", "label_next")


@dataclass(frozen=True)
class ImageFilter:
    """Which images the grid shows, and in which order.

    ``label`` and ``predicted`` are store class ids (``label`` may be
    `UNLABELLED`); ``confidence`` bounds the confidence of the prediction and,
    when narrower than 0..1, leaves out images without one. ``search`` matches
    any part of the path, ignoring case. ``image_ids`` limits the grid to
    images chosen elsewhere (a confusion-matrix cell, a relabel queue).
    Readable images are shown unless ``unreadable`` asks for the unreadable
    and missing files instead.
    """

    label: int | None = None
    split: str | None = None
    predicted: int | None = None
    misclassified: bool = False
    confidence: tuple[float, float] = (0.0, 1.0)
    unreadable: bool = False
    search: str = ""
    image_ids: frozenset[int] | None = None
    image_ids_title: str = ""
    sort: str = "name"
    descending: bool = False

    def __post_init__(self) -> None:
        if self.sort not in SORT_KEYS:
            raise ValueError(f"unknown sort key {self.sort!r}")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}")

    @property
    def limits_confidence(self) -> bool:
        low, high = self.confidence
        return low > 0.0 or high < 1.0

    @property
    def uses_predictions(self) -> bool:
        """Whether the images chosen or their order depend on the model's predictions."""
        return (
            self.predicted is not None
            or self.misclassified
            or self.limits_confidence
            or self.sort != "name"
        )


@dataclass(frozen=True)
class Predictions:
    """The active model version's predictions as its exported model makes them:
    calibrated class probabilities and the class its decision rule picks
    (``predicted``, an index among ``classes``) per image.

    ``class_ids`` maps each of the version's classes to the store class of
    that name (`NO_CLASS` if the class is gone).
    """

    version_name: str
    classes: list[str]
    class_ids: np.ndarray
    image_ids: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    # Unlabelled image ids, the one to label first first (`engine.evaluation.label_next`).
    label_next: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class ImageTable:
    """Every image of a project, one array element per image, ordered by path.

    ``label`` and ``predicted_class`` are store class ids (`NO_CLASS` for none).
    After `attach_predictions`, ``prediction`` is the row of ``probabilities``
    holding the image's prediction by the active version (-1: none),
    ``predicted`` the index among ``version_classes`` of the class the
    version decides for, and ``confidence`` that class's probability.
    """

    ids: np.ndarray
    paths: list[str]
    hashes: list[str | None]
    label: np.ndarray
    split: np.ndarray
    status: np.ndarray
    errors: list[str | None]
    _search_keys: list[str] | None = field(default=None, init=False, repr=False)
    _order: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.version_name: str | None = None
        self.version_classes: list[str] = []
        self.version_class_ids = np.zeros(0, np.int64)
        self.probabilities = np.zeros((0, 0), np.float32)
        self.prediction = np.full(len(self.ids), -1, np.int64)
        self.predicted = np.full(len(self.ids), -1, np.int64)
        self.predicted_class = np.full(len(self.ids), NO_CLASS, np.int64)
        self.confidence = np.full(len(self.ids), np.nan, np.float32)
        self.uncertainty = np.full(len(self.ids), np.nan, np.float32)
        self.label_next_rank = np.full(len(self.ids), np.nan, np.float32)  # 1 = label first

    def attach_predictions(self, predictions: Predictions) -> None:
        """Take the version's predictions in: decided class, its probability, uncertainty."""
        self.version_name = predictions.version_name
        self.version_classes = list(predictions.classes)
        self.version_class_ids = predictions.class_ids
        self.probabilities = predictions.probabilities
        self.label_next_rank = np.full(len(self.ids), np.nan, np.float32)
        ranked = self.positions_of(predictions.label_next)
        self.label_next_rank[ranked[ranked >= 0]] = np.flatnonzero(ranked >= 0) + 1
        positions = self.positions_of(predictions.image_ids)
        known = positions >= 0
        self.prediction = np.full(len(self.ids), -1, np.int64)
        self.prediction[positions[known]] = np.flatnonzero(known)
        has = self.prediction >= 0
        if not has.any():
            return
        rows = self.prediction[has]
        p = self.probabilities[rows]
        self.predicted[has] = predictions.predicted[rows]
        self.confidence[has] = p[np.arange(len(rows)), self.predicted[has]]
        self.uncertainty[has] = _normalised_entropy(p)
        self.predicted_class[has] = self.version_class_ids[self.predicted[has]]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_predictions(self) -> bool:
        return bool((self.prediction >= 0).any())

    def positions_of(self, image_ids: Iterable[int]) -> np.ndarray:
        """Positions of these image ids in the table (-1 for ids it lacks)."""
        wanted = np.fromiter(image_ids, np.int64)
        if len(self.ids) == 0:
            return np.full(len(wanted), -1, np.int64)
        if self._order is None:
            self._order = np.argsort(self.ids, kind="stable")
        sorted_ids = self.ids[self._order]
        at = np.searchsorted(sorted_ids, wanted).clip(0, len(sorted_ids) - 1)
        return np.where(sorted_ids[at] == wanted, self._order[at], -1)

    def search_keys(self) -> list[str]:
        if self._search_keys is None:
            self._search_keys = [path.lower() for path in self.paths]
        return self._search_keys

    def disagrees(self) -> np.ndarray:
        """Labelled images whose predicted class is not their label."""
        return (
            (self.label != NO_CLASS) & (self.prediction >= 0) & (self.label != self.predicted_class)
        )

    def loss(self) -> np.ndarray:
        """Cross-entropy of each image's current label under its prediction (NaN if
        unlabelled, unpredicted, or labelled with a class the version did not know)."""
        loss = np.full(len(self.ids), np.nan, np.float32)
        known = self.version_class_ids != NO_CLASS
        if not known.any() or len(self.ids) == 0:
            return loss
        # store class id -> index among the version's classes (-1: not one of them)
        size = max(int(self.version_class_ids.max()), int(self.label.max()), 0) + 1
        index_of = np.full(size + 1, -1, np.int64)  # the last slot answers NO_CLASS (-1)
        index_of[self.version_class_ids[known]] = np.flatnonzero(known)
        label_index = index_of[self.label]
        usable = (label_index >= 0) & (self.prediction >= 0)
        p = self.probabilities[self.prediction[usable], label_index[usable]].astype(np.float64)
        loss[usable] = -np.log(np.clip(p, np.finfo(np.float64).eps, 1.0))
        return loss

    def class_counts(self) -> dict[int, int]:
        """Readable images per label (class id, or `NO_CLASS` for unlabelled)."""
        labels = self.label[self.status == 0]
        if len(labels) == 0:
            return {}
        counts = np.bincount(labels - NO_CLASS)  # class ids are small positive integers
        return {int(c) + NO_CLASS: int(n) for c, n in enumerate(counts) if n}

    def set_labels(self, labels: Mapping[int, int]) -> np.ndarray:
        """Set image id -> class id; returns the positions changed."""
        positions = self.positions_of(labels.keys())
        keep = positions >= 0
        values = np.fromiter(labels.values(), np.int64)
        self.label[positions[keep]] = values[keep]
        return positions[keep]


def select_images(table: ImageTable, image_filter: ImageFilter) -> np.ndarray:
    """Positions in ``table`` of the images ``image_filter`` shows, in its order."""
    f = image_filter
    readable = table.status == 0
    mask = ~readable if f.unreadable else readable.copy()
    if f.label == UNLABELLED:
        mask &= table.label == NO_CLASS
    elif f.label is not None:
        mask &= table.label == f.label
    if f.split is not None:
        mask &= table.split == SPLITS.index(f.split)
    if f.predicted is not None:
        mask &= table.predicted_class == f.predicted
    if f.misclassified:
        mask &= table.disagrees()
    if f.limits_confidence:
        low, high = f.confidence
        with np.errstate(invalid="ignore"):
            mask &= (table.confidence >= low) & (table.confidence <= high)
    if f.image_ids is not None:
        mask &= np.isin(table.ids, np.fromiter(f.image_ids, np.int64))
    query = f.search.strip().lower()
    if query:
        keys = table.search_keys()
        mask &= np.fromiter((query in key for key in keys), bool, count=len(keys))
    positions = np.flatnonzero(mask)
    return _sorted(table, positions, f.sort, f.descending)


DEFAULT_DESCENDING = {
    "name": False, "confidence": False, "loss": True, "uncertainty": True, "label_next": False,
}  # fmt: skip


def _sorted(table: ImageTable, positions: np.ndarray, key: str, descending: bool) -> np.ndarray:
    """Sort by ``key``; images without a value (no prediction) always come last."""
    if key == "name":
        return positions[::-1] if descending else positions
    values = {
        "confidence": table.confidence,
        "uncertainty": table.uncertainty,
        "label_next": table.label_next_rank,  # labelled images have none: they come last
    }.get(key)
    if values is None:
        values = table.loss()
    chosen = values[positions].astype(np.float64)
    missing = np.isnan(chosen)
    chosen = np.where(missing, 0.0, -chosen if descending else chosen)
    # lexsort: last key is primary; ties keep path order
    return positions[np.lexsort((positions, chosen, missing))]


def _normalised_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy of each row divided by its maximum, log(K): 0 sure, 1 undecided."""
    if p.shape[1] < 2:
        return np.zeros(len(p), np.float32)
    clipped = np.clip(p.astype(np.float64), 1e-12, 1.0)
    entropy = -(clipped * np.log(clipped)).sum(axis=1)
    return (entropy / math.log(p.shape[1])).astype(np.float32)


def read_image_table(
    project_dir: Path,
    first: int | None = None,
    *,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> ImageTable:
    """Read every image of the project (or only the ``first`` by path), ordered by
    path, without predictions (see `read_predictions`). Opens its own connection,
    so it may run on a worker thread."""
    with ProjectStore.open(project_dir) as store:
        on_progress(Progress("load", 0, 1, "Reading the images"))
        columns = store.image_columns(first)
    check_cancelled(cancel)
    on_progress(Progress("load", 1, 1, "Done"))
    return ImageTable(
        ids=columns.ids,
        paths=columns.paths,
        hashes=columns.hashes,
        label=columns.label,
        split=columns.split,
        status=columns.status,
        errors=columns.errors,
    )


def read_predictions(
    project_dir: Path,
    *,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> Predictions | None:
    """The active version's stored predictions, calibrated and decided as its exported
    model does (`version_predictions`), or None if the project has no active
    model. Opens its own connection, so it may run on a worker thread."""
    with ProjectStore.open(project_dir) as store:
        version = active_version(store)
        if version is None:
            return None
        on_progress(Progress("load", 0, 1, f"Reading the predictions of {version.name}"))
        decided = version_predictions(store, version)
        class_ids = {c.name: c.id for c in store.classes()}
        on_progress(Progress("load", 0, 1, "Ordering the unlabelled images to label next"))
        order = label_next(store)
    check_cancelled(cancel)
    on_progress(Progress("load", 1, 1, "Done"))
    return Predictions(
        version_name=version.name,
        classes=list(version.classes),
        class_ids=np.array([class_ids.get(n, NO_CLASS) for n in version.classes], np.int64),
        image_ids=decided.image_ids,
        probabilities=decided.probabilities,
        predicted=decided.predicted,
        label_next=np.array([image.image_id for image in order.images], np.int64),
    )
