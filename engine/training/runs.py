"""The training recipes behind `engine.training.train`: quick head on cached
embeddings (its fitting in `quick_head`), fine-tuning, from scratch, and
autoencoder pretraining."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from linnaeus.engine.atomic import atomic_path
from linnaeus.engine.errors import ExportError
from linnaeus.engine.images.augment import featurewise_stats
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import curve_key
from linnaeus.engine.project.image_files import readable_images
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import CHECKPOINT_FILE
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.engine.training.callbacks import Checkpointer
from linnaeus.engine.training.callbacks import ProgressReporter
from linnaeus.engine.training.callbacks import TrainState
from linnaeus.engine.training.config import BACKBONE_MODELS
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.data import Examples
from linnaeus.engine.training.data import LoadedPixels
from linnaeus.engine.training.data import class_weights
from linnaeus.engine.training.data import load_pixels
from linnaeus.engine.training.data import make_dataset
from linnaeus.engine.training.device import DeviceSetup
from linnaeus.engine.training.features import FeatureRun
from linnaeus.engine.training.features import cached_features
from linnaeus.engine.training.features import feature_cache
from linnaeus.engine.training.features import onnx_run
from linnaeus.engine.training.loop import fit
from linnaeus.engine.training.models import ModelSpec
from linnaeus.engine.training.models import build_autoencoder
from linnaeus.engine.training.models import build_classifier
from linnaeus.engine.training.models import copy_encoder_weights
from linnaeus.engine.training.models import embedding_model
from linnaeus.engine.training.models import set_backbone_trainable
from linnaeus.engine.training.quick_head import fit_head
from linnaeus.engine.training.quick_head import head_probabilities
from linnaeus.engine.training.schedule import WarmupCosine

log = logging.getLogger(__name__)
_EMBED_BATCH = 64
# XLA compilation takes 10-20 s per model on a CPU, longer than a small
# training run gains from it; on a GPU it pays off.
JIT_COMPILE = False
_EVAL_BATCH = 128
# The fine-tuning recipe of the "accurate" model (bench/bench_recipe.py measures
# each choice): label smoothing, a linear warm-up (in epochs) before the cosine
# decay, so the fitted head is not wrecked by the first steps of a whole
# backbone, and mixup's Beta(a, a) (0 = off).
FINE_TUNE_SMOOTHING = 0.0
FINE_TUNE_WARMUP_EPOCHS = 1.0
FINE_TUNE_MIXUP = 0.0


@dataclass(frozen=True)
class RunOutcome:
    metrics: dict[str, Any]
    curves: dict[str, list[float]]
    image_ids: np.ndarray  # every readable image...
    probabilities: np.ndarray  # ...and its predicted class probabilities
    split_probabilities: dict[str, np.ndarray]  # per split, of its examples in their order
    features: np.ndarray | None = None  # backbone features of the examples, in their order


@dataclass(frozen=True)
class _Context:
    store: ProjectStore
    config: TrainConfig
    folder: Path
    loaded: LoadedPixels
    device: DeviceSetup
    on_progress: ProgressCallback
    cancel: CancelToken | None
    callbacks: Sequence[keras.callbacks.Callback] = ()  # more, for epoch training

    @property
    def num_classes(self) -> int:
        return len(self.loaded.examples.classes)

    def positions(self, split: str) -> np.ndarray:
        return self.loaded.examples.split(split)

    def weights(self) -> np.ndarray | None:
        if self.config.imbalance != "class-weights":
            return None
        labels = self.loaded.examples.labels[self.positions("train")]
        return class_weights(labels, self.num_classes)

    @property
    def balance(self) -> str:
        return (
            self.config.imbalance
            if self.config.imbalance in ("oversample", "undersample")
            else "none"
        )


def run(
    store: ProjectStore,
    config: TrainConfig,
    version: ModelVersion,
    loaded: LoadedPixels,
    device: DeviceSetup,
    *,
    resume: bool,
    on_progress: ProgressCallback,
    cancel: CancelToken | None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> RunOutcome:
    """Train ``version`` with ``config``'s recipe, save its model file, measure it.
    ``callbacks`` join epoch training's own, before its checkpointer (e.g. a deadline)."""
    context = _Context(
        store, config, version.folder, loaded, device, on_progress, cancel, tuple(callbacks)
    )
    features = None
    if config.model in BACKBONE_MODELS:
        model = build_classifier(_spec(context))
        features = _embeddings(context, embedding_model(model))
        curves = fit_head(context, model, features)
        if config.model == "accurate":
            set_backbone_trainable(model, config.fine_tune_fraction)
            curves |= _fit(context, model, "fine-tune", resume=False)
    else:
        if resume:
            model = keras.models.load_model(version.folder / CHECKPOINT_FILE)
        else:
            normalisation = _normalisation(context)
            model = build_classifier(_spec(context), **normalisation)
            if config.model == "pretrain":
                _pretrain(context, model, normalisation)
        curves = _fit(context, model, "train", resume=resume)
    with atomic_path(version.model_file) as temporary:
        model.save(temporary)
    image_ids, probabilities = predict_all(context, model)
    metrics, split_probabilities = evaluate_splits(context, model)
    return RunOutcome(metrics, curves, image_ids, probabilities, split_probabilities, features)


