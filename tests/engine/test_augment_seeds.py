"""Augmentation randomness: what a seed draws, and the preview showing what training gets."""

from __future__ import annotations

import numpy as np
import pytest

from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.augment import Augmentation
from linnaeus.engine.images.augment import augment_batch
from linnaeus.engine.images.augment import augment_image
from linnaeus.engine.images.augment import preview_samples
from linnaeus.engine.images.augment import transform_matrix
from tests.engine.conftest import FULL
from tests.engine.conftest import ccw_degrees
from tests.engine.conftest import noisy_image


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
