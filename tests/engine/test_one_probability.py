"""One image, one probability, one decision: the grid and Image tab (stored predictions
at the version's temperature and threshold), the Feature maps tab and heatmaps
(`explain_file`) and predict (`Classifier`) agree on the same image. No TensorFlow:
the exported model is a tiny ONNX model (tests/onnx_factory.py) and the stored
predictions are what training would have saved, its probabilities at temperature 1."""

from __future__ import annotations

import numpy as np
import pytest

from linnaeus.engine.evaluation.version import evaluate_version
from linnaeus.engine.evaluation.version import version_predictions
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.images.preprocess import prepare_image
from linnaeus.engine.onnx.explanation import explain_file
from linnaeus.engine.onnx.inference import Classifier
from linnaeus.engine.project import versions
from linnaeus.engine.project.predictions import save_predictions
from tests.onnx_factory import make_model
from tests.onnx_factory import reference_outputs
from tests.training_factory import make_shapes_project

TEMPERATURE = 2.0
# disks and squares are drawn in random bright colours: "square" answers to green,
# "disk" to red, so the two classes overlap
WEIGHTS = np.array([[6.0, 0.0], [0.0, 6.0], [0.0, 0.0]], np.float32)
FORMAT = InputFormat(size=16, channels=3, resize="stretch")


def threshold_unlike_the_argmax(scores: np.ndarray) -> float:
    """A threshold that decides some image differently from the most probable class:
    between the two highest scores below 0.5 (or the two lowest above it)."""
    below, above = np.sort(scores[scores < 0.5]), np.sort(scores[scores > 0.5])
    pair = below[-2:] if len(below) >= 2 else above[:2]
    return float(pair.mean())


@pytest.fixture
def project(tmp_path):
    store = make_shapes_project(tmp_path, {"disk": 12, "square": 12})
    images = [i for i in store.images(status="ok")]
    classes = ["disk", "square"]
    labels = {i.id: (classes.index(i.label), i.split) for i in images}
    version = versions.create_version(
        store, kind="quick", config=FORMAT.to_dict(), augmentation={}, classes=classes,
        labels=labels,
    )  # fmt: skip
    pixels = np.stack([prepare_image(read_image(store.image_root / i.path).pixels, FORMAT)
                       for i in images])  # fmt: skip
    stored = reference_outputs(pixels, WEIGHTS)["probabilities"]  # as training saves them
    save_predictions(store, version.id, [i.id for i in images], stored)
    threshold = threshold_unlike_the_argmax(
        reference_outputs(pixels, WEIGHTS, temperature=TEMPERATURE)["probabilities"][:, 1]
    )
    calibration = {"temperature": TEMPERATURE, "threshold": threshold, "positive_class": "square",
                   "target_sensitivity": 0.95, "chosen_on": "validation",
                   "validation_threshold": threshold}  # fmt: skip
    versions.update_version(store, version.id, status="done", metrics={"calibration": calibration})
    versions.set_active(store, version.id)
    path = versions.exported_model_path(store.project_dir, version.name)
    path.parent.mkdir(parents=True)
    make_model(
        path, classes, size=16, weights=WEIGHTS, temperature=TEMPERATURE, threshold=threshold,
        positive_class="square", model_version=version.name,
    )  # fmt: skip
    yield store, versions.get_version(store, version.id), Classifier(path)
    store.close()


def test_every_view_gives_an_image_the_same_probability_and_class(project) -> None:
    store, version, classifier = project
    stored = version_predictions(store, version)  # the grid, the Image tab, the queue
    for row, image_id in enumerate(stored.image_ids):
        path = store.image_root / store.image(int(image_id)).path
        explained = explain_file(classifier, path)  # the Feature maps tab and heatmaps
        predicted = classifier.predict_file(path)  # linnaeus predict and Classify
        np.testing.assert_allclose(explained.probabilities, stored.probabilities[row], atol=1e-5)
        assert list(predicted.probabilities.values()) == pytest.approx(
            list(stored.probabilities[row]), abs=1e-5
        )
        decided = version.classes[int(stored.predicted[row])]
        assert explained.predicted == stored.predicted[row] and predicted.label == decided
    assert (stored.predicted != stored.probabilities.argmax(axis=1)).any()


def test_the_evaluation_counts_the_decisions_predict_makes(project) -> None:
    store, version, classifier = project
    evaluation = evaluate_version(store, version, "test", bootstrap=0)
    test_images = [i for i in store.images(split="test") if i.status == "ok"]
    right = [
        classifier.predict_file(store.image_root / i.path).label == i.label for i in test_images
    ]
    assert evaluation.images == len(test_images)
    assert evaluation.accuracy == pytest.approx(np.mean(right))
    point = evaluation.operating_point
    squares = sum(i.label == "square" for i in test_images)
    mix = point.sensitivity * squares + point.specificity * (len(test_images) - squares)
    assert evaluation.accuracy == pytest.approx(mix / len(test_images))
