"""The augmentation panel: settings, presets, and samples equal to the engine's preview."""

from __future__ import annotations

import numpy as np
import pytest

from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.augment import load_augmentation
from linnaeus.engine.images.augment import preview_samples
from linnaeus.gui.panels.augment_panel import PREVIEW_SIDE
from linnaeus.gui.panels.augment_panel import AugmentPanel

TIMEOUT_MS = 10_000


@pytest.fixture
def panel(qtbot):
    widget = AugmentPanel()
    qtbot.addWidget(widget)
    return widget


@pytest.fixture
def pixels():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 60, (48, 64, 3), dtype=np.uint8)
    image[10:30, 20:40] = (230, 200, 40)  # something for the transforms to move
    return image


def wait_for_samples(qtbot, panel, pixels, seed=0):
    """Wait until the grid shows the engine's samples for the panel's settings."""

    def shown():
        expected = preview_samples(pixels, panel.augmentation(), 9, seed)
        return len(panel.samples) == 9 and all(
            np.array_equal(a, b) for a, b in zip(panel.samples, expected, strict=True)
        )

    qtbot.waitUntil(shown, timeout=TIMEOUT_MS)


def test_samples_equal_the_engine_preview(qtbot, panel, pixels) -> None:
    assert panel.preset.currentData() == "gentle"
    panel.set_image(pixels)
    wait_for_samples(qtbot, panel, pixels)
    assert panel.samples[0].shape == pixels.shape
    assert not np.array_equal(panel.samples[0], panel.samples[1])


def test_moving_a_slider_updates_samples_and_announces_the_settings(qtbot, panel, pixels):
    panel.set_image(pixels)
    wait_for_samples(qtbot, panel, pixels)
    with qtbot.waitSignal(panel.augmentation_changed, timeout=TIMEOUT_MS) as changed:
        panel.ranges["rotation_range"].slider.setValue(90)
        panel.ranges["rotation_range"].slider.setValue(120)  # settles here: one update
    assert changed.args[0]["rotation_range"] == 120.0
    assert panel.preset.currentData() == "custom"
    wait_for_samples(qtbot, panel, pixels)
    assert panel.augmentation().rotation_range == 120.0


def test_presets_set_every_control(qtbot, panel, pixels) -> None:
    panel.preset.setCurrentIndex(panel.preset.findData("strong"))
    assert panel.augmentation() == PRESETS["strong"]
    assert panel.horizontal_flip.isChecked()
    assert panel.ranges["width_shift_range"].spin.value() == 20.0  # shown in percent
    panel.ranges["rotation_range"].set_value(10)
    panel.ranges["rotation_range"].set_value(40)  # back to the preset's value
    assert panel.preset.currentData() == "strong"


def test_new_samples_draw_other_variants(qtbot, panel, pixels) -> None:
    panel.set_image(pixels)
    wait_for_samples(qtbot, panel, pixels)
    first = [s.copy() for s in panel.samples]
    panel.new_samples.click()
    wait_for_samples(qtbot, panel, pixels, seed=1)
    assert not np.array_equal(first[0], panel.samples[0])


def test_brightness_fill_and_flips_reach_the_settings(panel) -> None:
    panel.vary_brightness.setChecked(True)
    panel.brightness_low.setValue(1.5)  # above the high end: the high end follows
    panel.fill_mode.setCurrentIndex(panel.fill_mode.findData("constant"))
    panel.cval.setValue(128)
    panel.vertical_flip.setChecked(True)
    settings = panel.augmentation()
    assert settings.brightness_range == (1.5, 1.5)
    assert (settings.fill_mode, settings.cval, settings.vertical_flip) == ("constant", 128, True)
    assert panel.cval.isEnabled()


def test_large_and_16_bit_images_are_previewed(qtbot, panel) -> None:
    gray = (np.arange(800 * 1000, dtype=np.uint32).reshape(800, 1000) % 65536).astype(np.uint16)
    panel.set_image(gray)
    qtbot.waitUntil(lambda: len(panel.samples) == 9, timeout=TIMEOUT_MS)
    assert panel.samples[0].shape == (PREVIEW_SIDE * 800 // 1000, PREVIEW_SIDE, 1)


def test_settings_are_saved_and_opened_as_json(tmp_path, panel) -> None:
    panel.preset.setCurrentIndex(panel.preset.findData("strong"))
    panel.ranges["zoom_range"].set_value(0.35)
    path = tmp_path / "augmentation.json"
    panel.save_settings(path)
    assert load_augmentation(str(path)) == panel.augmentation()
    panel.preset.setCurrentIndex(panel.preset.findData("none"))
    panel.load_settings(path)
    assert panel.augmentation().zoom_range == pytest.approx(0.35)
    (tmp_path / "bad.json").write_text('{"spin": 3}', encoding="utf-8")
    panel.load_settings(tmp_path / "bad.json")
    assert "spin" in panel.message.text() and panel.augmentation().zoom_range == 0.35


def test_without_an_image_there_are_no_samples(qtbot, panel, pixels) -> None:
    panel.set_image(pixels)
    wait_for_samples(qtbot, panel, pixels)
    panel.set_image(None)
    qtbot.waitUntil(lambda: panel.samples == [], timeout=TIMEOUT_MS)
