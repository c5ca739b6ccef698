"""Model builders: uint8 input, the standard ending, CAM, features, backbones, autoencoder."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.training import backbones
from linnaeus.engine.training.backbones import BACKBONES
from linnaeus.engine.training.backbones import WeightsNotFound
from linnaeus.engine.training.backbones import available_backbones
from linnaeus.engine.training.backbones import find_weights
from linnaeus.engine.training.backbones import package_weights_dir
from linnaeus.engine.training.backbones import weight_search_dirs
from linnaeus.engine.training.models import HEAD_LAYER_NAMES
from linnaeus.engine.training.models import ModelSpec
from linnaeus.engine.training.models import build_autoencoder
from linnaeus.engine.training.models import build_classifier
from linnaeus.engine.training.models import copy_encoder_weights
from linnaeus.engine.training.models import embedding_model
from linnaeus.engine.training.models import feature_layer_names
from linnaeus.engine.training.models import features_model
from linnaeus.engine.training.models import set_backbone_trainable

SMALL = "mobilenet_v2_0.35"
SHIPPED = package_weights_dir()  # resources/weights: MobileNetV2 0.5 and 0.35
MOBILENET_V2_TAPS = [
    "block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
    "block_13_expand_relu", "out_relu",
]  # fmt: skip


def pixels(n: int, size: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels), dtype="uint8")


def predict(model: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    out = model(x, training=False)
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]


@pytest.fixture
def isolated_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No weights anywhere: the shipped folder, env, app folder and Keras cache all
    point into tmp_path."""
    monkeypatch.setattr(backbones, "package_weights_dir", lambda: tmp_path / "package")
    monkeypatch.setenv("LINNAEUS_WEIGHTS", str(tmp_path / "env"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(backbones, "app_weights_dir", lambda: tmp_path / "app")
    return tmp_path


@pytest.fixture(scope="module")
def transfer_model() -> Iterator[keras.Model]:
    keras.utils.set_random_seed(0)
    yield build_classifier(ModelSpec("transfer", 3, image_size=64, backbone=SMALL))


@pytest.mark.parametrize("kind", ["seed-cnn", "small-resnet"])
def test_from_scratch_models_predict_probabilities_from_uint8(kind: str) -> None:
    model = build_classifier(ModelSpec(kind, 4, image_size=40, channels=1))
    assert model.inputs[0].dtype == "uint8" and model.inputs[0].name == "image"
    assert [la.name for la in model.layers[-4:]] == list(HEAD_LAYER_NAMES)
    assert model.get_layer("logits").get_config()["activation"] == "linear"
    (probs,) = predict(model, pixels(3, 40, 1))
    assert probs.shape == (3, 4) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["seed-cnn", "small-resnet"])
def test_class_activation_map_reproduces_the_logits(kind: str) -> None:
    model = build_classifier(ModelSpec(kind, 3, image_size=48))
    last = feature_layer_names(model)[-1]
    both = keras.Model(
        model.inputs[0], [model.get_layer(last).output, model.get_layer("logits").output]
    )
    maps, logits = predict(both, pixels(2, 48, seed=1))
    kernel, bias = model.get_layer("logits").get_weights()
    cams = maps @ kernel + bias  # (n, h, w, classes): one map per class
    np.testing.assert_allclose(cams.mean(axis=(1, 2)), logits, rtol=1e-4, atol=1e-5)


def test_featurewise_stats_replace_the_rescaling() -> None:
    mean, std = [100.0, 110.0, 120.0], [50.0, 60.0, 70.0]
    model = build_classifier(ModelSpec("seed-cnn", 2, image_size=32), mean=mean, std=std)
    scaled = keras.Model(model.inputs[0], model.get_layer("preprocess").output)
    x = pixels(2, 32, seed=2)
    (got,) = predict(scaled, x)
    np.testing.assert_allclose(got, (x - np.array(mean)) / np.array(std), rtol=1e-5, atol=1e-5)
    _, encoder = build_autoencoder(ModelSpec("seed-cnn", 2, image_size=32), mean=mean, std=std)
    (pretrained,) = predict(
        keras.Model(encoder.inputs[0], encoder.get_layer("preprocess").output), x
    )
    np.testing.assert_array_equal(pretrained, got)
    plain = build_classifier(ModelSpec("seed-cnn", 2, image_size=32))
    (got,) = predict(keras.Model(plain.inputs[0], plain.get_layer("preprocess").output), x)
    np.testing.assert_allclose(got, x / 255.0, atol=1e-6)
    with pytest.raises(LinnaeusError, match="positive"):
        build_classifier(ModelSpec("seed-cnn", 2, image_size=32), mean=mean, std=[1.0, 0.0, 1.0])


def test_builds_are_reproducible_given_the_seed() -> None:
    def build(seed: int) -> keras.Model:
        keras.utils.set_random_seed(seed)
        return build_classifier(ModelSpec("small-resnet", 3, image_size=32))

    a, b, c = build(5), build(5), build(6)
    assert [la.name for la in a.layers] == [la.name for la in b.layers]
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_layer("stem_conv").kernel, c.get_layer("stem_conv").kernel)


