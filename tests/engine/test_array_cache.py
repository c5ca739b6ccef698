"""The on-disk array cache: rows by key, failures per row, crash-safe appends."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linnaeus.engine.images.array_cache import ArrayCache
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.images.preprocess import prepare_image


def test_fill_makes_missing_rows_once_and_reports_failures(tmp_path: Path) -> None:
    cache = ArrayCache(tmp_path / "c", (2, 2), "uint8")
    made: list[int] = []

    def make(position: int) -> np.ndarray:
        made.append(position)
        if position == 1:
            raise ValueError("damaged file")
        return np.full((2, 2), position, np.uint8)

    fill = cache.fill(["a", "b", "c", "a"], make)
    assert sorted(made) == [0, 1, 2]  # "a" only once
    assert fill.failures == {1: "damaged file"}
    assert fill.row_numbers[1] == -1
    view = cache.view()
    assert view[fill.row_numbers[0]].tolist() == [[0, 0], [0, 0]]
    assert fill.row_numbers[0] == fill.row_numbers[3]

    again = ArrayCache(tmp_path / "c", (2, 2), "uint8").fill(["c", "a"], make)
    assert again.computed == 0 and again.failures == {}


def test_unindexed_rows_from_a_crash_are_overwritten(tmp_path: Path) -> None:
    cache = ArrayCache(tmp_path / "c", (3,), "float32")
    cache.put({"a": np.array([1, 2, 3])})
    with open(tmp_path / "c" / "rows.bin", "ab") as handle:
        handle.write(b"\x00" * 7)  # a killed writer's partial row, never indexed
    reopened = ArrayCache(tmp_path / "c", (3,), "float32")
    reopened.put({"b": np.array([4, 5, 6])})
    assert reopened.get(["a", "b"]).tolist() == [[1, 2, 3], [4, 5, 6]]


def test_a_cache_of_another_shape_starts_empty(tmp_path: Path) -> None:
    ArrayCache(tmp_path / "c", (3,)).put({"a": np.zeros(3)})
    assert "a" not in ArrayCache(tmp_path / "c", (4,))


def test_prepare_image_shapes_and_policies() -> None:
    wide = np.zeros((10, 40, 3), np.uint8)
    wide[:, :, 0] = 200
    padded = prepare_image(wide, InputFormat(size=20, resize="pad"))
    assert padded.shape == (20, 20, 3)
    assert padded[0, 10, 0] == 0 and padded[10, 10, 0] == 200  # black bars above, image inside
    stretched = prepare_image(wide, InputFormat(size=20))
    assert (stretched[..., 0] == 200).all()
    gray = prepare_image(np.full((8, 8, 4), 255, np.uint8), InputFormat(size=16, channels=1))
    assert gray.shape == (16, 16, 1)
    ramp = np.tile(np.arange(64, dtype=np.uint16)[None, :] * 1000, (64, 1))
    binary = prepare_image(ramp, InputFormat(size=32, channels=1, binarize=True))
    assert set(np.unique(binary)) <= {0, 255} and len(np.unique(binary)) == 2
