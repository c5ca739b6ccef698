"""Augmentation inputs: channels kept, other layouts refused, what the preview accepts."""

from __future__ import annotations

import numpy as np
import pytest

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.augment import augment_batch
from linnaeus.engine.images.augment import augment_image
from linnaeus.engine.images.augment import preview_samples
from tests.engine.conftest import FULL
from tests.engine.conftest import noisy_image


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
