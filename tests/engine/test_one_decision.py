"""A trained and exported version decides every image as its evaluation says: predict
agrees image by image, a threshold saved with the version reaches the exported
model, and a perfectly separated validation split still exports and predicts."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from linnaeus.engine.evaluation.version import calibrate_version
from linnaeus.engine.evaluation.version import evaluate_version
from linnaeus.engine.evaluation.version import version_predictions
from linnaeus.engine.onnx.export import export_version
from linnaeus.engine.onnx.format import read_metadata
from linnaeus.engine.onnx.inference import Classifier
from linnaeus.engine.onnx.saved_threshold import set_threshold
from linnaeus.engine.project import versions
from linnaeus.engine.project.predictions import load_predictions
from linnaeus.engine.project.predictions import save_predictions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion
from tests.training_factory import SEED_CNN
from tests.training_factory import trained_shapes_project

CONFIG = replace(SEED_CNN, epochs=2)


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ProjectStore, ModelVersion]]:
    folder = tmp_path_factory.mktemp("decision")
    store, version = trained_shapes_project(folder, {"disk": 30, "square": 30}, CONFIG)
    path = versions.exported_model_path(store.project_dir, version.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    export_version(store, version, path)
    yield store, versions.get_version(store, version.id)
    store.close()


def predict_split(store: ProjectStore, classifier: Classifier, split: str) -> dict[int, str]:
    """Image id -> the class the exported model decides for it."""
    return {
        image.id: classifier.predict_file(store.image_root / image.path).label
        for image in store.images(split=split)
    }


def test_training_records_accuracies_at_the_decisions(project) -> None:
    store, version = project
    assert version.metrics["calibration"]["chosen_on"] == "validation"
    decided = version_predictions(store, version)
    snapshot = versions.label_snapshot(store, version.id)
    for split in ("val", "test"):
        rows = [n for n, i in enumerate(decided.image_ids) if snapshot[int(i)][1] == split]
        labels = np.array([snapshot[int(decided.image_ids[n])][0] for n in rows])
        expected = np.mean(decided.predicted[rows] == labels)
        assert version.metrics[split]["accuracy"] == pytest.approx(expected)
        assert "argmax_accuracy" in version.metrics[split]


def test_predict_decides_every_test_image_as_the_evaluation(project) -> None:
    store, version = project
    classifier = Classifier(versions.exported_model_path(store.project_dir, version.name))
    predicted = predict_split(store, classifier, "test")
    decided = version_predictions(store, version)
    for image_id, label in predicted.items():
        row = int(np.flatnonzero(decided.image_ids == image_id)[0])
        assert label == version.classes[int(decided.predicted[row])], image_id
    evaluation = evaluate_version(store, version, "test")
    truth = {i.id: i.label for i in store.images(split="test")}
    assert evaluation.images == len(predicted)
    assert evaluation.accuracy == pytest.approx(
        np.mean([predicted[i] == truth[i] for i in predicted])
    )


def test_a_saved_threshold_reaches_the_exported_model(project) -> None:
    store, version = project
    path = versions.exported_model_path(store.project_dir, version.name)
    chosen = calibrate_version(store, version)["threshold"]
    try:
        changed = set_threshold(store, version, 0.3)
        assert changed.metrics["calibration"]["threshold"] == 0.3
        assert changed.metrics["calibration"]["chosen_on"] == "user"
        assert read_metadata(path).threshold == 0.3
        assert evaluate_version(store, changed, "test").operating_point.threshold == 0.3
        predicted = predict_split(store, Classifier(path), "test")
        decided = version_predictions(store, changed)
        for image_id, label in predicted.items():
            row = int(np.flatnonzero(decided.image_ids == image_id)[0])
            assert label == version.classes[int(decided.predicted[row])]
    finally:
        back = set_threshold(store, version, chosen, chosen_on="validation")
    assert read_metadata(path).threshold == chosen
    assert back.metrics["calibration"]["chosen_on"] == "validation"


def test_a_perfectly_separated_validation_split_exports_and_predicts(project, tmp_path) -> None:
    """A confident model: float32 probabilities of exactly 1.0 and 0.0 on validation."""
    store, version = project
    twin = versions.create_version(
        store, kind=version.kind, config=version.config, augmentation=version.augmentation,
        classes=version.classes, labels=versions.label_snapshot(store, version.id),
    )  # fmt: skip
    shutil.copyfile(version.model_file, twin.model_file)
    ids, _ = load_predictions(store, version.id)
    snapshot = versions.label_snapshot(store, version.id)
    certain = np.eye(2, dtype=np.float32)[[snapshot[int(i)][0] for i in ids]]
    save_predictions(store, twin.id, ids, certain)
    twin = versions.update_version(store, twin.id, status="done", metrics={})

    calibration = calibrate_version(store, twin)
    assert 0.0 < calibration["threshold"] < 1.0
    report = export_version(store, twin, tmp_path / "separated.onnx")
    assert read_metadata(report.path).threshold == pytest.approx(calibration["threshold"])
    predictions = list(Classifier(report.path).classify_folder(store.image_root))
    assert len(predictions) == 60 and all(p.label in version.classes for p in predictions)
    versions.delete_version(store, twin.id)
