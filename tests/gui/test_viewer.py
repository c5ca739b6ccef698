"""The image viewer: window/level on 16-bit images, zoom, heatmap overlay, details."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from linnaeus.engine.project.label_edits import HistoryEntry
from linnaeus.engine.project.store import ImageRecord
from linnaeus.gui.image_details import details_html
from linnaeus.gui.image_viewer import ImageViewer
from linnaeus.gui.window_level import Window
from linnaeus.gui.window_level import auto_window
from linnaeus.gui.window_level import display_pixels
from tests.gui.browse_factory import window_factory
from tests.image_factory import write_image


@pytest.fixture
def make_window(tmp_path, qtbot):
    with window_factory(tmp_path, qtbot) as make:
        yield make


@pytest.fixture
def viewer(qtbot) -> ImageViewer:
    widget = ImageViewer()
    qtbot.addWidget(widget)
    widget.resize(500, 500)
    widget.show()
    return widget


def _show(viewer: ImageViewer, qtbot, path, image_id: int = 1) -> None:
    with qtbot.waitSignal(viewer.image_shown, timeout=10_000):
        viewer.show_image(image_id, path)


def test_window_level_changes_the_displayed_pixels_of_a_16_bit_image(viewer, qtbot, tmp_path):
    path = write_image(tmp_path / "gray16.png", size=(80, 60), channels=1, bit_depth=16)
    _show(viewer, qtbot, path)
    window = viewer.window
    assert 1000 <= window.low < window.high <= 20125  # the data's own range, all 16 bits
    assert viewer.level_slider.maximum() <= 20125  # the sliders span the image's values
    before = viewer.displayed_image()
    assert before.shape[:2] == (60, 80)
    viewer.set_window(window.low, window.low + window.width / 4)  # narrower: more contrast
    after = viewer.displayed_image()
    assert (after != before).any()
    assert after[..., 0].mean() > before[..., 0].mean()  # most values now saturate to white
    viewer.reset_window()
    assert np.array_equal(viewer.displayed_image(), before)


def test_sliders_set_window_and_level(viewer, qtbot, tmp_path):
    _show(viewer, qtbot, write_image(tmp_path / "rgb.png", size=(40, 30)))
    viewer.window_slider.setValue(100)
    viewer.level_slider.setValue(120)
    assert viewer.window == Window.from_centre(120, 100)
    assert "Window 100" in viewer._window_text.text()


def test_right_drag_widens_window_and_raises_level() -> None:
    start = Window(100, 200)
    wider = start.dragged(30, 0, 65535)
    assert wider.width > start.width and wider.centre == pytest.approx(start.centre)
    brighter = start.dragged(0, -30, 65535)  # up
    assert brighter.centre > start.centre and brighter.width == pytest.approx(start.width)


@pytest.mark.parametrize(
    ("pixels", "expected"),
    [
        (np.full((4, 4, 1), 7, np.uint16), Window(7, 8)),  # flat: one value wide
        (np.arange(1000, dtype=np.uint16).reshape(10, 100, 1), Window(4.995, 994.005)),
    ],
)
def test_auto_window(pixels: np.ndarray, expected: Window) -> None:
    window = auto_window(pixels)
    assert window.low == pytest.approx(expected.low) and window.high == pytest.approx(expected.high)


def test_display_pixels_drops_alpha() -> None:
    assert display_pixels(np.zeros((2, 3, 2), np.uint8)).shape == (2, 3)
    assert display_pixels(np.zeros((2, 3, 4), np.uint16)).shape == (2, 3, 3)


def test_zoom_and_fit(viewer, qtbot, tmp_path):
    _show(viewer, qtbot, write_image(tmp_path / "rgb.png", size=(200, 100)))
    fitted = viewer._box.viewRect()
    viewer.zoom_in()
    assert viewer._box.viewRect().width() < fitted.width()
    viewer.zoom_out()
    viewer.zoom_out()
    assert viewer._box.viewRect().width() > fitted.width()
    QTest.keyClick(viewer._view, Qt.Key.Key_0)
    assert viewer._box.viewRect().width() == pytest.approx(fitted.width(), rel=0.01)


def test_heatmap_overlay_toggles_with_h(viewer, qtbot, tmp_path):
    _show(viewer, qtbot, write_image(tmp_path / "rgb.png", size=(64, 48)))
    assert not viewer.heatmap_action.isEnabled()  # no model: nothing to explain
    assert "No model" in viewer.heatmap_action.toolTip()
    viewer.set_heatmap_classes(["disk", "square"])
    assert viewer.heatmap_action.isEnabled() and not viewer.heatmap_wanted
    viewer._view.setFocus()
    with qtbot.waitSignal(viewer.explanation_wanted) as wanted:
        QTest.keyClick(viewer._view, Qt.Key.Key_H)
    assert wanted.args == [viewer.image_id] and viewer.heatmap_wanted
    assert viewer.class_choice.isVisible() and viewer.explained_class is None
    heatmap = np.outer(np.linspace(0, 1, 7), np.linspace(0, 1, 7))
    viewer.set_overlay(heatmap, opacity=0.3)
    assert viewer.heatmap_visible and viewer.opacity_slider.value() == 30
    overlay = viewer._overlay_item
    assert overlay.image.shape == (48, 64)  # smoothly resized to the image
    assert overlay.image[24, 32] > overlay.image[0, 0]
    assert overlay.mapRectToParent(overlay.boundingRect()).width() == 64
    with qtbot.waitSignal(viewer.explanation_wanted):
        viewer.class_choice.setCurrentIndex(2)  # explain "square"
    assert viewer.explained_class == 1
    QTest.keyClick(viewer._view, Qt.Key.Key_H)
    assert not viewer.heatmap_visible and not viewer.class_choice.isVisible()
    QTest.keyClick(viewer._view, Qt.Key.Key_H)
    assert viewer.heatmap_visible
    with qtbot.waitSignal(viewer.explanation_wanted):  # the next image asks for its own
        viewer.show_image(8, write_image(tmp_path / "next.png", size=(32, 32)))
    assert not viewer.heatmap_visible  # the old map is gone until the new one arrives
    viewer.set_heatmap_classes(None, "Train a model to see heatmaps")
    assert not viewer.heatmap_wanted and not viewer.heatmap_action.isEnabled()


def test_the_heatmap_has_a_legend_and_an_empty_one_says_why(viewer, qtbot, tmp_path):
    """The overlay had no colour legend, and explaining a class without evidence
    left it blank with no word (issue 16)."""
    _show(viewer, qtbot, write_image(tmp_path / "rgb.png", size=(64, 48)))
    viewer.set_heatmap_classes(["no", "yes"])
    viewer.heatmap_action.setChecked(True)
    assert not viewer.legend.isVisible()  # nothing to explain yet
    viewer.set_overlay(np.outer(np.linspace(0, 1, 7), np.ones(7)), class_name="yes")
    assert viewer.legend.isVisible() and viewer.legend.strip.isVisible()
    assert viewer.legend.text == "low … high contribution to “yes”"
    viewer.set_overlay(np.zeros((48, 64), np.float32), class_name="no")
    assert not viewer.legend.strip.isVisible() and "“no”" in viewer.legend.text
    assert viewer.legend.text.startswith("Nothing in this image speaks for")
    viewer.heatmap_action.setChecked(False)
    assert not viewer.legend.isVisible()


def test_unreadable_image_shows_why(viewer, qtbot, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    with qtbot.waitSignal(viewer.load_failed, timeout=10_000) as failed:
        viewer.show_image(3, bad)
    assert "empty" in failed.args[1] and "empty" in viewer._message.text()


def test_details_show_file_size_depth_and_history() -> None:
    record = ImageRecord(
        7,
        "xray/p1.dcm",
        "ab",
        2048,
        0,
        512,
        400,
        1,
        8,
        "dicom",
        "ok",
        None,
        "PNEUMONIA",
        "P1",
        "test",
        "random",
    )
    history = [
        HistoryEntry(
            7, "xray/p1.dcm", "NORMAL", "PNEUMONIA", "2026-01-02T10:11:12", "user", "set", 3
        )
    ]
    text = details_html(record, history, {"NORMAL": 0.7, "PNEUMONIA": 0.3}, "v2", "PNEUMONIA")
    assert "decides <b>PNEUMONIA</b>: NORMAL 70%, PNEUMONIA 30%" in text  # at a 0.25 threshold
    text = details_html(record, history, {"NORMAL": 0.2, "PNEUMONIA": 0.8}, "v2")
    for part in (
        "xray/p1.dcm",
        "512 × 400",
        "8-bit",
        "DICOM",
        "PNEUMONIA 80%",
        "NORMAL → PNEUMONIA",
        "2026-01-02 10:11",
        "test",
        "P1",
    ):
        assert part in text


def test_viewer_follows_the_grid(make_window, qtbot) -> None:
    window = make_window()
    grid, viewer = window.project_view.grid, window.project_view.viewer
    grid.select_row(2)
    qtbot.waitUntil(lambda: viewer.image_id == grid.current_image_id() and not viewer.is_loading)
    assert grid.model().index(2).data() in viewer.details.text()
    assert "import" in viewer.details.text()  # the label history
