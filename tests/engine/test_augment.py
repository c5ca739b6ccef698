"""Augmentation: settings and presets, seeded transforms, fill modes, statistics, Keras parity."""

from __future__ import annotations

import json
import math
import types
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.images.augment import FILL_MODES
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.augment import Augmentation
from linnaeus.engine.images.augment import FeaturewiseStats
from linnaeus.engine.images.augment import augment_batch
from linnaeus.engine.images.augment import augment_image
from linnaeus.engine.images.augment import featurewise_stats
from linnaeus.engine.images.augment import load_augmentation
from linnaeus.engine.images.augment import preview_samples
from linnaeus.engine.images.augment import transform_matrix
from linnaeus.engine.progress import CancelToken

# --- helpers -----------------------------------------------------------------------------


def smooth_image(height: int = 64, width: int = 64, channels: int = 1) -> np.ndarray:
    """A smooth H x W x C uint8 pattern (slow waves plus a ramp)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    layers = [
        110 + 60 * np.sin(x / (7 + c) + c) * np.cos(y / 9) + 0.4 * (x + y) for c in range(channels)
    ]
    return np.clip(np.stack(layers, axis=2), 0, 255).round().astype(np.uint8)


def noisy_image(height: int = 48, width: int = 40, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


def seed_where(
    params: Augmentation, height: int, width: int, wanted: Callable[[np.ndarray], bool]
) -> tuple[int, np.ndarray]:
    """The first batch seed whose image 0 gets a matrix with ``wanted``, and that matrix."""
    for seed in range(5000):
        matrix = transform_matrix(params, np.random.default_rng([seed, 0]), height, width)
        if wanted(matrix):
            return seed, matrix
    raise AssertionError("no seed gives the wanted transform")


def augment_one(image: np.ndarray, params: Augmentation, seed: int) -> np.ndarray:
    """What training makes of ``image`` as image 0 of a batch with ``seed``."""
    return augment_batch(image[np.newaxis], params, seed)[0]


def ccw_degrees(matrix: np.ndarray) -> float:
    """The counter-clockwise (on screen) rotation angle of a rotation-only forward matrix."""
    return math.degrees(math.atan2(matrix[0, 1], matrix[0, 0]))


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def apply(matrix: np.ndarray, x: float, y: float) -> tuple[float, float]:
    out = matrix @ np.array([x, y, 1.0])
    return float(out[0]), float(out[1])


# --- settings, presets, files -------------------------------------------------------------


def test_presets_have_the_seed_values() -> None:
    assert PRESETS["none"].is_identity
    assert PRESETS["gentle"] == Augmentation(
        rotation_range=10.0,
        width_shift_range=0.1,
        height_shift_range=0.1,
        shear_range=0.1,
        zoom_range=0.1,
    )
    strong = PRESETS["strong"]
    assert (strong.rotation_range, strong.width_shift_range, strong.height_shift_range) == (
        40.0,
        0.2,
        0.2,
    )
    assert (strong.shear_range, strong.zoom_range) == (0.2, 0.2)
    assert strong.horizontal_flip and not strong.vertical_flip
    assert strong.brightness_range is None and strong.fill_mode == "nearest"


FULL = Augmentation(
    rotation_range=25,
    width_shift_range=0.3,
    height_shift_range=0.05,
    shear_range=12,
    zoom_range=0.4,
    horizontal_flip=True,
    vertical_flip=True,
    brightness_range=(0.7, 1.3),
    fill_mode="constant",
    cval=12,
    featurewise_center=True,
    featurewise_std_normalization=True,
)


@pytest.mark.parametrize("params", [*PRESETS.values(), FULL], ids=[*PRESETS, "full"])
def test_settings_round_trip_through_json(params: Augmentation) -> None:
    text = json.dumps(params.to_dict())
    assert Augmentation.from_dict(json.loads(text)) == params


def test_from_dict_fills_missing_settings_with_defaults() -> None:
    params = Augmentation.from_dict({"rotation_range": 15, "brightness_range": [0.9, 1.1]})
    assert params == Augmentation(rotation_range=15.0, brightness_range=(0.9, 1.1))
    assert isinstance(params.rotation_range, float)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rotation_range", -1),
        ("rotation_range", 200),
        ("rotation_range", "10"),
        ("rotation_range", float("nan")),
        ("width_shift_range", 1.0),
        ("height_shift_range", -0.1),
        ("shear_range", 90),
        ("zoom_range", 1.0),
        ("zoom_range", True),
        ("horizontal_flip", "yes"),
        ("vertical_flip", 1),
        ("brightness_range", (1.2, 0.8)),
        ("brightness_range", (-0.1, 1.0)),
        ("brightness_range", (1.0,)),
        ("brightness_range", "bright"),
        ("fill_mode", "mirror"),
        ("cval", 300),
        ("featurewise_center", None),
    ],
)
def test_invalid_settings_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(LinnaeusError, match=field):
        Augmentation(**{field: value})
    with pytest.raises(LinnaeusError, match=field):
        Augmentation.from_dict({field: value})
    with pytest.raises(LinnaeusError, match=field):
        PRESETS["gentle"].replace(**{field: value})


def test_unknown_settings_are_refused_by_name() -> None:
    with pytest.raises(LinnaeusError, match="channel_shift_range"):
        Augmentation.from_dict({"rotation_range": 5, "channel_shift_range": 3})
    with pytest.raises(LinnaeusError, match="rotaton_range"):
        PRESETS["none"].replace(rotaton_range=5)
    with pytest.raises(LinnaeusError):
        Augmentation.from_dict([("rotation_range", 5)])  # type: ignore[arg-type]


def test_replace_returns_a_checked_copy() -> None:
    changed = PRESETS["gentle"].replace(horizontal_flip=True, fill_mode="reflect")
    assert changed.horizontal_flip and changed.fill_mode == "reflect"
    assert changed.rotation_range == 10 and not PRESETS["gentle"].horizontal_flip


def test_identity_ignores_featurewise_flags_but_not_brightness() -> None:
    assert Augmentation(featurewise_center=True, brightness_range=(1, 1)).is_identity
    assert not Augmentation(brightness_range=(0.9, 1.0)).is_identity
    assert not Augmentation(vertical_flip=True).is_identity


def test_load_augmentation_presets_and_files(tmp_path: Path) -> None:
    assert load_augmentation("gentle") is PRESETS["gentle"]
    assert load_augmentation(" Strong ") is PRESETS["strong"]
    path = tmp_path / "my settings.json"
    path.write_text(json.dumps(FULL.to_dict()), encoding="utf-8")
    assert load_augmentation(str(path)) == FULL


def test_load_augmentation_explains_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(LinnaeusError, match="gentle"):  # lists the presets
        load_augmentation("wild")
    broken = tmp_path / "broken.json"
    broken.write_text('{"rotation_range": 10,', encoding="utf-8")
    with pytest.raises(LinnaeusError, match="not valid JSON"):
        load_augmentation(str(broken))
    bad_value = tmp_path / "bad.json"
    bad_value.write_text('{"zoom_range": 2}', encoding="utf-8")
    with pytest.raises(LinnaeusError, match=r"bad\.json.*zoom_range"):
        load_augmentation(str(bad_value))
    not_an_object = tmp_path / "list.json"
    not_an_object.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(LinnaeusError, match="JSON object"):
        load_augmentation(str(not_an_object))
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(LinnaeusError, match=r"binary\.json"):
        load_augmentation(str(binary))


# --- seeds and randomness ------------------------------------------------------------------


def test_same_seed_same_images_and_different_seed_different() -> None:
    batch = np.stack([noisy_image(seed=i) for i in range(6)])
    params = PRESETS["strong"].replace(brightness_range=(0.8, 1.2))
    first = augment_batch(batch, params, seed=11)
    assert np.array_equal(first, augment_batch(batch, params, seed=11))
    assert not np.array_equal(first, augment_batch(batch, params, seed=12))
    assert first.shape == batch.shape and first.dtype == np.uint8
    assert not np.array_equal(first, batch)


def test_an_image_depends_only_on_seed_and_index() -> None:
    batch = np.stack([noisy_image(seed=i) for i in range(5)])
    params = PRESETS["strong"]
    whole = augment_batch(batch, params, seed=3)
    assert np.array_equal(augment_batch(batch[:2], params, seed=3), whole[:2])
    for index in range(5):
        alone = augment_image(batch[index], params, np.random.default_rng([3, index]))
        assert np.array_equal(alone, whole[index])


def test_negative_seeds_wrap_round() -> None:
    batch = np.stack([noisy_image(seed=i) for i in range(2)])
    assert np.array_equal(
        augment_batch(batch, PRESETS["strong"], seed=-1),
        augment_batch(batch, PRESETS["strong"], seed=2**64 - 1),
    )


def test_preview_shows_exactly_what_training_gets() -> None:
    image = noisy_image()
    params = FULL.replace(fill_mode="reflect")
    samples = preview_samples(image, params, count=8, seed=42)
    batch = augment_batch(np.stack([image] * 8), params, seed=42)
    assert len(samples) == 8
    for sample, row in zip(samples, batch, strict=True):
        assert np.array_equal(sample, row)
    assert len({sample.tobytes() for sample in samples}) == 8


@pytest.mark.parametrize("params", [PRESETS["none"], FULL], ids=["none", "full"])
def test_draws_a_fixed_amount_of_randomness(params: Augmentation) -> None:
    used = np.random.default_rng(5)
    transform_matrix(params, used, 30, 40)
    reference = np.random.default_rng(5)
    reference.random(8)
    assert used.random() == reference.random()
    used = np.random.default_rng(5)
    augment_image(noisy_image(), params, used)
    reference = np.random.default_rng(5)
    reference.random(9)
    assert used.random() == reference.random()


def test_a_slider_changes_only_its_own_part_of_a_sample() -> None:
    small = transform_matrix(Augmentation(rotation_range=10), np.random.default_rng(8), 50, 50)
    large = transform_matrix(
        Augmentation(rotation_range=20, brightness_range=(0.5, 1.5)),
        np.random.default_rng(8),
        50,
        50,
    )
    assert ccw_degrees(large) == pytest.approx(2 * ccw_degrees(small))


# --- geometry ------------------------------------------------------------------------------


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


# --- shapes and preview inputs -------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_channels_are_kept(channels: int) -> None:
    batch = np.stack([noisy_image(channels=channels, seed=i) for i in range(4)])
    params = FULL.replace(fill_mode="wrap")
    result = augment_batch(batch, params, seed=0)
    assert result.shape == batch.shape and result.dtype == np.uint8
    assert augment_image(batch[0], params, np.random.default_rng(0)).shape == batch[0].shape


@pytest.mark.parametrize(
    "image",
    [np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8)],
)
def test_other_layouts_are_refused(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"H x W x 1\|3 uint8"):
        augment_image(image, PRESETS["gentle"], np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"H x W x 1\|3 uint8"):
        augment_batch(image[np.newaxis], PRESETS["none"], seed=0)


def test_preview_stretches_16_bit_gray() -> None:
    image = np.linspace(1000, 20000, 30 * 40).reshape(30, 40).astype(np.uint16)
    samples = preview_samples(image, PRESETS["none"], count=2)
    assert [s.shape for s in samples] == [(30, 40, 1)] * 2 and samples[0].dtype == np.uint8
    assert samples[0].min() == 0 and samples[0].max() == 255
    assert np.all(np.diff(samples[0][:, :, 0].ravel().astype(int)) >= 0)  # order kept
    moved = preview_samples(image, PRESETS["strong"], count=3, seed=4)
    assert [s.shape for s in moved] == [(30, 40, 1)] * 3


def test_preview_drops_alpha() -> None:
    rgb = noisy_image()
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 9, np.uint8)], axis=2)
    for got, want in zip(
        preview_samples(rgba, PRESETS["strong"], count=4, seed=2),
        preview_samples(rgb, PRESETS["strong"], count=4, seed=2),
        strict=True,
    ):
        assert got.shape == rgb.shape and np.array_equal(got, want)
    gray_alpha = np.zeros((10, 12, 2), np.uint16)
    assert preview_samples(gray_alpha, PRESETS["gentle"], count=1)[0].shape == (10, 12, 1)
    assert preview_samples(rgb, PRESETS["gentle"], count=0) == []


def test_preview_refuses_float_pixels() -> None:
    with pytest.raises(LinnaeusError, match="float32"):
        preview_samples(np.zeros((8, 8), np.float32), PRESETS["gentle"], count=1)


# --- featurewise statistics ----------------------------------------------------------------


def test_featurewise_stats_streams_to_numpys_answer() -> None:
    def training_images() -> Iterator[np.ndarray]:
        for seed in range(9):
            image = noisy_image(height=33, width=47, seed=seed)
            image[..., 1] //= 3  # channels with different statistics
            yield image

    stats = featurewise_stats(training_images())
    stacked = np.stack(list(training_images())).astype(np.float64)
    assert stats.mean == pytest.approx(stacked.mean(axis=(0, 1, 2)), rel=1e-6)
    assert stats.std == pytest.approx(stacked.std(axis=(0, 1, 2)), rel=1e-6)
    assert len(stats.mean) == 3


def test_featurewise_stats_of_gray_and_constant_images() -> None:
    stats = featurewise_stats(iter([np.full((5, 6), 80, np.uint8), np.full((3, 3), 80, np.uint8)]))
    assert stats == FeaturewiseStats(mean=(80.0,), std=(1e-3,))


@pytest.mark.parametrize(
    "images",
    [
        [],
        [np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 1), np.uint8)],
        [np.zeros((4, 4), np.uint16)],
    ],
    ids=["none", "mixed channels", "16-bit"],
)
def test_featurewise_stats_refuses_bad_input(images: list[np.ndarray]) -> None:
    with pytest.raises(LinnaeusError):
        featurewise_stats(images)


def test_featurewise_stats_can_be_cancelled() -> None:
    cancel = CancelToken()

    def images() -> Iterator[np.ndarray]:
        yield noisy_image()
        cancel.cancel()
        yield noisy_image()

    with pytest.raises(Cancelled):
        featurewise_stats(images(), cancel=cancel)


def test_featurewise_stats_round_trip_and_checks() -> None:
    stats = FeaturewiseStats(mean=(120.5, 99.0, 80.25), std=(30.0, 20.0, 1e-3))
    assert FeaturewiseStats.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats
    with pytest.raises(LinnaeusError, match="scale"):
        FeaturewiseStats.from_dict({"mean": [1.0], "std": [2.0], "scale": 1})
    with pytest.raises(LinnaeusError, match="std"):
        FeaturewiseStats.from_dict({"mean": [1.0]})
    with pytest.raises(LinnaeusError):
        FeaturewiseStats(mean=(1.0, 2.0), std=(1.0,))
    with pytest.raises(LinnaeusError, match="positive"):
        FeaturewiseStats(mean=(1.0,), std=(0.0,))


# --- parity with Keras' ImageDataGenerator -------------------------------------------------


@pytest.fixture(scope="module")
def keras_image() -> Iterator[types.ModuleType]:
    """Keras' legacy image module (ImageDataGenerator's transforms).

    Its ``apply_affine_transform`` resamples with scipy. When scipy is not
    installed (it is not a Linnaeus dependency) scipy's ``affine_transform``
    is stood in for by ``keras.ops.image.affine_transform`` (TensorFlow's
    bilinear projective transform), so Keras' own matrix code still runs.
    """
    legacy = pytest.importorskip("keras.src.legacy.preprocessing.image")
    try:
        import scipy.ndimage  # noqa: F401
    except ImportError:
        import keras

        def affine_transform(
            channel: np.ndarray,
            matrix: np.ndarray,
            offset: np.ndarray,
            order: int = 1,
            mode: str = "constant",
            cval: float = 0.0,
        ) -> np.ndarray:
            assert order == 1
            # scipy works in (row, col); keras.ops in (x, y) = (col, row).
            transform = [matrix[1, 1], matrix[1, 0], offset[1], matrix[0, 1], matrix[0, 0]]
            transform += [offset[0], 0.0, 0.0]
            result = keras.ops.image.affine_transform(
                channel[np.newaxis, :, :, np.newaxis].astype(np.float32),
                np.array([transform], np.float32),
                interpolation="bilinear",
                fill_mode=mode,
                fill_value=cval,
                data_format="channels_last",
            )
            return np.asarray(result)[0, :, :, 0]

        stand_in = types.SimpleNamespace(affine_transform=affine_transform)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(
                legacy,
                "scipy",
                types.SimpleNamespace(ndimage=types.SimpleNamespace(interpolation=stand_in)),
            )
            yield legacy
        return
    yield legacy


def keras_transform(
    keras_image: types.ModuleType, image: np.ndarray, **kwargs: float
) -> np.ndarray:
    return keras_image.apply_affine_transform(
        image.astype(np.float32),
        row_axis=0,
        col_axis=1,
        channel_axis=2,
        fill_mode="nearest",
        **kwargs,
    )


def test_rotation_matches_keras(keras_image: types.ModuleType) -> None:
    image = smooth_image(64, 64)
    params = Augmentation(rotation_range=40)
    seed, matrix = seed_where(params, 64, 64, lambda m: abs(ccw_degrees(m)) > 25)
    theta = ccw_degrees(matrix)
    ours = augment_one(image, params, seed).astype(np.float64)
    theirs = keras_transform(keras_image, image, theta=theta)
    assert np.mean(np.abs(ours - theirs)) < 1  # about 0.25 when measured
    opposite = keras_transform(keras_image, image, theta=-theta)
    assert np.mean(np.abs(ours - opposite)) > 10  # the comparison can tell directions apart


def test_full_affine_matches_keras_on_a_square_image(keras_image: types.ModuleType) -> None:
    """Rotation, shift, shear and zoom together, drawn in the documented order.

    Keras 3's ``apply_affine_transform`` applies ``tx`` to columns and ``ty`` to
    rows, so our horizontal shift is its ``tx`` (ImageDataGenerator fills
    ``tx`` from height_shift_range: the swap this module does not copy).
    """
    size = 64
    image = smooth_image(size, size)
    params = Augmentation(
        rotation_range=30,
        width_shift_range=0.1,
        height_shift_range=0.15,
        shear_range=15,
        zoom_range=0.2,
    )
    for seed in range(3):
        u = np.random.default_rng([seed, 0]).random(8)
        theirs = keras_transform(
            keras_image,
            image,
            theta=30 * (2 * u[0] - 1),
            tx=0.1 * (2 * u[2] - 1) * size,
            ty=0.15 * (2 * u[1] - 1) * size,
            shear=15 * (2 * u[3] - 1),
            zx=1 + 0.2 * (2 * u[4] - 1),
            zy=1 + 0.2 * (2 * u[5] - 1),
        )
        ours = augment_one(image, params, seed).astype(np.float64)
        assert np.mean(np.abs(ours - theirs)) < 1
