"""The training input pipeline: which images, their cached pixels, and tf.data.

Images are decoded and resized once, on worker threads, into an on-disk cache
keyed by content hash and input format (`ArrayCache`), so later epochs and
later trainings do no decoding at all. Batches are gathered from that memory
map, augmented by `engine.augment` (the code the preview uses) and prefetched
by tf.data while the model trains on the previous batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from linnaeus.engine.errors import TrainingError
from linnaeus.engine.images.array_cache import ArrayCache
from linnaeus.engine.images.augment import Augmentation
from linnaeus.engine.images.augment import augment_batch
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.images.preprocess import prepare_image
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project.image_files import labelled_images
from linnaeus.engine.project.image_files import mark_unreadable
from linnaeus.engine.project.store import ProjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Examples:
    """Labelled, readable images of a project, with class indices and splits."""

    classes: list[str]
    image_ids: np.ndarray
    paths: list[str]
    hashes: list[str]
    labels: np.ndarray  # class index per image
    splits: np.ndarray  # "train" / "val" / "test" per image

    def subset(self, keep: np.ndarray) -> Examples:
        return Examples(
            self.classes,
            self.image_ids[keep],
            [p for p, k in zip(self.paths, keep, strict=True) if k],
            [h for h, k in zip(self.hashes, keep, strict=True) if k],
            self.labels[keep],
            self.splits[keep],
        )

    def split(self, name: str) -> np.ndarray:
        """Positions of the images in split ``name``."""
        return np.flatnonzero(self.splits == name)


def collect_examples(store: ProjectStore, classes: list[str] | None = None) -> Examples:
    """The images training can use: readable, labelled, in a split.

    Classes are the project's classes that have training images, in the
    project's order, unless ``classes`` fixes them (resuming a version).
    """
    rows = labelled_images(store, trainable=True)
    if classes is None:
        in_train = {row.label for row in rows if row.split == "train"}
        classes = [c.name for c in store.classes() if c.name in in_train]
    if len(classes) < 2:
        raise TrainingError(
            "Training needs at least two classes with labelled training images; this project "
            f"has {len(classes)}. Label some images first."
        )
    index = {name: i for i, name in enumerate(classes)}
    rows = [row for row in rows if row.label in index]
    return Examples(
        classes=list(classes),
        image_ids=np.array([r.image_id for r in rows], dtype=np.int64),
        paths=[r.path for r in rows],
        hashes=[r.content_hash for r in rows],
        labels=np.array([index[r.label] for r in rows], dtype=np.int64),
        splits=np.array([r.split for r in rows]),
    )


def pixel_cache(store: ProjectStore, fmt: InputFormat) -> ArrayCache:
    """The project's cache of prepared images in ``fmt``."""
    return ArrayCache(store.project_dir / "cache" / "pixels" / fmt.key, fmt.shape)


@dataclass(frozen=True)
class LoadedPixels:
    """Examples whose pixels are cached, and those that turned out unreadable."""

    examples: Examples
    images: np.ndarray  # memory map of cached rows
    rows: np.ndarray  # row in `images` of each example
    skipped: list[tuple[str, str]]  # (path, reason)
    decoded: int  # images that had to be decoded this time