def _spec(context: _Context) -> ModelSpec:
    config = context.config
    kind = {"quick": "transfer", "accurate": "transfer", "pretrain": "small-resnet"}.get(
        config.model, config.model
    )
    return ModelSpec(
        kind=kind,
        num_classes=context.num_classes,
        image_size=config.image_size or 128,
        channels=config.channels,
        backbone=config.backbone,
        activation=config.activation,
        dropout=config.dropout,
        l1=config.l1,
        l2=config.l2,
    )


def _normalisation(context: _Context) -> dict[str, Any]:
    """Featurewise mean/std of the training split, when the model should use them."""
    config = context.config
    augmentation = config.augmentation
    if not (config.normalize or augmentation.featurewise_center):
        return {"mean": None, "std": None}
    stats = featurewise_stats(_training_images(context.loaded, context.positions("train")))
    scale = config.normalize or augmentation.featurewise_std_normalization
    return {"mean": stats.mean, "std": stats.std if scale else None}


def _training_images(loaded: LoadedPixels, positions: np.ndarray, chunk: int = 512) -> Any:
    rows = np.sort(loaded.rows[positions])
    for start in range(0, len(rows), chunk):
        yield from loaded.images[rows[start : start + chunk]]


def _compile(model: keras.Model, learning_rate: float, *, label_smoothing: float = 0.0) -> None:
    """Adam, its rate set step by step by the epoch loop from a `WarmupCosine`."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
        jit_compile=JIT_COMPILE,
    )


def _schedule(
    model: keras.Model, config: TrainConfig, state: TrainState, steps: int, *, tuning: bool
) -> WarmupCosine | None:
    """The run's learning-rate plan: a cosine decay over the epochs (the plan a deadline
    shortened, on resume), after a warm-up when fine-tuning. None for a checkpoint
    whose optimizer holds its own Keras schedule (saved before the plan was the loop's)."""
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)  # mixed precision
    if isinstance(optimizer.get_config().get("learning_rate"), dict):
        return None
    epochs = config.epochs or 1
    return WarmupCosine(
        config.learning_rate or 1e-3,
        total_steps=(state.planned_epochs or epochs) * steps,
        warmup_steps=round(FINE_TUNE_WARMUP_EPOCHS * steps) if tuning else 0,
    )


