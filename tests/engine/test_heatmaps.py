"""Heatmap maths: smooth, image-bounded upsampling of a class activation map, what an
empty map means, and the colours the window and the model card share."""

from __future__ import annotations

import numpy as np
import pytest

from linnaeus.engine.images.heatmaps import cam_to_square
from linnaeus.engine.images.heatmaps import evidence_note
from linnaeus.engine.images.heatmaps import has_evidence
from linnaeus.engine.images.heatmaps import heatmap_alpha
from linnaeus.engine.images.heatmaps import heatmap_colours
from linnaeus.engine.images.heatmaps import heatmap_to_image
from linnaeus.engine.images.heatmaps import legend_strip
from linnaeus.engine.images.heatmaps import overlay
from linnaeus.engine.images.heatmaps import resize_heatmap
from linnaeus.engine.images.preprocess import InputFormat


def one_peak(size: int = 7) -> np.ndarray:
    cam = np.full((size, size), -0.5, np.float32)
    cam[size // 2, size // 2] = 3.0
    return cam


@pytest.mark.parametrize("resize", ["stretch", "pad"])
@pytest.mark.parametrize("shape", [(300, 200), (120, 480), (224, 224), (40, 30)])
def test_the_heatmap_covers_exactly_the_image_within_0_and_1(resize, shape) -> None:
    rng = np.random.default_rng(1)
    heat = heatmap_to_image(rng.normal(size=(7, 7)), shape, InputFormat(224, 3, resize))
    assert heat.shape == shape and heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max() <= 1 and heat.max() > 0.9


def test_upsampling_is_smooth_and_round_without_cross_shaped_streaks() -> None:
    """Bilinear interpolation of a 7 x 7 map drew a blob with ridges along the rows and
    columns of its peak (issue 16): the value must fall off alike in every direction."""
    square = cam_to_square(one_peak(), 224)
    centre = 224 // 2
    for radius in (12, 16, 24):  # bilinear: 10-14 % apart
        straight = square[centre, centre + radius]
        diagonal = square[centre + round(radius / 2**0.5), centre + round(radius / 2**0.5)]
        assert abs(straight - diagonal) / max(straight, diagonal) < 0.05, radius


def test_a_class_with_no_positive_evidence_gets_a_sentence_not_a_blank() -> None:
    against = np.full((7, 7), -2.0, np.float32)
    heat = heatmap_to_image(against, (50, 60), InputFormat(224, 3, "stretch"))
    assert not has_evidence(heat) and heat.max() == 0
    note = evidence_note(heat, "no tumour")
    assert note is not None and "“no tumour”" in note
    assert evidence_note(heatmap_to_image(one_peak(), (50, 60), InputFormat(224)), "yes") is None


def test_noise_level_evidence_counts_as_none() -> None:
    cam = np.full((7, 7), -1.0, np.float32)
    cam[0, 0] = 1e-6
    assert not has_evidence(cam_to_square(cam, 32))


def test_resizing_never_leaves_0_to_1() -> None:
    sharp = np.zeros((8, 8), np.float32)
    sharp[3:5, 3:5] = 1.0  # bicubic overshoots at such edges
    for height, width in ((64, 64), (3, 5), (8, 8)):
        resized = resize_heatmap(sharp, height, width)
        assert resized.shape == (height, width)
        assert resized.min() >= 0 and resized.max() <= 1


def test_colours_run_dark_to_light_and_the_overlay_keeps_places_without_evidence() -> None:
    colours = heatmap_colours().astype(int)
    assert colours.shape == (256, 3) and colours[0].sum() < 60 and colours[-1].sum() > 600
    strip = legend_strip(100, 4)
    assert strip.shape == (4, 100, 3) and (strip[0, 0] == colours[0]).all()
    rgb = np.full((4, 4, 3), 128, np.uint8)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1.0
    shown = overlay(rgb, heat)
    assert (shown[1:, :] == 128).all() and (shown[0, 0] != 128).any()
    alpha = heatmap_alpha()  # weak evidence a faint tint, not a haze over the whole image
    assert alpha[0] == 0 and alpha[77] < 30 and alpha[255] == 255 and (np.diff(alpha) >= 0).all()