def load_pixels(
    store: ProjectStore,
    examples: Examples,
    fmt: InputFormat,
    *,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> LoadedPixels:
    """Make sure every example is in the pixel cache; drop (and record in the
    store) images that can no longer be read."""
    cache = pixel_cache(store, fmt)
    root = store.image_root

    def make_row(position: int) -> np.ndarray:
        return prepare_image(read_image(root / examples.paths[position]).pixels, fmt)

    fill = cache.fill(
        examples.hashes, make_row, stage="decode", on_progress=on_progress, cancel=cancel
    )
    skipped = [(examples.paths[p], reason) for p, reason in sorted(fill.failures.items())]
    if skipped:
        reasons = {int(examples.image_ids[p]): reason for p, reason in fill.failures.items()}
        mark_unreadable(store, reasons)
        log.warning("%d images could not be read and were skipped", len(skipped))
    keep = fill.row_numbers >= 0
    return LoadedPixels(
        examples.subset(keep), cache.view(), fill.row_numbers[keep], skipped, fill.computed
    )


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Weights that make every class count as much in the loss ("balanced")."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def batch_plan(
    labels: np.ndarray,
    *,
    batch_size: int,
    epoch: int,
    seed: int,
    shuffle: bool = True,
    balance: str = "none",
) -> list[np.ndarray]:
    """The batches of one epoch, as positions into ``labels``.

    ``balance`` "oversample" repeats images of small classes up to the largest
    class, "undersample" draws every class down to the smallest (seed 003);
    both draw anew each epoch. The plan depends only on (seed, epoch).
    """
    rng = np.random.default_rng([seed, epoch])
    positions = np.arange(len(labels))
    if balance in ("oversample", "undersample"):
        groups = [positions[labels == c] for c in np.unique(labels)]
        target = max(map(len, groups)) if balance == "oversample" else min(map(len, groups))
        chosen = [
            np.concatenate([g, rng.choice(g, target - len(g), replace=True)])
            if len(g) < target
            else rng.choice(g, target, replace=False)
            for g in groups
        ]
        positions = np.concatenate(chosen)
    if shuffle:
        positions = rng.permutation(positions)
    return [positions[i : i + batch_size] for i in range(0, len(positions), batch_size)]


class _BatchSource:
    """The NumPy side of `make_dataset`: the planned batches of each epoch, and
    the arrays of one batch gathered from the pixel cache."""

    def __init__(
        self,
        loaded: LoadedPixels,
        positions: np.ndarray,
        plans: list[list[np.ndarray]],
        *,
        num_classes: int,
        augmentation: Augmentation | None,
        seed: int,
        weights: np.ndarray | None,
        first_epoch: int,
        denoise: float | None,
        mixup: float = 0.0,
    ) -> None:
        self.images = loaded.images
        self.labels = loaded.examples.labels[positions]
        self.rows = loaded.rows[positions]
        self.plans = plans
        self.augmentation = None
        if augmentation is not None and not augmentation.is_identity:
            self.augmentation = augmentation
        self.seed = seed
        self.weights = weights
        self.first_epoch = first_epoch
        self.denoise = denoise
        self.mixup = mixup
        self.eye = np.eye(num_classes, dtype=np.float32)

    @property
    def steps(self) -> int:
        """Batches per epoch."""
        return len(self.plans[0])

    def batches(self) -> Iterator[tuple[np.ndarray, int]]:
        """(positions of a batch, its global step) for every planned batch."""
        step = self.first_epoch * self.steps
        for plan in self.plans:
            for batch in plan:
                yield batch, step
                step += 1

    def gather(self, batch: np.ndarray, step: np.int64) -> tuple[np.ndarray, ...]:
        """(images uint8, one-hot labels, sample weights) of one batch, or
        (noisy images uint8, clean images in 0..1) when denoising."""
        rows = self.rows[batch]
        order = np.argsort(rows)  # memory-map reads in file order
        pixels = np.empty((len(batch), *self.images.shape[1:]), np.uint8)
        pixels[order] = self.images[rows[order]]
        if self.augmentation is not None:
            seed = int(self.seed * 1_000_003 + step)
            pixels = augment_batch(pixels, self.augmentation, seed=seed)
        if self.denoise is not None:
            rng = np.random.default_rng([self.seed, int(step)])
            noise = rng.normal(0.0, self.denoise * 255.0, pixels.shape)
            noisy = np.clip(pixels + noise, 0, 255).astype(np.uint8)
            return noisy, (pixels / np.float32(255.0)).astype(np.float32)
        labels = self.labels[batch]
        weights = np.ones(len(batch), np.float32) if self.weights is None else self.weights[labels]
        if self.mixup:
            return _mixed(pixels, self.eye[labels], weights, self.mixup, [self.seed, int(step)])
        return pixels, self.eye[labels], weights


