"""The evaluation panel over a project with stored predictions (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from linnaeus.engine.evaluation.metrics import AUGMENTED_VIEWS_NOTE
from linnaeus.engine.project import predictions
from linnaeus.engine.project import versions
from linnaeus.gui.panels.evaluation_panel import EvaluationPanel
from tests.gui.fake_trainer import add_trained_version
from tests.training_factory import make_shapes_project
from tests.training_factory import make_structures_project

TIMEOUT_MS = 10_000


@pytest.fixture
def store(tmp_path):
    project = make_shapes_project(tmp_path, {"disk": 30, "square": 30})
    add_trained_version(project)
    yield project
    project.close()


def shown_panel(qtbot, store) -> EvaluationPanel:
    panel = EvaluationPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    panel.set_project(store)
    qtbot.waitUntil(lambda: panel.evaluation_data() is not None, timeout=TIMEOUT_MS)
    return panel


def expected_confusion(store, split: str) -> list[list[int]]:
    counts = {
        label: sum(1 for i in store.images(split=split) if i.label == label)
        for label in ("disk", "square")
    }
    return [[counts["disk"] - 2, 2], [0, counts["square"]]]


def test_confusion_counts_and_a_cell_click_filters(qtbot, store) -> None:
    panel = shown_panel(qtbot, store)
    model = panel.confusion_model
    shown = [[int(model.index(r, c).data().replace(",", "")) for c in range(2)] for r in range(2)]
    assert shown == expected_confusion(store, "test")
    assert model.headerData(0, Qt.Orientation.Vertical) == "disk"
    cell = model.index(0, 1)
    position = panel.confusion_view.visualRect(cell).center()
    with qtbot.waitSignal(panel.filter_requested) as clicked:
        qtbot.mouseClick(panel.confusion_view.viewport(), Qt.MouseButton.LeftButton, pos=position)
    request = clicked.args[0]
    wrong = [i.id for i in store.images(split="test") if i.label == "disk"][:2]
    assert sorted(request.pop("image_ids")) == sorted(wrong)
    assert request == {"label": "disk", "predicted": "square", "split": "test",
                       "model_version": "v1",
                       "title": "Test images labelled disk, predicted square (v1)"}  # fmt: skip
    assert "v1 on" in panel.summary.text() and "accuracy" in panel.summary.text()
    assert panel.per_class_model.index(1, 0).data() == "square"


def test_split_choice_evaluates_the_validation_images(qtbot, store) -> None:
    panel = shown_panel(qtbot, store)
    panel.split_choice.setCurrentIndex(panel.split_choice.findData("val"))
    qtbot.waitUntil(lambda: panel.evaluation_data().evaluation.split == "val", timeout=TIMEOUT_MS)
    assert panel.evaluation_data().evaluation.confusion == expected_confusion(store, "val")


def confusion_shown(panel) -> list[list[int]]:
    model = panel.confusion_model
    return [[int(model.index(r, c).data().replace(",", "")) for c in range(2)] for r in range(2)]


def test_threshold_slider_recounts_every_figure_live(qtbot, store) -> None:
    panel = shown_panel(qtbot, store)
    assert panel.threshold_slider.isEnabled() and not panel.use_threshold.isEnabled()
    data = panel.evaluation_data()
    point = data.evaluation.operating_point
    chosen = point.threshold
    assert panel.threshold_slider.value() == round(chosen * 1000)
    shown = panel.current_rates()  # the slider's figures agree with the engine's evaluation
    assert (shown.sensitivity, shown.specificity) == (point.sensitivity, point.specificity)
    assert confusion_shown(panel) == data.evaluation.confusion
    assert "chosen on the validation images" in panel.decision.text()
    panel.threshold_slider.setValue(1)  # 0.001: every image is called square
    everything = panel.current_rates()
    assert everything.sensitivity == 1.0 and everything.specificity == 0.0
    assert "sensitivity 100.0%" in panel.rates_label.text()
    test = data.labels
    assert confusion_shown(panel) == [[0, int(np.sum(test == 0))], [0, int(np.sum(test == 1))]]
    assert panel.shown_evaluation().accuracy == pytest.approx(np.mean(test == 1))
    assert "What if" in panel.decision.text() and panel.use_threshold.isEnabled()
    assert "accuracy" in panel.summary.text()
    with qtbot.waitSignal(panel.threshold_chosen) as chosen_signal:
        panel.use_threshold.click()
    assert chosen_signal.args == [data.version_id, 0.001]
    panel.threshold_slider.setValue(999)
    strict = panel.current_rates()
    assert strict.sensitivity < 1.0 and strict.specificity == 1.0
    panel.reset_threshold.click()
    assert panel.threshold_slider.value() == round(chosen * 1000)
    assert panel.current_rates().threshold == chosen
    assert panel.shown_evaluation() is data.evaluation and not panel.use_threshold.isEnabled()


def test_few_images_say_so_and_hide_the_calibration_plot(qtbot, store) -> None:
    panel = shown_panel(qtbot, store)
    evaluation = panel.evaluation_data().evaluation
    assert evaluation.images < 50
    assert f"Few images ({evaluation.images})" in panel.summary.text()
    assert "accuracy" in panel.summary.text() and "–" in panel.summary.text()  # intervals
    assert panel.reliability_plot.isHidden()
    assert "Calibration is not plotted" in panel.reliability_note.text()


def test_relabel_queue_lists_disagreements_first_and_opens_images(qtbot, store) -> None:
    panel = shown_panel(qtbot, store)
    entries = panel.queue_model.entries
    assert sum(e.flagged for e in entries) == 6  # 2 per split
    assert all(e.flagged for e in entries[:6]) and not entries[6].flagged
    assert entries[0].label == "disk" and entries[0].suggested == "square"
    assert "trained on them" in panel.label_check.note.text()  # no held-out heads: in-sample
    assert panel.tabs.tabText(0) == "Check labels (6)"
    with qtbot.waitSignal(panel.open_image_requested) as opened:
        panel.queue_view.activated.emit(panel.queue_model.index(0, 1))
    assert opened.args == [entries[0].image_id]


def test_more_than_two_classes_have_no_threshold(qtbot, tmp_path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 12, "square": 12, "ring": 12})
    add_trained_version(store, wrong=1)
    panel = shown_panel(qtbot, store)
    assert panel.confusion_model.rowCount() == 3
    assert not panel.threshold_slider.isEnabled() and "two-class tasks" in panel.rates_label.text()
    store.close()


def test_without_a_model_the_panel_says_what_to_do(qtbot, tmp_path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 4, "square": 4})
    panel = EvaluationPanel()
    qtbot.addWidget(panel)
    panel.set_project(store)
    assert panel.pages.currentWidget() is panel.empty and "train" in panel.empty.text()
    store.close()


def test_classes_too_small_to_split_are_evaluated_on_augmented_views(qtbot, tmp_path) -> None:
    store = make_structures_project(tmp_path, 3)  # one image per class: all in training
    version = add_trained_version(store, wrong=0)
    sources = [image.id for image in store.images()]
    labels = np.repeat(np.arange(3), 10)  # ten views of each class's image
    probabilities = np.full((30, 3), 0.05, np.float32)
    probabilities[np.arange(30), labels] = 0.9
    probabilities[0] = [0.1, 0.8, 0.1]  # one view taken for another class
    predictions.save_view_predictions(version, np.repeat(sources, 10), labels, probabilities)
    figures = {"images": 30, "accuracy": 29 / 30, "loss": 0.1, "augmented_views": 30,
               "training_images": 3}  # fmt: skip
    versions.update_version(store, version.id, metrics={"val": figures})

    panel = EvaluationPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_project(store)  # the test split first: there is none
    qtbot.waitUntil(lambda: panel.message.kind == "error", timeout=TIMEOUT_MS)
    assert "too few images for a test split" in panel.message.text()
    assert "augmented views" in panel.message.text()

    panel.split_choice.setCurrentIndex(panel.split_choice.findData("val"))
    qtbot.waitUntil(lambda: panel.evaluation_data() is not None, timeout=TIMEOUT_MS)
    assert panel.evaluation_data().evaluation.augmented_views
    assert "on 30 augmented views of the training images" in panel.summary.text()
    assert AUGMENTED_VIEWS_NOTE in panel.summary.text()
    assert panel.confusion_model.index(0, 1).data() == "1"
    store.close()
