"""Backbone features through onnxruntime: they agree with TensorFlow's, the
backbone is converted once and kept, and computing them is done once per image
content, with progress and cancel."""

from __future__ import annotations

import threading
import time

import keras
import numpy as np
import onnx
import pytest

from linnaeus.engine.errors import Cancelled
from linnaeus.engine.evaluation.label_issues import version_label_issues
from linnaeus.engine.images.array_cache import ArrayCache
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.project.predictions import load_predictions
from linnaeus.engine.sessions import in_order
from linnaeus.engine.training import features
from linnaeus.engine.training.backbones import available_backbones
from linnaeus.engine.training.backbones import converted_backbones_dir
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.data import Examples
from linnaeus.engine.training.data import LoadedPixels
from linnaeus.engine.training.data import collect_examples
from linnaeus.engine.training.data import load_pixels
from linnaeus.engine.training.features import FeatureRun
from linnaeus.engine.training.features import cached_features
from linnaeus.engine.training.features import onnx_run
from linnaeus.engine.training.models import ModelSpec
from linnaeus.engine.training.models import build_classifier
from linnaeus.engine.training.models import embedding_model
from linnaeus.engine.training.runs import predict_padded
from linnaeus.engine.training.train import train
from tests.training_factory import draw_shape
from tests.training_factory import make_shapes_project

BACKBONE = "mobilenet_v2_0.5"


@pytest.fixture(scope="module")
def embedder() -> keras.Model:
    """The classifier up to "gap" with the real ImageNet backbone, at 64 px."""
    assert BACKBONE in available_backbones()  # shipped in resources/weights
    model = build_classifier(ModelSpec("transfer", 2, image_size=64, backbone=BACKBONE))
    return embedding_model(model)