@pytest.mark.parametrize(("kind", "dims"), [("seed-cnn", 64), ("small-resnet", 128)])
def test_features_and_embedding_models(kind: str, dims: int) -> None:
    model = build_classifier(ModelSpec(kind, 3, image_size=64))
    names = feature_layer_names(model)
    assert names == [f"block{i}" for i in range(1, len(names) + 1)]
    _check_features_model(model, names, dims, size=64)


def _check_features_model(model: keras.Model, names: list[str], dims: int, size: int) -> None:
    x = pixels(2, size, seed=3)
    *maps, probs = predict(features_model(model), x)
    assert len(maps) == len(names)
    assert all(m.ndim == 4 for m in maps)
    sides = [m.shape[1] for m in maps]
    assert sides == sorted(sides, reverse=True)
    (expected,) = predict(model, x)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    (embedding,) = predict(embedding_model(model), x)
    assert embedding.shape == (2, dims)
    # The last feature map is what "gap" pools.
    np.testing.assert_allclose(maps[-1].mean(axis=(1, 2)), embedding, rtol=1e-4, atol=1e-5)


def test_transfer_model_has_a_nested_frozen_backbone(transfer_model: keras.Model) -> None:
    assert [la.name for la in transfer_model.layers] == [
        "image", "preprocess", "backbone", *HEAD_LAYER_NAMES,
    ]  # fmt: skip
    (probs,) = predict(transfer_model, pixels(2, 64))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert transfer_model.get_layer("backbone").trainable_weights == []
    assert feature_layer_names(transfer_model) == MOBILENET_V2_TAPS
    _check_features_model(transfer_model, MOBILENET_V2_TAPS, dims=1280, size=64)


def test_transfer_loads_the_official_weight_file(transfer_model: keras.Model) -> None:
    backbone = transfer_model.get_layer("backbone")
    # The official file is a Keras 2.1 file with Keras 2.1 layer names.
    pairs = [
        ("Conv1", "Conv1", "Conv1/kernel:0", "kernel"),
        ("block_16_project_BN", "bn16_conv_16_bn_project",
         "bn16_conv_16_bn_project/moving_variance:0", "moving_variance"),
        ("Conv_1_bn", "Conv_1_bn", "Conv_1_bn/gamma:0", "gamma"),
    ]  # fmt: skip
    with h5py.File(SHIPPED / BACKBONES[SMALL].file_name, "r") as f:
        for layer_name, group, dataset, attribute in pairs:
            loaded = np.asarray(getattr(backbone.get_layer(layer_name), attribute))
            np.testing.assert_array_equal(loaded, f[group][dataset][()])


