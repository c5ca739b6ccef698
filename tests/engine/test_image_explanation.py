"""Explaining one image from the exported model alone: heatmap, chosen class, feature maps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.onnx.explanation import block_depths
from linnaeus.engine.onnx.explanation import explain_file
from linnaeus.engine.onnx.explanation import feature_grid
from linnaeus.engine.onnx.inference import Classifier
from tests.onnx_factory import make_model


@pytest.fixture
def classifier(tmp_path):
    return Classifier(make_model(tmp_path / "colours.onnx", size=16))


def red_left_half(path, width=40, height=20):
    """Red on the left half, blue on the right (BGR on disk)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2, 2] = 255
    image[:, width // 2 :, 0] = 120
    cv2.imwrite(str(path), image)
    return path


def test_the_heatmap_points_at_the_evidence_for_each_class(classifier, tmp_path) -> None:
    path = red_left_half(tmp_path / "half.png")
    explanation = explain_file(classifier, path)
    assert explanation.classes == ["red", "green", "blue"]
    assert explanation.predicted == 0 and explanation.explained == 0  # red wins
    assert explanation.heatmap.shape == (20, 40)  # over the image as stored
    assert explanation.heatmap[:, :15].mean() > 0.9 > 0.1 > explanation.heatmap[:, 25:].mean()
    blue = explain_file(classifier, path, class_index=2)
    assert blue.explained == 2 and blue.predicted == 0
    assert blue.heatmap[:, 25:].mean() > blue.heatmap[:, :15].mean()
    np.testing.assert_allclose(blue.probabilities, explanation.probabilities)


def test_feature_maps_come_per_block_with_their_names(classifier, tmp_path) -> None:
    explanation = explain_file(classifier, red_left_half(tmp_path / "half.png"))
    assert len(explanation.feature_maps) == len(explanation.feature_layers) == 1
    assert explanation.feature_maps[0].shape == (8, 8, 3)  # 16 px pooled 2 x 2, 3 channels


def test_unreadable_files_and_wrong_classes_are_refused(classifier, tmp_path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    with pytest.raises(ImageReadError):
        explain_file(classifier, broken)
    with pytest.raises(ValueError, match="class index 7"):
        explain_file(classifier, red_left_half(tmp_path / "half.png"), class_index=7)


def test_feature_grid_tiles_each_map_stretched_to_its_own_range() -> None:
    maps = np.zeros((2, 3, 5), np.float32)
    maps[0, 0, 0] = 10.0  # one bright pixel
    maps[:, :, 1] = np.arange(6).reshape(2, 3)  # a ramp
    maps[:, :, 2] = 4.0  # constant: black
    tiled = feature_grid(maps, gap=1)
    grid = tiled.pixels
    assert tiled.shown == 5 and tiled.gaps[2, 0] and tiled.gaps[0, 3] and not tiled.gaps[0, 0]
    assert grid.dtype == np.uint8 and grid.shape == (2 * 3 - 1, 3 * 4 - 1)  # 3 x 2 grid of 2 x 3
    assert grid[0, 0] == 255 and grid[1, 2] == 0
    assert grid[0, 4] == 0 and grid[1, 6] == 255  # the ramp, from 0 to its maximum
    assert grid[:2, 8:].max() == 0
    assert feature_grid(maps, limit=2, gap=1).pixels.shape == (2, 7)
    with pytest.raises(ValueError):
        feature_grid(np.zeros((3, 3)))


def test_small_maps_are_spaced_so_they_do_not_run_together() -> None:
    tiled = feature_grid(np.random.default_rng(0).random((5, 5, 4), np.float32))
    assert tiled.pixels.shape == (11, 11)  # 2 x 2 maps of 5 x 5, one pixel apart
    assert tiled.gaps[5, :].all() and tiled.gaps[:, 5].all()
    large = feature_grid(np.ones((56, 56, 4), np.float32))
    assert large.pixels.shape == (56 * 2 + 6, 56 * 2 + 6)  # a tenth of a map apart


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, ["late: parts and shapes"]),
        (3, ["early: edges and colours", "middle: textures and patterns",
             "late: parts and shapes"]),
        (5, ["early: edges and colours", "early: edges and colours",
             "middle: textures and patterns", "late: parts and shapes",
             "late: parts and shapes"]),
    ],
)  # fmt: skip
def test_blocks_are_named_by_their_depth(count: int, expected: list[str]) -> None:
    assert block_depths(count) == expected
