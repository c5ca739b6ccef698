"""Featurewise statistics (the mean and std that centre and scale training images)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.images.augment import FeaturewiseStats
from linnaeus.engine.images.augment import featurewise_stats
from linnaeus.engine.progress import CancelToken
from tests.engine.conftest import noisy_image


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