# Keras 3.15 saving under NumPy 2 warns from its own code (np.array on a tf.Variable).
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_saved_transfer_model_reloads_with_its_backbone_and_taps(
    transfer_model: keras.Model, tmp_path: Path
) -> None:
    set_backbone_trainable(transfer_model, 0.5)
    try:
        transfer_model.save(tmp_path / "model.keras")
        reloaded = keras.saving.load_model(tmp_path / "model.keras")
    finally:
        set_backbone_trainable(transfer_model, 0.0)
    x = pixels(2, 64, seed=4)
    np.testing.assert_allclose(predict(reloaded, x)[0], predict(transfer_model, x)[0], atol=1e-6)
    assert feature_layer_names(reloaded) == MOBILENET_V2_TAPS
    assert len(features_model(reloaded).outputs) == len(MOBILENET_V2_TAPS) + 1
    assert reloaded.get_layer("backbone").trainable_weights  # the unfrozen top layers


@pytest.mark.parametrize("key", [k for k in BACKBONES if k != SMALL])
def test_missing_weights_name_the_file_and_every_folder(key: str, isolated_dirs: Path) -> None:
    spec = ModelSpec("transfer", 2, image_size=BACKBONES[key].min_size, backbone=key)
    with pytest.raises(WeightsNotFound) as caught:
        build_classifier(spec)
    message = str(caught.value)
    file_name = BACKBONES[key].file_name
    assert file_name in message
    for folder in (
        isolated_dirs / "env",
        isolated_dirs / "app",
        isolated_dirs / "keras" / "models",
    ):
        assert str(folder) in message
    assert f"copy {file_name} into {isolated_dirs / 'app'}" in message
    assert caught.value.file_name == file_name


