"""The feature-map panel: blocks named by depth for a user, maps spaced apart, and the
grid always inside the panel."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from linnaeus.engine.onnx.explanation import ImageExplanation
from linnaeus.gui.panels.feature_maps_panel import FeatureMapsPanel


def explanation() -> ImageExplanation:
    rng = np.random.default_rng(0)
    maps = [rng.random((s, s, c), np.float32) for s, c in ((40, 16), (10, 32), (5, 64))]
    return ImageExplanation(
        classes=["no", "yes"], probabilities=np.array([0.2, 0.8], np.float32), predicted=1,
        explained=1, heatmap=np.zeros((8, 8), np.float32), feature_maps=maps,
        feature_layers=["block_1_expand_relu", "block_6_expand_relu", "block_13_expand_relu"],
    )  # fmt: skip


def test_blocks_read_as_depths_and_small_maps_stay_apart(qtbot) -> None:
    """The list read "block_13_expand_relu" and 5 x 5 maps ran together (issue 16)."""
    panel = FeatureMapsPanel()
    qtbot.addWidget(panel)
    panel.resize(600, 500)
    panel.show()
    panel.set_explanation(explanation())
    items = [panel.block_choice.itemText(i) for i in range(panel.block_choice.count())]
    assert items[0].startswith("1 · early: edges and colours (16 maps of 40 × 40)")
    assert items[1].startswith("2 · middle: textures") and items[2].startswith("3 · late: parts")
    assert not any("relu" in item for item in items)
    tip = panel.block_choice.itemData(2, Qt.ItemDataRole.ToolTipRole)
    assert tip == "layer block_13_expand_relu"  # still there for those who want it
    panel.block_choice.setCurrentIndex(2)
    grid = panel.shown_grid()
    background = panel.palette().color(panel.backgroundRole())
    gap = grid[5, :]  # the row between the first two rows of 5 x 5 maps
    assert (gap == (background.red(), background.green(), background.blue())).all()


def test_the_grid_fits_the_panel_after_it_shrinks(qtbot) -> None:
    panel = FeatureMapsPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 900)
    panel.show()
    panel.set_explanation(explanation())
    qtbot.wait(20)
    for width, height in ((700, 500), (400, 900), (900, 300)):
        panel.resize(width, height)
        qtbot.wait(20)
        pixmap = panel.picture.pixmap()
        shown = pixmap.size() / pixmap.devicePixelRatio()
        assert shown.width() <= panel.picture.width() and shown.height() <= panel.picture.height()
