"""Augmentation against Keras' ImageDataGenerator: the same transforms, pixel for pixel."""

from __future__ import annotations

import types
from collections.abc import Iterator

import numpy as np
import pytest

from linnaeus.engine.images.augment import Augmentation
from tests.engine.conftest import augment_one
from tests.engine.conftest import ccw_degrees
from tests.engine.conftest import seed_where


def smooth_image(height: int = 64, width: int = 64, channels: int = 1) -> np.ndarray:
    """A smooth H x W x C uint8 pattern (slow waves plus a ramp)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    layers = [
        110 + 60 * np.sin(x / (7 + c) + c) * np.cos(y / 9) + 0.4 * (x + y) for c in range(channels)
    ]
    return np.clip(np.stack(layers, axis=2), 0, 255).round().astype(np.uint8)


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
