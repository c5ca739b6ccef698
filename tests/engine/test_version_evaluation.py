"""Evaluating a trained version from its stored predictions; the evaluate CLI."""

from __future__ import annotations

import json

import pytest

from linnaeus.engine.cli.main import main
from linnaeus.engine.evaluation.version import calibrate_version
from linnaeus.engine.evaluation.version import evaluate_version
from linnaeus.engine.evaluation.version import version_relabel_queue
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.project import versions
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.train import train
from tests.training_factory import make_shapes_project

CONFIG = TrainConfig(model="seed-cnn", epochs=3, image_size=32, batch_size=16,
                     augmentation=PRESETS["none"])  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = make_shapes_project(tmp_path_factory.mktemp("evaluation"))
    version = train(store, CONFIG).version
    yield store, version
    store.close()


def test_evaluation_uses_a_threshold_chosen_on_validation(trained) -> None:
    store, version = trained
    calibration = calibrate_version(store, version)
    assert calibration["positive_class"] == "square" and 0 < calibration["threshold"] < 1
    assert 0.05 <= calibration["temperature"] <= 20
    saved = versions.get_version(store, version.id).metrics["calibration"]
    assert saved == calibration
    evaluation = evaluate_version(store, versions.get_version(store, version.id), "test")
    assert evaluation.images == len(store.images(split="test"))
    assert evaluation.operating_point.threshold == pytest.approx(calibration["threshold"])


def test_relabel_queue_follows_current_labels(trained) -> None:
    store, version = trained
    queue = version_relabel_queue(store, version)
    assert len(queue) == 80
    first = queue[0]
    store.set_labels([first.image_id], version.classes[1 - first.label])  # a "fix"
    again = {item.image_id: item for item in version_relabel_queue(store, version)}
    assert again[first.image_id].label == 1 - first.label
    store.undo()


def test_evaluate_command_json(trained, capsys) -> None:
    store, _ = trained
    assert main(["evaluate", "--project", str(store.project_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"accuracy", "classes", "confusion", "per_class", "auc", "ece", "threshold",
            "ci"} <= set(result)  # fmt: skip
    assert set(result["per_class"]["disk"]) == {"precision", "recall", "f1", "support"}
    assert result["relabel_queue"] and result["model_version"] == "v1"


def test_evaluate_without_a_model_is_explained(tmp_path, capsys) -> None:
    store = make_shapes_project(tmp_path, {"disk": 4, "square": 4})
    assert main(["evaluate", "--project", str(store.project_dir)]) == 1
    assert "no trained model yet" in capsys.readouterr().err


def test_report_is_one_self_contained_html_file(trained, tmp_path) -> None:
    from linnaeus.engine.report.model_card import write_report

    store, version = trained
    versions.rename_version(store, version.id, "shapes <baseline>")
    versions.set_note(store, version.id, "Kept for comparison.")
    path = write_report(store, versions.get_version(store, version.id), tmp_path / "card.html")
    page = path.read_text()
    assert f"v{version.id} · shapes &lt;baseline&gt;" in page and "Kept for comparison." in page
    for section in ("Data", "Test split", "Validation split", "Misclassified", "Software"):
        assert f"<h2>{section}" in page
    assert page.count("data:image/png") >= 2 and "<svg" in page  # heatmaps and curves inline
    assert ">–<" not in page and ">n/a" not in page  # every figure it names is filled
    evaluation = evaluate_version(store, versions.get_version(store, version.id), "test")
    point = evaluation.operating_point
    low, high = evaluation.ci["sensitivity"].low, evaluation.ci["sensitivity"].high
    assert f"<th>sensitivity</th><td>{point.sensitivity:.3f} ({low:.3f} – {high:.3f})" in page
    assert f"{point.threshold:.3f}, chosen on the validation images" in page
    assert "<th>operating point</th>" in page and "Wilson" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert 'src="http' not in page and "<script" not in page