def _fit(
    context: _Context, model: keras.Model, phase: str, *, resume: bool
) -> dict[str, list[float]]:
    """Epoch training with augmentation, checkpoints, early stopping and resume."""
    config = context.config
    epochs = config.epochs or 1
    state = TrainState.load(context.folder) if resume else None
    state = state or TrainState(phase)
    tuning = phase == "fine-tune"
    train_data, steps = make_dataset(
        context.loaded,
        context.positions("train"),
        num_classes=context.num_classes,
        batch_size=config.batch_size,
        augmentation=config.augmentation,
        seed=config.seed,
        shuffle=True,
        balance=context.balance,
        weights=context.weights(),
        first_epoch=state.epochs_done,
        epochs=epochs,
        mixup=FINE_TUNE_MIXUP if tuning else 0.0,
    )
    if state.planned_epochs:  # resuming a run a deadline planned shorter: end with its plan
        epochs = min(epochs, state.planned_epochs)
    val_data, _ = make_dataset(
        context.loaded,
        context.positions("val"),
        num_classes=context.num_classes,
        batch_size=_EVAL_BATCH,
    )
    if not resume:
        _compile(model, config.learning_rate or 1e-3,
                 label_smoothing=FINE_TUNE_SMOOTHING if tuning else 0.0)  # fmt: skip
    if state.epochs_done < epochs:  # a custom step: model.fit fails on several machines
        fit(
            model,
            train_data,
            validation_data=val_data,
            epochs=epochs,
            initial_epoch=state.epochs_done,
            steps_per_epoch=steps,
            callbacks=[
                ProgressReporter(context.on_progress, phase, epochs, steps, config.batch_size),
                *context.callbacks,
                Checkpointer(context.folder, state, config.patience or 5, context.cancel),
            ],
            schedule=_schedule(model, config, state, steps, tuning=tuning),
        )
    return {curve_key(phase, k): v for k, v in state.history.items()}


def _embeddings(
    context: _Context, embedder: keras.Model, loaded: LoadedPixels | None = None
) -> np.ndarray:
    """Backbone features of every example, computed once per image content."""
    config = context.config
    dimension = int(embedder.output.shape[-1])
    cache = feature_cache(context.store, str(config.backbone), config.input_format, dimension)
    return cached_features(
        cache,
        loaded or context.loaded,
        lambda: _feature_run(context, embedder),
        on_progress=context.on_progress,
        cancel=context.cancel,
    )


def _feature_run(context: _Context, embedder: keras.Model) -> FeatureRun:
    """onnxruntime on the CPU; TensorFlow where it has a GPU, or cannot convert."""
    if not context.device.gpus:
        try:
            return onnx_run(embedder, str(context.config.backbone))
        except ExportError as error:
            log.warning("backbone features through TensorFlow: %s", error)

    def compute(pixels: np.ndarray) -> np.ndarray:
        return predict_padded(embedder, pixels, _EMBED_BATCH).astype(np.float32)

    return FeatureRun(compute, "tensorflow", _EMBED_BATCH, workers=1)


def _all_readable(context: _Context) -> LoadedPixels:
    """Pixels of every readable image of the project, labelled or not."""
    rows = readable_images(context.store)
    everything = Examples(
        classes=context.loaded.examples.classes,
        image_ids=np.array([r.image_id for r in rows], dtype=np.int64),
        paths=[r.path for r in rows],
        hashes=[r.content_hash for r in rows],
        labels=np.zeros(len(rows), np.int64),
        splits=np.array(["train"] * len(rows)),
    )
    return load_pixels(context.store, everything, context.config.input_format,
                       on_progress=context.on_progress, cancel=context.cancel)  # fmt: skip


def predict_all(context: _Context, model: keras.Model) -> tuple[np.ndarray, np.ndarray]:
    """(image ids, probabilities) of every readable image, for the stored predictions.

    The quick model reuses the cached backbone embeddings, so after the first
    time this costs a matrix product, not a pass through the network.
    """
    loaded = _all_readable(context)
    if context.config.model == "quick":
        embeddings = _embeddings(context, embedding_model(model), loaded)
        probabilities = head_probabilities(model, embeddings)
    else:
        probabilities = predict_positions(model, loaded, np.arange(len(loaded.rows)))
    return loaded.examples.image_ids, probabilities


