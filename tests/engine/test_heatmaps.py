"""Heatmap maths: smooth, image-bounded upsampling of a class activation map, what an
empty map means, and the colours the window and the model card share; mapped back
onto the original image, and as an ONNX model explains its answer (onnxruntime only)."""

from __future__ import annotations

from pathlib import Path

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
from linnaeus.engine.images.heatmaps import square_to_original
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.images.preprocess import pad_box
from linnaeus.engine.images.preprocess import prepare_image
from linnaeus.engine.onnx.inference import Classifier
from tests.engine.conftest import RGB
from tests.onnx_factory import colour_weights
from tests.onnx_factory import make_model
from tests.onnx_factory import reference_outputs


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


# -- on the original image, and from the model ----------------------------------------


def test_pad_box_is_where_prepare_image_puts_the_image() -> None:
    for height, width in [(30, 60), (60, 30), (17, 40), (40, 40), (5, 100)]:
        white = np.full((height, width, 3), 255, np.uint8)
        prepared = prepare_image(white, InputFormat(size=32, resize="pad"))[:, :, 0]
        top, left, new_h, new_w = pad_box(height, width, 32)
        rows, cols = np.nonzero(prepared)
        assert (rows.min(), cols.min()) == (top, left)
        assert (rows.max() + 1, cols.max() + 1) == (top + new_h, left + new_w)


def test_pad_heatmap_lit_over_the_image_area_covers_the_whole_original() -> None:
    top, left, new_h, new_w = pad_box(30, 60, 16)
    square = np.zeros((16, 16), np.float32)
    square[top : top + new_h, left : left + new_w] = 1.0

    original = square_to_original(square, 30, 60, "pad")

    assert original.shape == (30, 60)
    np.testing.assert_allclose(original, 1.0, atol=1e-6)  # bicubic sums to 1 within float
    stretched = square_to_original(square, 30, 60, "stretch")
    assert stretched.min() == 0.0  # stretch maps the padding rows too


def test_stretch_heatmap_resizes_directly() -> None:
    square = np.zeros((16, 16), np.float32)
    square[:, :8] = 1.0

    original = square_to_original(square, 20, 64, "stretch")

    assert original.shape == (20, 64)
    assert original[:, :28].min() == 1.0 and original[:, 36:].max() == 0.0


def test_cam_to_square_keeps_positive_evidence_normalised() -> None:
    cam = np.array([[-3.0, 0.0], [1.0, 2.0]], np.float32)
    square = cam_to_square(cam, 16)
    assert square.shape == (16, 16) and square.dtype == np.float32
    assert square.max() == pytest.approx(1.0) and square.min() == 0.0
    assert not cam_to_square(-np.ones((4, 4), np.float32), 16).any()


def test_heatmap_lights_the_red_half_at_the_original_size(tmp_path: Path) -> None:
    classifier = Classifier(make_model(tmp_path / "pad.onnx", RGB, resize="pad"))
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20, 0] = 255

    heatmap = classifier.heatmap(image)

    assert heatmap.shape == (20, 40) and heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
    # the red half lit, the rest dark; the smoothing (engine.images.heatmaps) softens the edge
    assert heatmap[:, :16].mean() > 0.75 and heatmap[:, 24:].mean() < 0.1
    assert not classifier.heatmap(image, class_index=1).any()  # no green anywhere
    cam = classifier.explain_pixels(prepare_image(image, classifier.input_format)[None])["cam"]
    same = heatmap_to_image(cam[0, :, :, 0], image.shape, classifier.input_format)
    np.testing.assert_allclose(same, heatmap)  # the helper the model card report uses


def test_explain_pixels_gives_cam_and_feature_maps(model: Path) -> None:
    classifier = Classifier(model)
    images = np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)

    outputs = classifier.explain_pixels(images)

    expected = reference_outputs(images, colour_weights(3, 3))
    assert set(outputs) == {"probabilities", "cam", "features_1"}
    assert outputs["cam"].shape == (2, 8, 8, 3)
    np.testing.assert_allclose(outputs["cam"], expected["cam"], atol=1e-5)
    np.testing.assert_allclose(outputs["features_1"], expected["features_1"], atol=1e-6)
