"""The quick model's backbone features, computed once per image content.

The features of an image are what the classifier's "gap" layer sees: the
ImageNet backbone's last feature map, averaged (`models.embedding_model`). On
the CPU they are computed through onnxruntime: the classifier up to "gap" is
converted to ONNX once per backbone, input size and weight file and kept in the
app's cache folder (`backbones.converted_backbones_dir`), then run over the
images' cached pixels in small batches by one worker thread per core
(`engine.sessions.in_order`): about twice as fast as TensorFlow on a 2-core CPU
(bench/bench_first_model.py). They agree with TensorFlow's within float rounding
(tests/engine/test_features.py), so both share one cache, keyed by image content;
TensorFlow computes them where it has a GPU (`runs`)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import onnx

from linnaeus.engine.atomic import atomic_write_bytes
from linnaeus.engine.atomic import remove_stale_temporaries
from linnaeus.engine.images.array_cache import ArrayCache
from linnaeus.engine.images.array_cache import features_folder
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.sessions import in_order
from linnaeus.engine.sessions import physical_cores
from linnaeus.engine.sessions import remote_runner
from linnaeus.engine.sessions import session_options
from linnaeus.engine.training.backbones import converted_backbones_dir
from linnaeus.engine.training.backbones import find_weights
from linnaeus.engine.training.data import LoadedPixels
from linnaeus.engine.training.models import INPUT_NAME

log = logging.getLogger(__name__)

CONVERSION_VERSION = 1  # bump when the converted graph changes: old files are then ignored
ONNX_BATCH = 16  # per worker: small batches keep each feature map in the core's cache
_SAVE_EVERY = 256  # images computed between two writes to the cache (and progress reports)

Compute = Callable[[np.ndarray], np.ndarray]  # uint8 images N x S x S x C -> N x D features


def feature_cache(
    store: ProjectStore, backbone: str, fmt: InputFormat, dimension: int
) -> ArrayCache:
    """The project's cache of ``backbone``'s features of images prepared in ``fmt``."""
    folder = features_folder(store.project_dir) / f"{backbone}-{fmt.key}"
    return ArrayCache(folder, (dimension,), "float32")


@dataclass(frozen=True)
class FeatureRun:
    """How features are computed: by which runtime, how many images per call, on
    how many threads at once."""

    compute: Compute
    runtime: str  # "onnxruntime", "tensorflow", or where a `remote_runner` runs it
    batch_size: int
    workers: int


def cached_features(
    cache: ArrayCache,
    loaded: LoadedPixels,
    make_run: Callable[[], FeatureRun],
    *,
    on_progress: ProgressCallback,
    cancel: CancelToken | None,
) -> np.ndarray:
    """The features of every example of ``loaded`` (N x D float32), computing those
    of images whose content is not in ``cache`` yet with ``make_run()`` (called
    only then) and adding them to it."""
    hashes = loaded.examples.hashes
    first = {h: position for position, h in reversed(list(enumerate(hashes)))}
    missing = sorted(position for h, position in first.items() if h not in cache)
    if missing:
        _fill(cache, loaded, np.array(missing), make_run(), on_progress=on_progress, cancel=cancel)
    return cache.get(hashes)


def _fill(
    cache: ArrayCache,
    loaded: LoadedPixels,
    positions: np.ndarray,
    run: FeatureRun,
    *,
    on_progress: ProgressCallback,
    cancel: CancelToken | None,
) -> None:
    """Compute the features of the examples at ``positions`` and add them to ``cache``,
    reporting images done, their rate and the time left."""
    total = len(positions)
    log.info("backbone features of %d images through %s", total, run.runtime)
    report = _reporter(total, on_progress)
    report(0)
    hashes = loaded.examples.hashes
    batches = [positions[i : i + run.batch_size] for i in range(0, total, run.batch_size)]

    def compute(batch: np.ndarray) -> np.ndarray:
        rows = loaded.rows[batch]
        order = np.argsort(rows)  # memory-map reads in file order
        pixels = np.empty((len(rows), *loaded.images.shape[1:]), loaded.images.dtype)
        pixels[order] = loaded.images[rows[order]]
        return run.compute(pixels)

    if run.workers > 1:
        results = in_order(compute, batches, workers=run.workers, cancel=cancel, name="embed")
    else:  # TensorFlow: on this thread, inside the training's distribution strategy
        results = map(compute, batches)
    done, unsaved = 0, {}
    for batch, vectors in zip(batches, results, strict=True):
        check_cancelled(cancel)
        unsaved.update(zip((hashes[p] for p in batch), vectors, strict=True))
        done += len(batch)
        if len(unsaved) >= _SAVE_EVERY or done == total:
            cache.put(unsaved)
            unsaved = {}
            report(done)


def _reporter(total: int, on_progress: ProgressCallback) -> Callable[[int], None]:
    started = time.monotonic()

    def report(done: int) -> None:
        elapsed = time.monotonic() - started
        rate = done / elapsed if done and elapsed > 0 else None
        on_progress(TrainingProgress(
            stage="embed", done=done, total=total, phase="embed",
            images_per_s=rate, eta_s=(total - done) / rate if rate else None,
            message=f"Backbone features: {done} of {total} images",
        ))  # fmt: skip

    return report


# -- the runtimes ---------------------------------------------------------------------------


def onnx_run(embedder: keras.Model, backbone: str) -> FeatureRun:
    """Features through the ONNX conversion of ``embedder`` (the classifier up to
    "gap", with ``backbone``'s ImageNet weights) with onnxruntime on the CPU, one
    worker per core. ExportError if the backbone cannot be converted."""
    import onnxruntime

    model = converted_backbone(embedder, backbone)
    remote = remote_runner.get()
    if remote is not None:  # `linnaeus train --ray`: engine.cluster.features
        compute, runtime, workers = remote(model)
        return FeatureRun(compute, runtime, ONNX_BATCH, workers)
    session = onnxruntime.InferenceSession(
        model, sess_options=session_options(1), providers=["CPUExecutionProvider"]
    )

    def compute(pixels: np.ndarray) -> np.ndarray:
        return session.run(None, {INPUT_NAME: np.ascontiguousarray(pixels)})[0]

    return FeatureRun(compute, "onnxruntime", ONNX_BATCH, workers=physical_cores())


def converted_backbone(embedder: keras.Model, backbone: str) -> bytes | str:
    """The ONNX conversion of ``embedder``: the path of the cached file, or the
    model itself when the cache folder cannot be written. ExportError if tf2onnx
    cannot convert it."""
    size = int(embedder.inputs[0].shape[1])
    weights = hashlib.sha256(find_weights(backbone).read_bytes()).hexdigest()[:16]
    path = converted_backbones_dir() / f"{backbone}-{size}-{weights}-v{CONVERSION_VERSION}.onnx"
    if _loads(path):
        return str(path)
    model = _convert(embedder).SerializeToString()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent)
        atomic_write_bytes(path, model)
    except OSError as error:
        log.warning("the converted backbone is not kept (%s): converting it each time", error)
        return model
    return str(path)


def _loads(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        onnx.checker.check_model(str(path))
    except Exception:  # onnx raises anything on a damaged file; it is converted again
        log.warning("%s is damaged: converting the backbone again", path)
        return False
    return True


def _convert(embedder: keras.Model) -> onnx.ModelProto:
    import tensorflow as tf

    from linnaeus.engine.training.onnx_conversion import function_to_onnx

    size, _, channels = embedder.inputs[0].shape[1:]
    spec = tf.TensorSpec([None, size, size, channels], tf.uint8, name=INPUT_NAME)

    @tf.function(input_signature=[spec], jit_compile=False)
    def features(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"features": tf.cast(embedder(image, training=False), tf.float32)}

    return function_to_onnx(features, embedder.name)