def _mixed(
    pixels: np.ndarray, targets: np.ndarray, weights: np.ndarray, alpha: float, seed: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixup (Zhang et al. 2018): each image blended with another of the batch by a
    share drawn from Beta(alpha, alpha), its one-hot target and weight alike."""
    rng = np.random.default_rng(seed)
    share = rng.beta(alpha, alpha, len(pixels)).astype(np.float32)
    share = np.maximum(share, 1 - share)  # the image keeps the larger share
    other = rng.permutation(len(pixels))
    blend = share[:, None, None, None]
    mixed = pixels * blend + pixels[other] * (1 - blend)
    mixed_targets = targets * share[:, None] + targets[other] * (1 - share[:, None])
    mixed_weights = weights * share + weights[other] * (1 - share)
    return np.rint(mixed).astype(np.uint8), mixed_targets, mixed_weights.astype(np.float32)


def make_dataset(
    loaded: LoadedPixels,
    positions: np.ndarray,
    *,
    num_classes: int,
    batch_size: int,
    augmentation: Augmentation | None = None,
    seed: int = 0,
    shuffle: bool = False,
    balance: str = "none",
    weights: np.ndarray | None = None,
    first_epoch: int = 0,
    epochs: int = 1,
    denoise: float | None = None,
    mixup: float = 0.0,
) -> tuple[Any, int]:
    """A tf.data pipeline of (images uint8, one-hot labels, sample weights)
    over ``positions`` of ``loaded.examples`` for epochs ``first_epoch..epochs-1``;
    returns it with the number of batches per epoch.

    With ``denoise`` (a noise level, 0.1 = 10% of the range) the pipeline gives
    (noisy images uint8, clean images in 0..1) for autoencoder pretraining; with
    ``mixup`` (Beta's alpha) the training images and their targets are mixed.
    """
    import tensorflow as tf

    labels = loaded.examples.labels[positions]
    plans = [
        batch_plan(
            labels, batch_size=batch_size, epoch=e, seed=seed, shuffle=shuffle, balance=balance
        )
        for e in range(first_epoch, max(epochs, first_epoch + 1))
    ]
    source = _BatchSource(
        loaded,
        positions,
        plans,
        num_classes=num_classes,
        augmentation=augmentation,
        seed=seed,
        weights=weights,
        first_epoch=first_epoch,
        denoise=denoise,
        mixup=mixup,
    )
    shape = loaded.images.shape[1:]
    dataset = tf.data.Dataset.from_generator(
        source.batches,
        output_signature=(tf.TensorSpec([None], tf.int64), tf.TensorSpec([], tf.int64)),
    )

    def to_pairs(batch: Any, step: Any) -> tuple[Any, Any]:
        x, y = tf.numpy_function(source.gather, [batch, step], [tf.uint8, tf.float32])
        x.set_shape([None, *shape])
        y.set_shape([None, *shape])
        return x, y

    def to_tensors(batch: Any, step: Any) -> tuple[Any, Any, Any]:
        x, y, w = tf.numpy_function(
            source.gather, [batch, step], [tf.uint8, tf.float32, tf.float32]
        )
        x.set_shape([None, *shape])
        y.set_shape([None, num_classes])
        w.set_shape([None])
        return x, y, w

    if shuffle:
        # Keras may ask for one batch past the last epoch; repeating (from the
        # first planned epoch) answers it instead of ending training with a warning.
        dataset = dataset.repeat()
    else:  # a known length lets Keras stop at the end instead of running out
        total = sum(len(plan) for plan in plans)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(total))
    mapping = to_pairs if denoise is not None else to_tensors
    dataset = dataset.map(mapping, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE), source.steps
