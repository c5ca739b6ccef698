"""What each augmentation does to pixels: flips, rotation, shift, zoom, fill modes,
brightness."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from linnaeus.engine.images.augment import FILL_MODES
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.augment import Augmentation
from linnaeus.engine.images.augment import augment_batch
from linnaeus.engine.images.augment import augment_image
from linnaeus.engine.images.augment import transform_matrix
from tests.engine.conftest import augment_one
from tests.engine.conftest import ccw_degrees
from tests.engine.conftest import noisy_image
from tests.engine.conftest import seed_where


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def apply(matrix: np.ndarray, x: float, y: float) -> tuple[float, float]:
    out = matrix @ np.array([x, y, 1.0])
    return float(out[0]), float(out[1])


@pytest.mark.parametrize("params", [PRESETS["none"], Augmentation(brightness_range=(1, 1))])
def test_identity_leaves_pixels_unchanged(params: Augmentation) -> None:
    batch = np.stack([noisy_image(seed=i) for i in range(3)])
    result = augment_batch(batch, params, seed=1)
    assert np.array_equal(result, batch)
    assert not np.shares_memory(result, batch)
    alone = augment_image(batch[0], params, np.random.default_rng(1))
    assert np.array_equal(alone, batch[0]) and not np.shares_memory(alone, batch)


def test_horizontal_flip_when_drawn_is_an_exact_mirror() -> None:
    image = noisy_image(height=37, width=53)
    params = Augmentation(horizontal_flip=True)
    flipped_seed, matrix = seed_where(params, 37, 53, lambda m: m[0, 0] == -1)
    assert np.array_equal(matrix, [[-1, 0, 52], [0, 1, 0]])
    assert np.array_equal(augment_one(image, params, flipped_seed), np.fliplr(image))
    kept_seed, _ = seed_where(params, 37, 53, lambda m: m[0, 0] == 1)
    assert np.array_equal(augment_one(image, params, kept_seed), image)
    flips = [
        transform_matrix(params, np.random.default_rng([s, 0]), 37, 53)[0, 0] for s in range(200)
    ]
    assert 0.35 < np.mean(np.array(flips) == -1) < 0.65


def test_vertical_flip_when_drawn_is_an_exact_mirror() -> None:
    image = noisy_image(height=37, width=53, channels=1)
    params = Augmentation(vertical_flip=True)
    seed, _ = seed_where(params, 37, 53, lambda m: m[1, 1] == -1)
    assert np.array_equal(augment_one(image, params, seed), np.flipud(image))


def test_rotation_near_90_degrees_moves_a_marked_corner() -> None:
    size = 65
    image = np.zeros((size, size, 1), np.uint8)
    image[2:7, 2:7] = 255  # top-left corner mark, centred on (4, 4)
    params = Augmentation(rotation_range=90, fill_mode="constant")
    seed, matrix = seed_where(params, size, size, lambda m: ccw_degrees(m) > 80)
    theta = math.radians(ccw_degrees(matrix))
    centre = (size - 1) / 2
    # Counter-clockwise on screen (y points down) about the centre.
    expected_x = centre + math.cos(theta) * (4 - centre) + math.sin(theta) * (4 - centre)
    expected_y = centre - math.sin(theta) * (4 - centre) + math.cos(theta) * (4 - centre)
    assert apply(matrix, 4, 4) == pytest.approx((expected_x, expected_y), abs=1e-9)
    assert expected_x < 15 and expected_y > size - 15  # now near the bottom-left corner
    result = augment_one(image, params, seed)[:, :, 0]
    found = centroid(result > 127)
    assert found == pytest.approx((expected_x, expected_y), abs=1.0)
    assert result[: size // 2, :].max() == 0  # nothing left in the top half


def test_non_square_images_turn_about_their_centre() -> None:
    height, width = 40, 90
    image = np.zeros((height, width, 1), np.uint8)
    image[18:22, 43:47] = 255  # centred on the image centre (44.5, 19.5)
    image[18:22, 58:62] = 255  # and a mark 15 pixels right of it
    params = Augmentation(rotation_range=60, fill_mode="constant")
    seed, matrix = seed_where(params, height, width, lambda m: 30 < ccw_degrees(m) < 60)
    assert apply(matrix, 44.5, 19.5) == pytest.approx((44.5, 19.5), abs=1e-9)
    result = augment_one(image, params, seed)[:, :, 0]
    assert result[20, 44] > 200 and result[20, 45] > 200
    mark = result.copy()
    mark[16:24, 41:49] = 0
    assert centroid(mark > 127) == pytest.approx(apply(matrix, 59.5, 19.5), abs=1.0)
    assert apply(matrix, 59.5, 19.5)[1] < 19.5 - 6  # counter-clockwise: the mark rose


@pytest.mark.parametrize("axis", ["width", "height"])
def test_shift_moves_content_by_the_drawn_amount(axis: str) -> None:
    height, width = 60, 80
    image = np.zeros((height, width, 3), np.uint8)
    image[26:34, 36:44] = 200  # centred on (39.5, 29.5)
    params = Augmentation(**{f"{axis}_shift_range": 0.25}, fill_mode="constant")
    limit = 0.25 * (width if axis == "width" else height)
    moved = 0.0
    for seed in range(8):
        matrix = transform_matrix(params, np.random.default_rng([seed, 0]), height, width)
        assert matrix[:, :2] == pytest.approx(np.eye(2))
        dx, dy = matrix[:, 2]
        assert (dy if axis == "width" else dx) == 0
        assert abs(dx) <= limit and abs(dy) <= limit
        found = centroid(augment_one(image, params, seed)[:, :, 0] > 100)
        assert found == pytest.approx((39.5 + dx, 29.5 + dy), abs=1.0)
        moved = max(moved, abs(dx) + abs(dy))
    assert moved > 0.3 * limit


def test_zoom_in_enlarges_and_zoom_out_shrinks_a_centred_disc() -> None:
    size = 81
    image = np.zeros((size, size, 1), np.uint8)
    cv2.circle(image, (40, 40), 12, 255, thickness=-1)
    area = np.count_nonzero(image > 127)
    params = Augmentation(zoom_range=0.5, fill_mode="constant")
    for wanted, bigger in [
        (lambda m: min(m[0, 0], m[1, 1]) > 1.3, True),
        (lambda m: max(m[0, 0], m[1, 1]) < 0.8, False),
    ]:
        seed, matrix = seed_where(params, size, size, wanted)
        result = augment_one(image, params, seed)[:, :, 0] > 127
        magnification = matrix[0, 0] * matrix[1, 1]
        assert bool(np.count_nonzero(result) > area) is bigger
        assert np.count_nonzero(result) == pytest.approx(area * magnification, rel=0.06)
        assert centroid(result) == pytest.approx((40, 40), abs=0.5)


def shifted_right(fill_mode: str, cval: float = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """A horizontal ramp shifted right by more than a third of its width: source, result, shift."""
    height, width = 24, 64
    ramp = (40 + 2 * np.arange(width)).astype(np.uint8)
    image = np.repeat(ramp[np.newaxis, :, np.newaxis], height, axis=0)
    params = Augmentation(width_shift_range=0.45, fill_mode=fill_mode, cval=cval)
    seed, matrix = seed_where(params, height, width, lambda m: m[0, 2] > width / 3)
    return image, augment_one(image, params, seed), float(matrix[0, 2])


@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_fill_modes_fill_the_uncovered_strip(fill_mode: str) -> None:
    image, result, shift = shifted_right(fill_mode, cval=7)
    width = image.shape[1]
    ramp = image[0, :, 0].astype(float)
    strip = np.arange(0, int(shift) - 1)
    source = strip - shift  # where each strip column samples the image, all < -1
    expected = {
        "constant": np.full(strip.shape, 7.0),
        "nearest": np.full(strip.shape, ramp[0]),  # the edge column repeated
        "reflect": 40 + 2 * (-1 - source),  # abcd|dcba: column -1 - k mirrors column k
        "wrap": 40 + 2 * (source + width),  # the opposite side brought in
    }[fill_mode]
    assert result[:, strip, 0] == pytest.approx(
        np.broadcast_to(expected, (24, strip.size)), abs=1.5
    )
    covered = np.arange(int(shift) + 2, width)
    assert result[:, covered, 0] == pytest.approx(
        np.broadcast_to(40 + 2 * (covered - shift), (24, covered.size)), abs=1.5
    )


def test_brightness_scales_intensity_within_the_range() -> None:
    image = np.full((20, 30, 3), 100, np.uint8)
    params = Augmentation(brightness_range=(0.5, 1.5))
    factors = []
    for seed in range(40):
        result = augment_one(image, params, seed)
        assert result.min() == result.max()  # one factor for every pixel
        factors.append(result.mean() / 100)
    assert 0.495 <= min(factors) < 0.7 and 1.3 < max(factors) <= 1.505
    bright = augment_one(
        np.full((8, 8, 1), 200, np.uint8), Augmentation(brightness_range=(1.4, 1.5)), 0
    )
    assert np.all(bright == 255)  # clipped, never wrapped round
