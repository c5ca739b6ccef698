"""The positive class of a two-class model (the one whose sensitivity its threshold
targets and every report gives) is read from the class names, recorded with the
version when it is trained, and carried into the exported model."""

from __future__ import annotations

from dataclasses import replace

import pytest

from linnaeus.engine.cli.main import main
from linnaeus.engine.cli.protocol import TrainOptions
from linnaeus.engine.errors import EvaluationError
from linnaeus.engine.errors import TrainingError
from linnaeus.engine.evaluation.decision import positive_class
from linnaeus.engine.evaluation.version import calibrate_version
from linnaeus.engine.evaluation.version import evaluate_version
from linnaeus.engine.evaluation.version import positive_index
from linnaeus.engine.onnx.export import export_version
from linnaeus.engine.onnx.format import read_metadata
from linnaeus.engine.project import versions
from linnaeus.engine.training.config import TrainConfig
from tests.training_factory import make_shapes_project
from tests.training_factory import trained_shapes_project


@pytest.mark.parametrize(
    ("classes", "positive"),
    [
        (("Parasitized", "Uninfected"), "Parasitized"),
        (("NORMAL", "PNEUMONIA"), "PNEUMONIA"),
        (("no", "yes"), "yes"),
        (("cats", "dogs"), "dogs"),  # neither reads as a negative: the second, as before
        (("benign_lesion", "malignant"), "malignant"),
        (("Healthy", "Normal"), "Normal"),  # both read as negatives: the second
        (("0", "1"), "1"),
        (("No-Finding", "effusion"), "effusion"),
    ],
)
def test_the_positive_class_is_the_one_not_named_as_a_negative(classes, positive) -> None:
    assert classes[positive_class(classes)] == positive


def test_a_positive_class_is_for_two_classes() -> None:
    with pytest.raises(EvaluationError, match="two-class"):
        positive_class(("a", "b", "c"))


def test_the_config_takes_a_positive_class_that_is_one_of_the_classes() -> None:
    config = TrainConfig()
    assert config.for_classes(["Parasitized", "Uninfected"]).positive == "Parasitized"
    chosen = TrainConfig(positive="Uninfected").for_classes(["Parasitized", "Uninfected"])
    assert chosen.positive == "Uninfected"
    assert config.for_classes(["a", "b", "c"]).positive is None
    with pytest.raises(TrainingError, match="'Sick' is not one of the classes"):
        TrainConfig(positive="Sick").for_classes(["Parasitized", "Uninfected"])
    with pytest.raises(TrainingError, match="two-class"):
        TrainConfig(positive="a").for_classes(["a", "b", "c"])
    assert TrainOptions(positive="Uninfected").config().positive == "Uninfected"


def test_a_malaria_version_finds_parasitized_images(tmp_path) -> None:
    store, version = trained_shapes_project(tmp_path, {"Parasitized": 16, "Uninfected": 16})
    try:
        assert version.config["positive"] == "Parasitized"
        assert positive_index(version) == 0
        assert positive_index(replace(version, config={})) == 1  # trained before it was recorded
        calibration = calibrate_version(store, version)
        assert calibration["positive_class"] == "Parasitized"
        version = versions.get_version(store, version.id)
        point = evaluate_version(store, version, "val").operating_point
        assert point.positive_class == "Parasitized"
        assert point.threshold == pytest.approx(calibration["threshold"])
        path = tmp_path / "malaria.onnx"
        export_version(store, version, path)
        metadata = read_metadata(path)
        assert metadata.positive_class == "Parasitized"
        assert metadata.threshold == pytest.approx(calibration["threshold"])
    finally:
        store.close()


def test_train_says_when_the_positive_class_is_not_a_class(tmp_path, capsys) -> None:
    make_shapes_project(tmp_path, {"disk": 4, "square": 4}).close()
    project = str(tmp_path / "project")
    code = main(["train", "--project", project, "--positive", "Sick", "--model", "seed-cnn"])
    assert code != 0
    assert "'Sick' is not one of the classes: disk, square" in capsys.readouterr().err
