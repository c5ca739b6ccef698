"""Tests for the built-in demo image set (linnaeus.engine.demo.images)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from linnaeus.engine.demo.images import DEMO_CLASSES
from linnaeus.engine.demo.images import DemoImageSet
from linnaeus.engine.demo.images import draw_cell
from linnaeus.engine.demo.images import make_demo_images
from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _draw_many(seed: int, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    images = [
        draw_cell(kind, np.random.default_rng((seed, k, i)))
        for k, kind in enumerate(DEMO_CLASSES)
        for i in range(per_class)
    ]
    labels = np.repeat(np.arange(len(DEMO_CLASSES)), per_class)
    return np.stack(images), labels


def _nearest_centroid_accuracy(
    train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray
) -> float:
    mean, std = train.mean(0), train.std(0) + 1e-9
    train, test = (train - mean) / std, (test - mean) / std
    centroids = np.stack([train[train_y == k].mean(0) for k in range(len(DEMO_CLASSES))])
    predicted = np.argmin(((test[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    return float((predicted == test_y).mean())


def _cell_area(image: np.ndarray) -> int:
    """Pixels of the stained blob that covers the image centre."""
    green = image[..., 1].astype(np.float32)
    mask = (green < 0.9 * np.median(green)).astype(np.uint8)
    _, components = cv2.connectedComponents(mask)
    h, w = mask.shape
    centre = components[h // 2 - 2 : h // 2 + 3, w // 2 - 2 : w // 2 + 3]
    label = np.bincount(centre[centre > 0]).argmax()
    return int((components == label).sum())


@pytest.mark.parametrize("kind", DEMO_CLASSES)
@pytest.mark.parametrize("size", [64, 96])
def test_draw_cell_gives_rgb_uint8_of_the_asked_size(kind: str, size: int) -> None:
    image = draw_cell(kind, np.random.default_rng(1), size)
    assert image.shape == (size, size, 3)
    assert image.dtype == np.uint8
    assert 20 < image.mean() < 250


def test_draw_cell_refuses_an_unknown_class() -> None:
    with pytest.raises(ValueError, match="unknown demo class"):
        draw_cell("mutant", np.random.default_rng(0))


def test_layout_counts_and_names(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = make_demo_images(folder, per_class=12, size=64)
    assert isinstance(result, DemoImageSet)
    assert result.folder == folder
    assert result.counts == dict.fromkeys(DEMO_CLASSES, 12)
    assert sorted(p.name for p in folder.iterdir()) == sorted(DEMO_CLASSES)
    for kind in DEMO_CLASSES:
        names = sorted(p.name for p in (folder / kind).iterdir())
        assert names == [f"{kind}_{i:03d}.png" for i in range(1, 13)]
    image = _read_rgb(folder / "healthy" / "healthy_001.png")
    assert image.shape == (64, 64, 3)


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    first = make_demo_images(tmp_path / "a", per_class=6, seed=7)
    second = make_demo_images(tmp_path / "b", per_class=6, seed=7)
    third = make_demo_images(tmp_path / "c", per_class=6, seed=8)
    files_a, files_b, files_c = (_files(tmp_path / n) for n in "abc")
    assert files_a == files_b
    assert first.mislabelled == second.mislabelled
    assert files_a.keys() == files_c.keys()
    assert all(files_a[name] != files_c[name] for name in files_a)
    assert third.counts == first.counts


def test_mislabelled_images_sit_in_the_folder_of_the_wrong_label(tmp_path: Path) -> None:
    result = make_demo_images(tmp_path / "demo", per_class=80, size=48)
    assert len(result.mislabelled) == round(0.04 * 240)
    for relative, true_class, label in result.mislabelled:
        path = result.folder / relative
        assert path.is_file()
        assert path.parent.name == label
        assert path.name.startswith(f"{label}_")
        assert true_class in DEMO_CLASSES
        assert label in DEMO_CLASSES
        assert true_class != label
    assert len({entry[0] for entry in result.mislabelled}) == len(result.mislabelled)


@pytest.mark.parametrize(("per_class", "fraction", "expected"), [(5, 0.04, 3), (5, 0.0, 0)])
def test_at_least_three_mislabelled_unless_none_asked(
    tmp_path: Path, per_class: int, fraction: float, expected: int
) -> None:
    result = make_demo_images(
        tmp_path / "demo", per_class=per_class, size=32, wrong_fraction=fraction
    )
    assert len(result.mislabelled) == expected


def test_progress_counts_every_image(tmp_path: Path) -> None:
    reports: list[Progress] = []
    make_demo_images(tmp_path / "demo", per_class=4, size=32, on_progress=reports.append)
    assert {p.stage for p in reports} == {"demo"}
    assert [p.done for p in reports] == list(range(13))
    assert {p.total for p in reports} == {12}


def test_cancel_stops_and_leaves_no_files(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    token = CancelToken()
    seen: list[Progress] = []

    def cancel_after_five(progress: Progress) -> None:
        seen.append(progress)
        if progress.done == 5:
            token.cancel()

    with pytest.raises(Cancelled):
        make_demo_images(folder, per_class=20, on_progress=cancel_after_five, cancel=token)
    assert seen[-1].done == 5
    assert not folder.exists()
    # The folder is left as it was, so the same call can be made again.
    assert make_demo_images(folder, per_class=2, size=32).counts["healthy"] == 2


def test_cancel_keeps_an_existing_empty_folder(tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        make_demo_images(tmp_path, per_class=3, cancel=token)
    assert tmp_path.is_dir()
    assert list(tmp_path.iterdir()) == []


def test_a_non_empty_folder_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(LinnaeusError, match="not an empty folder"):
        make_demo_images(tmp_path, per_class=2)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_file_in_place_of_the_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    target.write_text("x")
    with pytest.raises(LinnaeusError, match="not an empty folder"):
        make_demo_images(target, per_class=2)


@pytest.mark.parametrize(
    "options", [{"per_class": 0}, {"size": 8}, {"wrong_fraction": 0.9}, {"seed": -1}]
)
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, float]) -> None:
    with pytest.raises(LinnaeusError):
        make_demo_images(tmp_path / "demo", **options)  # type: ignore[arg-type]
    assert not (tmp_path / "demo").exists()


def test_images_vary_and_cell_sizes_vary() -> None:
    images, labels = _draw_many(seed=3, per_class=30)
    flat = images.reshape(len(images), -1).astype(np.int16)
    assert len({row.tobytes() for row in flat}) == len(images)
    areas = np.array([_cell_area(image) for image in images[labels == 0]])
    assert np.percentile(areas, 90) / np.percentile(areas, 10) > 1.4


def test_classes_are_learnable_but_not_by_mean_colour() -> None:
    train, train_y = _draw_many(seed=1, per_class=60)
    test, test_y = _draw_many(seed=2, per_class=60)

    def pixels(images: np.ndarray) -> np.ndarray:
        grey = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in images]
        small = [cv2.resize(g, (16, 16), interpolation=cv2.INTER_AREA) for g in grey]
        return np.stack(small).reshape(len(images), -1).astype(np.float64)

    def mean_colour(images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1, 3).mean(axis=1)

    by_pixels = _nearest_centroid_accuracy(pixels(train), train_y, pixels(test), test_y)
    by_colour = _nearest_centroid_accuracy(mean_colour(train), train_y, mean_colour(test), test_y)
    assert by_pixels > 0.45
    assert by_colour < 0.8