def shapes(n: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.stack([draw_shape(("disk", "square")[i % 2], rng, size) for i in range(n)])


def test_onnxruntime_features_agree_with_tensorflow(embedder) -> None:
    images = shapes(6)
    ours = onnx_run(embedder, BACKBONE).compute(images)
    theirs = predict_padded(embedder, images, 64)
    assert ours.shape == theirs.shape == (6, 1280)
    assert ours.dtype == np.float32
    # Features run 0..6 (ReLU6, averaged): float rounding only, so one cache serves both.
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def conversion(embedder: keras.Model) -> onnx.ModelProto:
    """The backbone's conversion, made once for the module (in the session's cache)."""
    return onnx.load(features.converted_backbone(embedder, BACKBONE))


def test_the_backbone_is_converted_once_and_kept(embedder, conversion, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    conversions: list[keras.Model] = []

    def convert(model: keras.Model) -> onnx.ModelProto:
        conversions.append(model)
        return conversion

    monkeypatch.setattr(features, "_convert", convert)
    expected = onnx_run(embedder, BACKBONE).compute(shapes(2))
    (kept,) = converted_backbones_dir().iterdir()
    assert kept.name.startswith(f"{BACKBONE}-64-") and kept.suffix == ".onnx"
    np.testing.assert_array_equal(onnx_run(embedder, BACKBONE).compute(shapes(2)), expected)
    assert len(conversions) == 1

    kept.write_bytes(b"half a file")  # damaged: converted again, and kept again
    np.testing.assert_array_equal(onnx_run(embedder, BACKBONE).compute(shapes(2)), expected)
    assert len(conversions) == 2
    assert [p.name for p in converted_backbones_dir().iterdir()] == [kept.name]
    assert onnx.load(kept) == conversion


def test_features_come_even_when_the_cache_folder_cannot_be_written(
    embedder, conversion, tmp_path, monkeypatch
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    monkeypatch.setattr(features, "_convert", lambda model: conversion)
    assert onnx_run(embedder, BACKBONE).compute(shapes(2)).shape == (2, 1280)


def _loaded(hashes: list[str], size: int = 2) -> LoadedPixels:
    """Examples with distinct pixels per distinct hash, in memory."""
    distinct = list(dict.fromkeys(hashes))
    images = np.stack([np.full((size, size, 3), i % 256, np.uint8) for i in range(len(distinct))])
    n = len(hashes)
    examples = Examples(
        classes=["a", "b"],
        image_ids=np.arange(n),
        paths=[f"{h}.png" for h in hashes],
        hashes=hashes,
        labels=np.zeros(n, np.int64),
        splits=np.array(["train"] * n),
    )
    rows = np.array([distinct.index(h) for h in hashes])
    return LoadedPixels(examples, images, rows, [], 0)


class CountingRun:
    """A feature run that records what it computed: features = the grey level, twice."""

    def __init__(self, workers: int = 2) -> None:
        self.images = 0
        self.workers = workers
        self._lock = threading.Lock()

    def __call__(self) -> FeatureRun:
        return FeatureRun(self.compute, "test", batch_size=16, workers=self.workers)

    def compute(self, pixels: np.ndarray) -> np.ndarray:
        with self._lock:
            self.images += len(pixels)
        grey = pixels[:, 0, 0, 0].astype(np.float32)
        return np.stack([grey, 2 * grey], axis=1)


def test_features_are_computed_once_per_image_content(tmp_path) -> None:
    hashes = [f"h{i}" for i in range(300)] + ["h0", "h7"]  # two images seen twice
    loaded = _loaded(hashes)
    cache = ArrayCache(tmp_path / "features", (2,), "float32")
    run = CountingRun()
    reports: list[Progress] = []
    values = cached_features(cache, loaded, run, on_progress=reports.append, cancel=None)
    assert run.images == 300
    grey = (loaded.rows % 256).astype(np.float32)
    np.testing.assert_array_equal(values, np.stack([grey, 2 * grey], axis=1))

    assert all(isinstance(r, TrainingProgress) and r.phase == "embed" for r in reports)
    assert [(r.done, r.total) for r in reports] == [(0, 300), (256, 300), (300, 300)]
    assert reports[-1].eta_s == 0 and reports[-1].images_per_s > 0

    def no_run() -> FeatureRun:
        raise AssertionError("everything was cached")

    again = cached_features(cache, loaded, no_run, on_progress=reports.append, cancel=None)
    np.testing.assert_array_equal(again, values)


@pytest.mark.parametrize("workers", [1, 2])  # 1: TensorFlow's way, on the calling thread
def test_cancelling_keeps_the_features_already_saved(tmp_path, workers: int) -> None:
    loaded = _loaded([f"h{i}" for i in range(600)])
    cache = ArrayCache(tmp_path / "features", (2,), "float32")
    cancel = CancelToken()

    def cancel_after_first_save(progress: Progress) -> None:
        if progress.done:
            cancel.cancel()

    with pytest.raises(Cancelled):
        cached_features(
            cache, loaded, CountingRun(workers), on_progress=cancel_after_first_save, cancel=cancel
        )
    assert len(cache) == 256
    rest = CountingRun()
    cached_features(cache, loaded, rest, on_progress=lambda p: None, cancel=None)
    assert rest.images == 600 - 256


def test_in_order_gives_results_in_order_and_stops_when_cancelled() -> None:
    def slow_square(n: int) -> int:
        time.sleep(0.01 * (n % 3))
        return n * n

    assert list(in_order(slow_square, range(20), workers=3)) == [n * n for n in range(20)]
    cancel = CancelToken()
    results = in_order(slow_square, range(20), workers=3, cancel=cancel)
    assert [next(results), next(results)] == [0, 1]
    cancel.cancel()
    with pytest.raises(Cancelled):
        next(results)


def test_the_quick_model_stores_what_its_keras_model_predicts(tmp_path) -> None:
    """The stored predictions and the figures come from the head on onnxruntime's
    features; the saved Keras model (and so the exported one) gives the same."""
    store = make_shapes_project(tmp_path, {"disk": 16, "square": 16})
    reports: list[Progress] = []
    config = TrainConfig(model="quick", image_size=64)
    version = train(store, config, on_progress=reports.append).version
    embed = [r for r in reports if isinstance(r, TrainingProgress) and r.phase == "embed"]
    assert embed[-1].done == embed[-1].total == 32
    # the same features judged every label by fold heads that never saw the image
    assert version.metrics["label_check"]["images"] == 32
    assert len(version_label_issues(store, version) or []) == 32

    loaded = load_pixels(store, collect_examples(store), config.resolved().input_format)
    model = keras.models.load_model(version.model_file)
    keras_probabilities = predict_padded(model, np.asarray(loaded.images[loaded.rows]), 64)
    ids, stored = load_predictions(store, version.id)
    by_id = dict(zip(ids.tolist(), stored, strict=True))
    stored = np.stack([by_id[i] for i in loaded.examples.image_ids.tolist()])
    np.testing.assert_allclose(stored, keras_probabilities, atol=1e-4)
