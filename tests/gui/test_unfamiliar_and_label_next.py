"""The unfamiliar mark in the Classify dialog's results, and the grid's "Label next" sort."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import helper
from PySide6.QtCore import QSettings
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from linnaeus.engine.evaluation.label_next import EMBEDDINGS_FOLDER
from linnaeus.engine.images.array_cache import ArrayCache
from linnaeus.engine.onnx import unfamiliar
from linnaeus.engine.project import versions
from linnaeus.engine.project.predictions import save_predictions
from linnaeus.gui.image_model import ImageRole
from linnaeus.gui.main_window import MainWindow
from linnaeus.gui.panels.classify_dialog import ClassifyDialog
from linnaeus.gui.panels.classify_results import UNFAMILIAR_COLUMN
from linnaeus.gui.panels.classify_results import UNFAMILIAR_MARK
from tests.gui.browse_factory import add_predictions
from tests.gui.test_panels_classify import TIMEOUT_MS
from tests.gui.test_panels_classify import choose_file
from tests.gui.test_panels_classify import ready_dialog
from tests.onnx_factory import make_metadata
from tests.onnx_factory import make_model
from tests.training_factory import make_shapes_project

SIZE = 16


def _colour_images(colours: list[tuple[int, int, int]]) -> np.ndarray:
    return np.broadcast_to(np.array(colours, np.uint8)[:, None, None, :],
                           (len(colours), SIZE, SIZE, 3)).copy()  # fmt: skip


def _ood_model(path: Path) -> Path:
    """The factory's colour model, trained (as far as its bank knows) on reds and greens."""
    make_model(path)
    model = onnx.load(path)
    reds_greens = [(200 + i, 10 * (i % 3), 0) for i in range(20)]
    reds_greens += [(0, 200 + i, 10 * (i % 3)) for i in range(20)]
    familiarity = unfamiliar.familiarise(model, "features_1", _colour_images(reds_greens), None)
    familiarity = dataclasses.replace(familiarity, cut=0.05)  # far from blue, for a sure test
    del model.metadata_props[:]
    info = make_metadata(unfamiliar=familiarity.to_dict())
    helper.set_model_props(model, {"linnaeus": info.to_json()})
    onnx.save(model, path)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    for name, rgb in {"red": (230, 10, 0), "green": (0, 230, 10), "blue": (0, 0, 255)}.items():
        image = np.zeros((20, 24, 3), np.uint8)
        image[:] = rgb
        cv2.imwrite(str(root / f"{name}.png"), image[..., ::-1])
    return root


def test_classify_results_mark_the_unfamiliar_images(qtbot, tmp_path, photos) -> None:
    dialog = ready_dialog(qtbot, ClassifyDialog())
    choose_file(qtbot, dialog, _ood_model(tmp_path / "ood.onnx"))
    dialog.folder.setText(str(photos))
    dialog.sort.setChecked(True)
    with qtbot.waitSignal(dialog.classification_finished, timeout=TIMEOUT_MS):
        dialog.classify_button.click()

    model = dialog.results_model
    marks = {model.index(r, 0).data(): model.index(r, UNFAMILIAR_COLUMN).data()
             for r in range(model.rowCount())}  # fmt: skip
    assert marks == {"blue.png": UNFAMILIAR_MARK, "green.png": "", "red.png": ""}
    assert not dialog.results.isColumnHidden(UNFAMILIAR_COLUMN)
    blue = next(r for r in range(model.rowCount()) if model.index(r, 0).data() == "blue.png")
    assert model.index(blue, 1).data(Qt.ItemDataRole.BackgroundRole) is not None
    assert "unlike the images the model was trained on" in (
        model.index(blue, 1).data(Qt.ItemDataRole.ToolTipRole)
    )
    assert "marks images unlike those it was trained on" in dialog.model_info.text()
    assert "1 looks unlike the images the model was trained on" in dialog.message.text()
    sorted_folder = tmp_path / "photos_sorted"
    assert [p.name for p in (sorted_folder / "unfamiliar").iterdir()] == ["blue.png"]
    dialog.resize(900, 520)
    dialog.grab().save(str(tmp_path / "classify_unfamiliar.png"))


def test_a_model_without_the_score_hides_the_column(qtbot, tmp_path, photos) -> None:
    dialog = ready_dialog(qtbot, ClassifyDialog())
    choose_file(qtbot, dialog, make_model(tmp_path / "old.onnx"))
    dialog.folder.setText(str(photos))
    with qtbot.waitSignal(dialog.classification_finished, timeout=TIMEOUT_MS):
        dialog.classify_button.click()
    assert dialog.results.isColumnHidden(UNFAMILIAR_COLUMN)
    assert "unlike" not in dialog.message.text()
    assert "export it again" in dialog.model_info.text()


# -- the grid's label-next sort ---------------------------------------------------------


def _project_with_unlabelled_images(folder: Path) -> tuple[Path, str]:
    """A shapes project, four images unlabelled; stored predictions and cached features.
    Returns the project and the unlabelled image the model is least sure of."""
    store = make_shapes_project(folder, {"disk": 6, "square": 6})
    add_predictions(store)
    images = store.images(status="ok")
    unlabelled = [i for i in images if i.path.endswith(("_004.png", "_005.png"))]
    store.set_labels([i.id for i in unlabelled], None)
    version = versions.active_version(store)
    assert version is not None
    sure = [0.95, 0.9, 0.52, 0.8]  # the third is a coin toss
    rows = np.array([[s, 1 - s] for s in sure], np.float32)
    save_predictions(store, version.id, [i.id for i in unlabelled], rows)
    rng = np.random.default_rng(0)
    cache = ArrayCache(store.project_dir / EMBEDDINGS_FOLDER / "test-backbone", (8,), "float32")
    cache.put({str(i.content_hash): rng.normal(size=8) for i in images})
    project, least_sure = store.project_dir, unlabelled[2].path
    store.close()
    return project, least_sure


def test_the_grid_sorts_unlabelled_images_in_label_next_order(qtbot, tmp_path) -> None:
    project, least_sure = _project_with_unlabelled_images(tmp_path / "p")
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    assert window.open_project(project)
    model = window.session.model
    qtbot.waitUntil(lambda: not model.is_loading, timeout=60_000)
    bar = window.project_view.filter_bar
    index = bar.sort.findData("label_next")
    assert index >= 0 and bar.sort.model().item(index).isEnabled()
    qtbot.waitUntil(lambda: model.rowCount() == 12, timeout=60_000)

    bar.sort.setCurrentIndex(index)

    qtbot.waitUntil(lambda: model.index(0).data(ImageRole.PATH) == least_sure, timeout=60_000)
    first_four = [model.index(r).data(ImageRole.PATH) for r in range(4)]
    assert all(p.endswith(("_004.png", "_005.png")) for p in first_four)  # unlabelled first
    assert bar.sort.currentText().startswith("Label next")
    tip = model.index(0).data(Qt.ItemDataRole.ToolTipRole)
    assert "Label next: number 1 of the unlabelled images" in tip
    QApplication.processEvents()
    window.grab().save(str(tmp_path / "grid_label_next.png"))