def test_weight_search_order_and_discovery(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = isolated_dirs / "env", isolated_dirs / "env2"
    monkeypatch.setenv("LINNAEUS_WEIGHTS", os.pathsep.join([str(first), "", str(second)]))
    dirs = weight_search_dirs()
    assert dirs == [
        isolated_dirs / "package", first, second, isolated_dirs / "app",
        isolated_dirs / "keras" / "models",
    ]  # fmt: skip
    assert available_backbones() == []
    name = BACKBONES[SMALL].file_name
    for folder in (second, isolated_dirs / "keras" / "models"):
        folder.mkdir(parents=True)
        (folder / name).write_bytes(b"h5")
    assert find_weights(SMALL) == second / name  # the environment's before the Keras cache
    (isolated_dirs / "package").mkdir()
    (isolated_dirs / "package" / name).write_bytes(b"h5")
    assert find_weights(SMALL) == isolated_dirs / "package" / name  # the shipped ones first
    assert available_backbones() == [SMALL]
    with pytest.raises(LinnaeusError, match="Unknown backbone"):
        find_weights("resnet_9000")


def test_the_official_mobilenet_v2_weights_ship_and_are_found_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = (SHIPPED / "weights.sha256").read_text().splitlines()
    official = dict(reversed(line.split()) for line in listed)
    assert sorted(official) == sorted(
        BACKBONES[key].file_name for key in ("mobilenet_v2_0.5", "mobilenet_v2_0.35")
    )
    for name, digest in official.items():
        assert hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest() == digest
    assert "Apache License" in (SHIPPED / "LICENSE").read_text()
    # A same-named file elsewhere never wins over the shipped one.
    (tmp_path / BACKBONES["mobilenet_v2_0.5"].file_name).write_bytes(b"not the official file")
    monkeypatch.setenv("LINNAEUS_WEIGHTS", str(tmp_path))
    assert weight_search_dirs()[0] == SHIPPED
    assert find_weights("mobilenet_v2_0.5") == SHIPPED / BACKBONES["mobilenet_v2_0.5"].file_name
    assert {"mobilenet_v2_0.5", "mobilenet_v2_0.35"} <= set(available_backbones())


def test_backbones_module_imports_neither_keras_nor_tensorflow() -> None:
    code = (
        "import sys, linnaeus.engine.training.backbones as b; b.available_backbones(); "
        "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_set_backbone_trainable_unfreezes_the_top_layers_but_never_batchnorm(
    transfer_model: keras.Model,
) -> None:
    backbone = transfer_model.get_layer("backbone")
    bn = keras.layers.BatchNormalization
    tunable = [la for la in backbone.layers if la.weights and not isinstance(la, bn)]
    try:
        for fraction in (1.0, 0.25):
            set_backbone_trainable(transfer_model, fraction)
            trainable = [la for la in tunable if la.trainable_weights]
            assert trainable == tunable[len(tunable) - round(fraction * len(tunable)) :]
            assert not any(la.trainable for la in backbone.layers if isinstance(la, bn))
        set_backbone_trainable(transfer_model, 0.0)
        assert backbone.trainable_weights == []
        assert [w.path for w in transfer_model.trainable_weights] == [
            "logits/kernel",
            "logits/bias",
        ]
        with pytest.raises(LinnaeusError):
            set_backbone_trainable(transfer_model, 1.5)
    finally:
        set_backbone_trainable(transfer_model, 0.0)
    with pytest.raises(LinnaeusError, match="no ImageNet backbone"):
        set_backbone_trainable(build_classifier(ModelSpec("seed-cnn", 2, image_size=32)), 0.5)


@pytest.mark.parametrize("kind", ["seed-cnn", "small-resnet"])
def test_autoencoder_pretrains_the_classifier_trunk(kind: str) -> None:
    spec = ModelSpec(kind, 2, image_size=36, channels=1)  # 36 is not a multiple of 8: cropped
    autoencoder, encoder = build_autoencoder(spec)
    (reconstruction,) = predict(autoencoder, pixels(2, 36, 1))
    assert reconstruction.shape == (2, 36, 36, 1) and reconstruction.dtype == np.float32
    assert reconstruction.min() >= 0.0 and reconstruction.max() <= 1.0
    classifier = build_classifier(spec)
    last = classifier.get_layer(feature_layer_names(classifier)[-1])
    assert encoder.outputs[0].shape == last.output.shape
    weighted = [la for la in encoder.layers if la.weights]
    assert copy_encoder_weights(encoder, classifier) == len(weighted) > 0
    for layer in weighted:
        for a, b in zip(
            layer.get_weights(), classifier.get_layer(layer.name).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(LinnaeusError, match="other shapes"):
        copy_encoder_weights(encoder, build_classifier(ModelSpec(kind, 2, image_size=36)))


def test_autoencoder_is_for_from_scratch_models_only() -> None:
    with pytest.raises(LinnaeusError, match="from-scratch"):
        build_autoencoder(ModelSpec("transfer", 2, image_size=64, backbone=SMALL))


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec("seed-cnn", 2),
        ModelSpec("small-resnet", 5, image_size=256, channels=1, dropout=0.3, l1=1e-5, l2=1e-4),
        ModelSpec("transfer", 3, image_size=224, backbone="inception_v3", activation="relu"),
    ],
)
def test_spec_round_trips_through_json(spec: ModelSpec) -> None:
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"kind": "vgg", "num_classes": 2}, "unknown kind"),
        ({"kind": "seed-cnn", "num_classes": 1}, "num_classes"),
        ({"kind": "seed-cnn", "num_classes": "2"}, "whole number"),
        ({"kind": "seed-cnn", "num_classes": 2, "channels": 2}, "channels"),
        ({"kind": "seed-cnn", "num_classes": 2, "image_size": 16}, "image_size"),
        ({"kind": "seed-cnn", "num_classes": 2, "backbone": SMALL}, "no backbone"),
        ({"kind": "transfer", "num_classes": 2}, "needs a backbone"),
        ({"kind": "transfer", "num_classes": 2, "backbone": "vgg16"}, "Unknown backbone"),
        ({"kind": "transfer", "num_classes": 2, "backbone": SMALL, "channels": 1}, "3 channels"),
        ({"kind": "transfer", "num_classes": 2, "backbone": "inception_v3", "image_size": 64},
         "image_size"),
        ({"kind": "seed-cnn", "num_classes": 2, "activation": "wiggle"}, "activation"),
        ({"kind": "seed-cnn", "num_classes": 2, "dropout": 1.0}, "dropout"),
        ({"kind": "seed-cnn", "num_classes": 2, "l2": -0.1}, "l2"),
        ({"kind": "seed-cnn", "num_classes": 2, "depth": 3}, "Unknown model spec field"),
        ({"num_classes": 2}, "lacks required"),
    ],
)  # fmt: skip
def test_spec_validation_says_what_is_wrong(fields: dict, complaint: str) -> None:
    with pytest.raises(LinnaeusError, match=complaint):
        ModelSpec.from_dict(fields)