def _pretrain(context: _Context, classifier: keras.Model, normalisation: dict[str, Any]) -> None:
    """Denoising autoencoder on all readable images; its encoder initialises
    ``classifier``'s convolutional trunk (seed 002)."""
    config = context.config
    loaded = _all_readable(context)
    autoencoder, encoder = build_autoencoder(_spec(context), **normalisation)
    data, steps = make_dataset(
        loaded,
        np.arange(len(loaded.rows)),
        num_classes=1,
        batch_size=config.batch_size,
        seed=config.seed,
        shuffle=True,
        denoise=0.1,
        epochs=config.pretrain_epochs,
    )
    autoencoder.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=JIT_COMPILE)
    (context.folder / "pretrain").mkdir(exist_ok=True)
    state = TrainState("pretrain")
    autoencoder.fit(
        data,
        epochs=config.pretrain_epochs,
        steps_per_epoch=steps,
        shuffle=False,
        verbose=0,
        callbacks=[
            ProgressReporter(
                context.on_progress, "pretrain", config.pretrain_epochs, steps, config.batch_size
            ),
            Checkpointer(
                context.folder / "pretrain", state, config.pretrain_epochs, context.cancel
            ),
        ],
    )
    copied = copy_encoder_weights(encoder, classifier)
    log.info("pretraining initialised %d layers", copied)


def predict_positions(
    model: keras.Model, loaded: LoadedPixels, positions: np.ndarray
) -> np.ndarray:
    """Class probabilities of the examples at ``positions``."""
    n = int(model.output.shape[-1])
    out = [np.zeros((0, n))]
    for start in range(0, len(positions), 8 * _EVAL_BATCH):
        chunk = positions[start : start + 8 * _EVAL_BATCH]
        pixels = np.asarray(loaded.images[loaded.rows[chunk]])
        out.append(predict_padded(model, pixels, _EVAL_BATCH))
    return np.concatenate(out).astype(np.float64)


def predict_padded(model: keras.Model, pixels: np.ndarray, batch_size: int) -> np.ndarray:
    """``model.predict`` in full batches only (the last one padded), so the
    prediction graph is traced once whatever the number of images."""
    missing = -len(pixels) % batch_size
    padded = np.concatenate([pixels, np.zeros((missing, *pixels.shape[1:]), pixels.dtype)])
    return np.asarray(model.predict(padded, batch_size=batch_size, verbose=0))[: len(pixels)]


def evaluate_splits(
    context: _Context, model: keras.Model
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Accuracy and loss of the model on each split (the full evaluation is
    `engine.evaluation`'s), and the probabilities they were counted from. The quick
    model's come from its last layer on the cached features."""
    metrics: dict[str, Any] = {}
    by_split: dict[str, np.ndarray] = {}
    labels = context.loaded.examples.labels
    quick = context.config.model == "quick"
    features = _embeddings(context, embedding_model(model)) if quick else None
    for split in ("train", "val", "test"):
        positions = context.positions(split)
        if len(positions) == 0:
            continue
        check_cancelled(context.cancel)
        if features is not None:
            probabilities = head_probabilities(model, features[positions])
        else:
            probabilities = predict_positions(model, context.loaded, positions)
        by_split[split] = probabilities
        metrics[split] = split_figures(labels[positions], probabilities)
    return metrics, by_split


def split_figures(truth: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Images, accuracy (most probable class) and loss of one split's predictions."""
    picked = probabilities[np.arange(len(truth)), truth]
    return {
        "images": len(truth),
        "accuracy": float(np.mean(probabilities.argmax(axis=1) == truth)),
        "loss": float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0)))),
    }
