"""ONNX export: the contract's outputs, parity with Keras, metadata, int8, safe writing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import onnx
import onnx.utils
import onnxruntime
import pytest
from onnx import TensorProto
from onnx import helper

from linnaeus.engine import __version__
from linnaeus.engine import atomic
from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import DiskFullError
from linnaeus.engine.evaluation.version import calibrate_version
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.preprocess import prepare_image
from linnaeus.engine.onnx import export as onnx_export
from linnaeus.engine.onnx.export import ExportError
from linnaeus.engine.onnx.export import ExportReport
from linnaeus.engine.onnx.export import export_onnx
from linnaeus.engine.onnx.export import export_version
from linnaeus.engine.onnx.format import CAM
from linnaeus.engine.onnx.format import FORMAT_VERSION
from linnaeus.engine.onnx.format import INPUT_NAME
from linnaeus.engine.onnx.format import LOGITS
from linnaeus.engine.onnx.format import METADATA_KEY
from linnaeus.engine.onnx.format import OOD_SCORE
from linnaeus.engine.onnx.format import PROBABILITIES
from linnaeus.engine.onnx.format import Int8Check
from linnaeus.engine.onnx.format import ModelFileError
from linnaeus.engine.onnx.format import OnnxMetadata
from linnaeus.engine.onnx.format import feature_output_name
from linnaeus.engine.onnx.format import output_names
from linnaeus.engine.onnx.format import read_metadata
from linnaeus.engine.onnx.inference import Classifier
from linnaeus.engine.onnx.unfamiliar import Familiarity
from linnaeus.engine.onnx.unfamiliar import kept_bank
from linnaeus.engine.onnx.unfamiliar import knn_scores
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.engine.sessions import session_options
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.models import embedding_model
from linnaeus.engine.training.models import feature_layer_names
from linnaeus.engine.training.models import features_model
from tests.training_factory import trained_shapes_project


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ProjectStore, ModelVersion]]:
    folder = tmp_path_factory.mktemp("onnx")
    store, version = trained_shapes_project(folder, {"disk": 24, "square": 24})
    yield store, version
    store.close()


@pytest.fixture(scope="module")
def exported(project: tuple[ProjectStore, ModelVersion]) -> tuple[ExportReport, list[Progress]]:
    store, version = project
    reports: list[Progress] = []
    destination = store.project_dir / "exports" / "shapes.onnx"
    destination.parent.mkdir()
    return export_onnx(store, version, destination, on_progress=reports.append), reports


@pytest.fixture(scope="module")
def keras_model(project: tuple[ProjectStore, ModelVersion]) -> keras.Model:
    return keras.models.load_model(project[1].model_file, compile=False)


def project_images(store: ProjectStore, version: ModelVersion, count: int = 12) -> np.ndarray:
    """Prepared pixels of some of the images the version was trained on."""
    fmt = TrainConfig.from_dict(version.config).input_format
    ids = sorted(versions.label_snapshot(store, version.id))[:count]
    paths = [store.image_root / store.image(i).path for i in ids]
    return np.stack([prepare_image(read_image(p).pixels, fmt) for p in paths])


def run_onnx(path: Path | bytes, images: np.ndarray) -> dict[str, np.ndarray]:
    model = str(path) if isinstance(path, Path) else path
    session = onnxruntime.InferenceSession(
        model, session_options(), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {INPUT_NAME: images}), strict=True))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- the exported file -------------------------------------------------------------------


def test_export_writes_the_contract_metadata_and_a_keras_copy(project, exported) -> None:
    store, version = project
    report, progress = exported
    assert report.path.is_file() and report.size_bytes == report.path.stat().st_size
    assert report.keras_path == report.path.with_suffix(".keras")
    assert report.keras_path.read_bytes() == version.model_file.read_bytes()
    assert not report.int8 and report.int8_accuracy_change is None
    assert sorted(p.name for p in report.path.parent.iterdir()) == ["shapes.keras", "shapes.onnx"]
    if os.name == "posix":
        assert report.path.stat().st_mode & 0o777 == 0o644
    metadata = read_metadata(report.path)
    assert metadata.unfamiliar is not None and metadata.unfamiliar["method"] == "knn-cosine"
    assert read_metadata(report.path) == OnnxMetadata(
        format_version=FORMAT_VERSION,
        classes=["disk", "square"],
        input_format={"size": 32, "channels": 3, "resize": "stretch", "binarize": False},
        feature_outputs=["features_1", "features_2", "features_3", "features_4"],
        feature_layers=["block1", "block2", "block3", "block4"],
        threshold=None,
        positive_class=None,
        temperature=1.0,
        model_version=version.name,
        model_kind="seed-cnn",
        project_id=store.meta("project_id"),
        trained_at=version.finished_at,
        metrics=version.metrics,
        linnaeus_version=__version__,
        int8=False,
        unfamiliar=metadata.unfamiliar,
    )
    model = onnx.load(report.path)
    (image,) = model.graph.input
    assert image.name == INPUT_NAME and image.type.tensor_type.elem_type == TensorProto.UINT8
    dims = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
    assert dims == ["N", 32, 32, 3]
    assert [o.name for o in model.graph.output] == [*output_names(4), OOD_SCORE]
    assert progress[-1].done == progress[-1].total and progress[-1].stage == "export"
    assert any(p.stage == "decode" for p in progress)


def test_onnx_matches_keras_on_project_images(project, exported, keras_model) -> None:
    store, version = project
    report, _ = exported
    assert report.max_abs_difference < 1e-4
    assert report.images_checked == 48  # every image of the snapshot: fewer than 64
    images = project_images(store, version, count=48)
    outputs = run_onnx(report.path, images)
    expected = keras_model.predict(images, verbose=0)
    np.testing.assert_allclose(outputs[PROBABILITIES], expected, atol=1e-5)
    assert outputs[PROBABILITIES].dtype == np.float32


def test_the_exported_ood_score_is_the_engines_on_keras_features(
    project, exported, keras_model
) -> None:
    store, version = project
    report, _ = exported
    images = project_images(store, version)
    familiarity = Familiarity.from_dict(read_metadata(report.path).unfamiliar)
    gap = np.asarray(embedding_model(keras_model)(images, training=False), np.float32)
    bank = kept_bank(onnx.load(report.path))
    assert familiarity.bank_images == len(bank) > 0 and familiarity.cut_images > 0
    expected = knn_scores(gap, bank, familiarity.neighbours)
    np.testing.assert_allclose(run_onnx(report.path, images)[OOD_SCORE], expected, atol=1e-4)
    scores = Classifier(report.path).ood_scores(images)
    np.testing.assert_allclose(scores, expected, atol=1e-4)


def test_cam_averages_to_the_logits_and_equals_tensorflow_cam(
    project, exported, keras_model
) -> None:
    store, version = project
    images = project_images(store, version)
    outputs = run_onnx(exported[0].path, images)
    cam, logits = outputs[CAM], outputs[LOGITS]
    assert cam.shape == (len(images), 8, 8, 2)
    np.testing.assert_allclose(cam.mean(axis=(1, 2)), logits, rtol=1e-5, atol=1e-5)

    last_map = np.asarray(features_model(keras_model)(images, training=False)[-2])
    dense = keras_model.get_layer("logits")
    kernel, bias = (np.asarray(w) for w in dense.get_weights())
    tf_cam = np.einsum("nhwc,ck->nhwk", last_map, kernel) + bias
    scale = np.abs(tf_cam).max()
    np.testing.assert_allclose(cam, tf_cam, rtol=1e-4, atol=1e-4 * scale)


def test_feature_outputs_are_the_feature_layers_maps(project, exported, keras_model) -> None:
    store, version = project
    images = project_images(store, version, count=4)
    outputs = run_onnx(exported[0].path, images)
    names = feature_layer_names(keras_model)
    *maps, _ = features_model(keras_model)(images, training=False)
    assert len(maps) == len(names) == 4
    for i, expected in enumerate(maps, start=1):
        got = outputs[feature_output_name(i)]
        assert got.shape == tuple(expected.shape) and got.dtype == np.float32
        np.testing.assert_allclose(got, np.asarray(expected), atol=1e-4)


def test_temperature_and_threshold_are_baked_in(project, exported, tmp_path) -> None:
    store, version = project
    path = tmp_path / "tempered.onnx"
    export_onnx(store, version, path, temperature=2.0, threshold=0.3, positive_class="disk")
    info = read_metadata(path)
    assert (info.temperature, info.threshold, info.positive_class) == (2.0, 0.3, "disk")
    images = project_images(store, version)
    tempered = run_onnx(path, images)
    np.testing.assert_allclose(
        tempered[PROBABILITIES], softmax(tempered[LOGITS].astype(np.float64) / 2.0), atol=1e-6
    )
    plain = run_onnx(exported[0].path, images)
    np.testing.assert_allclose(tempered[LOGITS], plain[LOGITS], atol=1e-6)


def test_export_version_bakes_in_the_calibration_it_is_evaluated_with(project, tmp_path) -> None:
    store, version = project
    calibration = calibrate_version(store, version)

    report = export_version(store, version, tmp_path / "calibrated.onnx")

    info = read_metadata(report.path)
    assert info.temperature == pytest.approx(calibration["temperature"])
    assert info.threshold is not None  # two classes: the threshold chosen on validation
    assert info.threshold == pytest.approx(calibration["threshold"])
    assert info.positive_class == calibration["positive_class"] == "square"


def test_classification_copy_pools_before_elu_and_gives_the_same_probabilities(
    project, exported
) -> None:
    store, version = project
    path = exported[0].path
    cut = onnx.utils.Extractor(onnx.load(path)).extract_model([INPUT_NAME], [PROBABILITIES])
    producers = {out: node.op_type for node in cut.graph.node for out in node.output}
    pools = [node for node in cut.graph.node if node.op_type == "MaxPool"]
    assert len(pools) == 2
    assert all(producers.get(pool.input[0]) != "Elu" for pool in pools)
    images = project_images(store, version)
    np.testing.assert_allclose(
        run_onnx(cut.SerializeToString(), images)[PROBABILITIES],
        run_onnx(path, images)[PROBABILITIES],
        atol=1e-6,
    )


# --- int8 ----------------------------------------------------------------------------


def test_int8_export_keeps_the_contract_and_reports_the_accuracy_change(
    project, exported, tmp_path
) -> None:
    store, version = project
    path = tmp_path / "int8.onnx"
    report = export_onnx(store, version, path, int8=True)
    assert report.int8 and isinstance(report.int8_accuracy_change, float)
    assert -1.0 <= report.int8_accuracy_change <= 1.0
    assert report.max_abs_difference < 1e-4  # the float model's check, before quantising
    check = report.int8_check
    assert check is not None and check.accuracy_change == report.int8_accuracy_change
    assert 0.0 <= check.agreement <= 1.0 and check.images >= 1
    metadata = read_metadata(path)
    assert Int8Check.from_dict(metadata.int8_check) == check  # predict shows it
    assert metadata == replace(
        read_metadata(exported[0].path), int8=True, int8_check=metadata.int8_check
    )
    model = onnx.load(path)
    assert {"QLinearConv", "ConvInteger", "QuantizeLinear"} & {n.op_type for n in model.graph.node}
    assert [o.name for o in model.graph.output] == [*output_names(4), OOD_SCORE]
    images = project_images(store, version)
    int8, float_ = run_onnx(path, images), run_onnx(exported[0].path, images)
    assert int8[PROBABILITIES].dtype == np.float32
    np.testing.assert_allclose(int8[PROBABILITIES], float_[PROBABILITIES], atol=0.1)


# --- failures ------------------------------------------------------------------------


def test_a_failure_while_writing_leaves_nothing(project, tmp_path, monkeypatch) -> None:
    store, version = project

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    with pytest.raises(DiskFullError, match=f"^The disk holding {tmp_path} is full: .+ again"):
        export_onnx(store, version, tmp_path / "model.onnx", parity_images=4)
    assert list(tmp_path.iterdir()) == []


def test_a_parity_failure_writes_nothing(project, tmp_path, monkeypatch) -> None:
    store, version = project
    monkeypatch.setattr(onnx_export, "PARITY_TOLERANCE", -1.0)
    with pytest.raises(ExportError, match="differs from the trained model"):
        export_onnx(store, version, tmp_path / "model.onnx", parity_images=4)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"destination": "model.txt"}, "must end in .onnx"),
        ({"destination": "missing/model.onnx"}, "does not exist"),
        ({"temperature": 0.0}, "temperature must be a positive number"),
        ({"threshold": 1.5}, "between 0 and 1"),
        ({"positive_class": "triangle"}, "not one of the model's classes"),
        ({"parity_images": 0}, "at least one image"),
    ],
)
def test_bad_export_requests_are_refused(project, tmp_path, arguments, message) -> None:
    store, version = project
    arguments = {"destination": "model.onnx", **arguments}
    destination = tmp_path / arguments.pop("destination")
    with pytest.raises(ExportError, match=message):
        export_onnx(store, version, destination, **arguments)
    assert not destination.exists()


def test_a_cancelled_export_leaves_nothing(project, tmp_path) -> None:
    store, version = project
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        export_onnx(store, version, tmp_path / "model.onnx", cancel=token)
    assert list(tmp_path.iterdir()) == []


def test_an_unfinished_version_cannot_be_exported(project, tmp_path) -> None:
    store, version = project
    unfinished = versions.create_version(
        store, kind="seed-cnn", config=version.config, augmentation={}, classes=version.classes,
        labels={},
    )  # fmt: skip
    with pytest.raises(ExportError, match="did not finish training"):
        export_onnx(store, unfinished, tmp_path / "model.onnx")
    versions.delete_version(store, unfinished.id)


# --- reading the metadata ------------------------------------------------------------


def test_read_metadata_refuses_damaged_and_foreign_files(exported, tmp_path) -> None:
    data = exported[0].path.read_bytes()
    halved = tmp_path / "halved.onnx"
    halved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        read_metadata(halved)
    tail_cut = tmp_path / "tail.onnx"
    tail_cut.write_bytes(data[: data.rfind(METADATA_KEY.encode()) - 8])
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        read_metadata(tail_cut)

    noise = tmp_path / "noise.onnx"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ModelFileError, match=r"not an ONNX model|damaged or truncated"):
        read_metadata(noise)

    identity = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])], "foreign",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
    )  # fmt: skip
    foreign = tmp_path / "foreign.onnx"
    onnx.save(identity, foreign)
    with pytest.raises(ModelFileError, match=r"not a Linnaeus model.*another tool"):
        read_metadata(foreign)

    with pytest.raises(ModelFileError, match="no model file"):
        read_metadata(tmp_path / "absent.onnx")


def rewrite_metadata(source: Path, destination: Path, **changes: object) -> Path:
    model = onnx.load(source)
    props = {p.key: p.value for p in model.metadata_props}
    props[METADATA_KEY] = json.dumps({**json.loads(props[METADATA_KEY]), **changes})
    del model.metadata_props[:]
    helper.set_model_props(model, props)
    onnx.save(model, destination)
    return destination


def test_read_metadata_refuses_newer_and_inconsistent_models(exported, tmp_path) -> None:
    path = exported[0].path
    newer = rewrite_metadata(path, tmp_path / "newer.onnx", format_version=FORMAT_VERSION + 1)
    with pytest.raises(ModelFileError, match=rf"newer Linnaeus.*format {FORMAT_VERSION + 1}"):
        read_metadata(newer)
    fewer = rewrite_metadata(
        path, tmp_path / "fewer.onnx", feature_outputs=["features_1"], feature_layers=["block1"]
    )
    with pytest.raises(ModelFileError, match="its outputs are probabilities, logits, cam"):
        read_metadata(fewer)
    resized = rewrite_metadata(
        path, tmp_path / "resized.onnx", input_format={"size": 64, "channels": 3}
    )
    with pytest.raises(ModelFileError, match="takes 32 x 32 x 3 images"):
        read_metadata(resized)
    garbled = tmp_path / "garbled.onnx"
    model = onnx.load(path)
    next(p for p in model.metadata_props if p.key == METADATA_KEY).value = "{not json"
    onnx.save(model, garbled)
    with pytest.raises(ModelFileError, match="not readable JSON"):
        read_metadata(garbled)


def test_session_options_use_every_optimisation_and_the_given_threads() -> None:
    options = session_options(3)
    assert options.intra_op_num_threads == 3
    assert options.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert session_options().intra_op_num_threads >= 1


# --- a transfer model with real ImageNet weights ---------------------------------------


def test_a_quick_transfer_model_exports_with_parity(tmp_path) -> None:
    config = TrainConfig(
        model="quick", backbone="mobilenet_v2_0.35", epochs=2, image_size=64, batch_size=16,
        augmentation=PRESETS["none"],
    )  # fmt: skip
    store, version = trained_shapes_project(tmp_path, {"disk": 16, "square": 16}, config)
    report = export_onnx(store, version, tmp_path / "quick.onnx")
    assert report.max_abs_difference < 1e-4 and report.images_checked == 32
    info = read_metadata(report.path)
    assert info.model_kind == "quick" and len(info.feature_outputs) == 5
    assert info.feature_layers[-1] == "out_relu"
    outputs = run_onnx(report.path, project_images(store, version, count=4))
    assert outputs[feature_output_name(5)].shape == (4, 2, 2, 1280)
    np.testing.assert_allclose(
        outputs[CAM].mean(axis=(1, 2)), outputs[LOGITS], rtol=1e-5, atol=1e-5
    )
    store.close()
