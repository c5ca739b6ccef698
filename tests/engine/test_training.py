"""Training: it learns, resumes, cancels cleanly, weights classes, skips bad files."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import TrainingError
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.augment import augment_batch
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.project import versions
from linnaeus.engine.project.versions import CHECKPOINT_FILE
from linnaeus.engine.training import backbones
from linnaeus.engine.training.backbones import WeightsNotFound
from linnaeus.engine.training.callbacks import TrainState
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.data import batch_plan
from linnaeus.engine.training.data import class_weights
from linnaeus.engine.training.data import collect_examples
from linnaeus.engine.training.data import load_pixels
from linnaeus.engine.training.data import make_dataset
from linnaeus.engine.training.train import train
from tests.training_factory import make_shapes_project

SMALL = {"image_size": 32, "batch_size": 16, "augmentation": PRESETS["none"], "patience": 50}


def test_seed_cnn_learns_tiny_shapes(tmp_path) -> None:
    store = make_shapes_project(tmp_path)
    reports: list[TrainingProgress] = []
    result = train(store, TrainConfig(model="seed-cnn", epochs=8, **SMALL),
                   on_progress=lambda p: reports.append(p))  # fmt: skip
    version = result.version
    assert version.status == "done" and version.classes == ["disk", "square"]
    assert version.metrics["train"]["accuracy"] > 0.85
    assert version.metrics["val"]["accuracy"] >= 0.75
    assert version.model_file.exists()
    assert versions.active_version(store).id == version.id
    assert len(version.curves["train_loss"]) == 8
    epochs = [p for p in reports if isinstance(p, TrainingProgress) and p.phase == "train"]
    assert epochs[-1].epoch == 8 and epochs[-1].val_accuracy is not None
    assert all(p.images_per_s and p.images_per_s > 0 for p in epochs)
    snapshot = versions.label_snapshot(store, version.id)
    assert len(snapshot) == 80 and {s for _, s in snapshot.values()} == {"train", "val", "test"}


@pytest.mark.parametrize("planned", [None, 3])  # 3: a deadline had planned 3 of 4 epochs
def test_cancel_leaves_a_checkpoint_and_resume_finishes_with_the_same_steps(
    tmp_path, planned: int | None
) -> None:
    store = make_shapes_project(tmp_path)
    config = TrainConfig(model="seed-cnn", epochs=4, **SMALL)
    cancel = CancelToken()

    def cancel_in_epoch_3(progress) -> None:
        if (
            isinstance(progress, TrainingProgress)
            and progress.phase == "train"
            and progress.epoch == 3
        ):
            cancel.cancel()

    with pytest.raises(Cancelled):
        train(store, config, cancel=cancel, on_progress=cancel_in_epoch_3)
    (version,) = versions.list_versions(store)
    assert version.status == "cancelled"
    state = TrainState.load(version.folder)
    assert state.epochs_done == 2
    checkpoint = keras.models.load_model(version.folder / CHECKPOINT_FILE)
    assert checkpoint.predict(np.zeros((1, 32, 32, 3), np.uint8), verbose=0).shape == (1, 2)
    steps = int(checkpoint.optimizer.iterations.numpy())
    per_epoch = int(np.ceil(len(store.images(split="train")) / 16))
    assert state.planned_epochs is None  # no deadline planned this run
    if planned:
        state.planned_epochs = planned
        state.save(version.folder)

    result = train(store, resume=True)
    assert result.version.id == version.id and result.version.status == "done"
    resumed = keras.models.load_model(version.folder / CHECKPOINT_FILE)
    epochs = planned or 4
    assert steps >= 2 * per_epoch
    assert int(resumed.optimizer.iterations.numpy()) == epochs * per_epoch + (steps - 2 * per_epoch)
    assert len(result.version.curves["train_loss"]) == epochs


def test_resume_without_an_interrupted_run_is_explained(tmp_path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 10, "square": 10})
    with pytest.raises(TrainingError, match="no interrupted training"):
        train(store, resume=True)


def test_one_class_is_not_enough(tmp_path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 10})
    with pytest.raises(TrainingError, match="at least two classes"):
        train(store, TrainConfig(model="seed-cnn", epochs=1, **SMALL))


def test_a_corrupt_image_found_during_training_is_skipped_and_reported(tmp_path) -> None:
    store = make_shapes_project(tmp_path)
    damaged = store.images(split="train", label="disk")[0]
    (store.image_root / damaged.path).write_bytes(b"\x89PNG\r\n\x1a\n damaged later")
    result = train(store, TrainConfig(model="seed-cnn", epochs=1, **SMALL))
    assert [path for path, _ in result.skipped] == [damaged.path]
    assert store.image(damaged.id).status == "unreadable"
    assert damaged.id not in versions.label_snapshot(store, result.version.id)


def test_pipeline_augments_exactly_like_the_preview_function(tmp_path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 12, "square": 12})
    examples = collect_examples(store)
    loaded = load_pixels(store, examples, InputFormat(32))
    positions = np.arange(len(loaded.rows))
    augmentation = PRESETS["strong"]
    dataset, _ = make_dataset(loaded, positions, num_classes=2, batch_size=8,
                              augmentation=augmentation, seed=7, shuffle=True)  # fmt: skip
    images, labels, _ = next(iter(dataset))
    first = batch_plan(loaded.examples.labels, batch_size=8, epoch=0, seed=7)[0]
    expected = augment_batch(loaded.images[loaded.rows[first]], augmentation, seed=7 * 1_000_003)
    np.testing.assert_array_equal(images.numpy(), expected)
    np.testing.assert_array_equal(labels.numpy().argmax(1), loaded.examples.labels[first])


def test_second_training_decodes_nothing(tmp_path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 12, "square": 12})
    examples = collect_examples(store)
    assert load_pixels(store, examples, InputFormat(32)).decoded == 24
    assert load_pixels(store, examples, InputFormat(32)).decoded == 0


def test_class_weights_change_the_loss_on_an_imbalanced_set(tmp_path) -> None:
    labels = np.array([0] * 90 + [1] * 10)
    weights = class_weights(labels, 2)
    np.testing.assert_allclose(weights, [100 / 180, 100 / 20])

    store = make_shapes_project(tmp_path, {"disk": 36, "square": 4})
    loaded = load_pixels(store, collect_examples(store), InputFormat(32))
    positions = np.arange(len(loaded.rows))
    w = class_weights(loaded.examples.labels, 2)
    weighted, _ = make_dataset(loaded, positions, num_classes=2, batch_size=64, weights=w)
    plain, _ = make_dataset(loaded, positions, num_classes=2, batch_size=64)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2),
                              keras.layers.Softmax()])  # fmt: skip
    model.compile(loss="categorical_crossentropy")
    assert model.evaluate(weighted, verbose=0) != pytest.approx(model.evaluate(plain, verbose=0))


@pytest.mark.parametrize("balance", ["oversample", "undersample"])
def test_resampling_balances_each_epoch(balance: str) -> None:
    labels = np.array([0] * 30 + [1] * 6)
    batches = batch_plan(labels, batch_size=8, epoch=0, seed=1, balance=balance)
    counts = np.bincount(labels[np.concatenate(batches)])
    assert counts[0] == counts[1] == (30 if balance == "oversample" else 6)
    again = batch_plan(labels, batch_size=8, epoch=1, seed=1, balance=balance)
    assert not np.array_equal(np.concatenate(batches), np.concatenate(again))


def test_quick_model_uses_the_shipped_imagenet_weights_and_caches_embeddings(tmp_path) -> None:
    store = make_shapes_project(tmp_path)
    config = TrainConfig(image_size=64, epochs=60)  # auto: the weights ship, so "quick"
    first = train(store, config)
    assert first.version.kind == "quick"
    assert first.version.config["backbone"] == "mobilenet_v2_0.5"
    assert first.version.metrics["val"]["accuracy"] >= 0.8
    embeddings = store.project_dir / "cache" / "embeddings"
    (cache,) = embeddings.iterdir()
    assert len(json.loads((cache / "index.json").read_text())["rows"]) == 80

    reports: list[TrainingProgress] = []
    second = train(store, config, on_progress=reports.append)
    assert second.decoded == 0
    assert not [p for p in reports if isinstance(p, TrainingProgress) and p.phase == "embed"]
    model = keras.models.load_model(second.version.model_file)
    assert model.get_layer("backbone") is not None


def test_without_weights_auto_trains_from_scratch(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(backbones, "package_weights_dir", lambda: tmp_path / "shipped")
    monkeypatch.setenv("LINNAEUS_WEIGHTS", str(tmp_path / "none"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr("platformdirs.user_data_path", lambda *a, **k: tmp_path / "data")
    assert TrainConfig().resolved().model == "small-resnet"
    with pytest.raises(
        WeightsNotFound, match=r"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0\.5"
    ):
        TrainConfig(model="quick").resolved()


def test_pretraining_initialises_the_classifier(tmp_path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 16, "square": 16})
    config = TrainConfig(model="pretrain", epochs=2, pretrain_epochs=2, **SMALL)
    result = train(store, config)
    assert result.version.status == "done" and result.version.kind == "pretrain"
    assert (result.version.folder / "pretrain" / CHECKPOINT_FILE).exists()


def test_training_stores_predictions_for_every_readable_image(tmp_path) -> None:
    from linnaeus.engine.project.predictions import load_predictions

    store = make_shapes_project(tmp_path, {"disk": 12, "square": 12})
    (store.image_root / "unlabelled.png").write_bytes(
        (store.image_root / "disk" / "disk_000.png").read_bytes()
    )
    import_images(store)
    result = train(store, TrainConfig(model="seed-cnn", epochs=1, **SMALL))
    ids, probabilities = load_predictions(store, result.version.id)
    assert len(ids) == 25  # the unlabelled image too
    assert probabilities.shape == (25, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_mixup_blends_images_and_their_targets_alike(tmp_path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 8, "square": 8})
    loaded = load_pixels(store, collect_examples(store), InputFormat(32))
    positions = np.arange(len(loaded.rows))
    plain, _ = make_dataset(loaded, positions, num_classes=2, batch_size=16, shuffle=True)
    mixed, _ = make_dataset(loaded, positions, num_classes=2, batch_size=16, shuffle=True,
                            mixup=0.4)  # fmt: skip
    images, targets, weights = (t.numpy() for t in next(iter(mixed)))
    plain_images, plain_targets, _ = (t.numpy() for t in next(iter(plain)))
    assert images.dtype == np.uint8 and not np.array_equal(images, plain_images)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    assert (targets.max(axis=1) >= 0.5).all()  # each image keeps the larger share
    assert (targets.argmax(axis=1) == plain_targets.argmax(axis=1)).all()
    np.testing.assert_allclose(weights, 1.0)


def test_accurate_model_fine_tunes_the_backbone_after_the_quick_head(tmp_path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 12, "square": 12})
    config = TrainConfig(model="accurate", image_size=32, epochs=1, batch_size=8)
    quick = train(store, TrainConfig(model="quick", image_size=32)).version
    before = keras.models.load_model(quick.model_file).get_layer("backbone").get_weights()
    result = train(store, config)
    assert result.version.status == "done" and result.version.kind == "accurate"
    assert "fine-tune_loss" in result.version.curves and "head_val_loss" in result.version.curves
    after = keras.models.load_model(result.version.model_file).get_layer("backbone").get_weights()
    changed = [not np.array_equal(a, b) for a, b in zip(before, after, strict=True)]
    assert any(changed) and not all(changed)  # BatchNormalization stays frozen