@pytest.mark.parametrize("kind", ["seed-cnn", "small-resnet", "transfer"])
def test_mixed_precision_builds_and_keeps_float32_probabilities(kind: str) -> None:
    backbone = SMALL if kind == "transfer" else None
    weights = SHIPPED / BACKBONES[SMALL].file_name if backbone else None
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        spec = ModelSpec(kind, 3, image_size=32, backbone=backbone)
        model = build_classifier(spec, mean=None, backbone_weights=weights)
        assert model.get_layer("logits").compute_dtype == "float16"
        (probs,) = predict(model, pixels(2, 32))
        assert probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    finally:
        keras.mixed_precision.set_global_policy("float32")


# Official files for the backbones absent here: written in the legacy HDF5 layout
# from a randomly initialised application, then loaded by the builder.
_APPLICATIONS = {
    "mobilenet_v3_small": ("MobileNetV3Small", {"include_preprocessing": False}, "conv_1"),
    "mobilenet_v3_large": ("MobileNetV3Large", {"include_preprocessing": False}, "conv_1"),
    "efficientnet_b0": ("EfficientNetB0", {}, "stem_conv"),
    "inception_v3": ("InceptionV3", {}, "mixed10"),
}


def _write_legacy_weights(model: keras.Model, path: Path) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [la.name.encode() for la in model.layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.4.0"
        for layer in model.layers:
            group = f.create_group(layer.name)
            values = [np.asarray(w) for w in layer.trainable_weights + layer.non_trainable_weights]
            group.attrs["weight_names"] = [f"w{i}".encode() for i in range(len(values))]
            for i, value in enumerate(values):
                group.create_dataset(f"w{i}", data=value)


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(_APPLICATIONS))
def test_other_backbones_build_from_their_official_files(
    key: str, isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = BACKBONES[key]
    class_name, options, probe = _APPLICATIONS[key]
    size = info.min_size
    source = getattr(keras.applications, class_name)(
        include_top=False, weights=None, input_shape=(size, size, 3), **options
    )
    folder = isolated_dirs / "env"
    folder.mkdir()
    _write_legacy_weights(source, folder / info.file_name)
    model = build_classifier(ModelSpec("transfer", 2, image_size=size, backbone=key))
    backbone = model.get_layer("backbone")
    probe_layer = source.get_layer(probe)
    if probe_layer.weights:
        np.testing.assert_array_equal(
            backbone.get_layer(probe).get_weights()[0], probe_layer.get_weights()[0]
        )
    if key == "efficientnet_b0":  # the imagenet-only Rescaling(1/sqrt(std)), folded in
        loaded, saved = (
            next(la for la in m.layers if isinstance(la, keras.layers.Normalization))
            for m in (backbone, source)
        )
        np.testing.assert_allclose(
            np.asarray(loaded.adapt_variance),
            np.asarray(saved.adapt_variance) * np.array([0.229, 0.224, 0.225]),
            rtol=1e-6,
        )
    names = feature_layer_names(model)
    assert names[-1] == backbone.layers[-1].name
    assert len(names) >= 3
    _check_features_model(model, names, dims=int(backbone.outputs[0].shape[-1]), size=size)
