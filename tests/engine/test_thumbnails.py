"""The thumbnail cache: bounded size, kept aspect, atomic files, one decode per image."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.images import thumbnails
from linnaeus.engine.images.imageio import content_hash
from linnaeus.engine.images.thumbnails import ThumbnailCache
from tests.image_factory import dicom_copy
from tests.image_factory import write_image


def _image(
    folder: Path,
    name: str = "wide.png",
    *,
    kind: str = "png",
    size: tuple[int, int] = (64, 48),
    channels: int = 3,
    seed: int = 0,
    bit_depth: int = 8,
) -> tuple[Path, str]:
    path = write_image(folder / name, kind, size, channels, seed, bit_depth)
    return path, content_hash(path.read_bytes())


def _size_of(thumbnail: Path) -> tuple[int, int]:
    pixels = cv2.imdecode(np.fromfile(thumbnail, np.uint8), cv2.IMREAD_UNCHANGED)
    assert pixels is not None and pixels.ndim == 3 and pixels.shape[2] == 3
    return pixels.shape[1], pixels.shape[0]


def _files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_path_fans_out_by_the_first_two_characters_of_the_hash(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path, size=128)
    digest = "ab" + "0" * 30

    assert cache.path_for(digest) == tmp_path / "ab" / f"{digest}_128.jpg"


@pytest.mark.parametrize("bad_hash", ["", "a", "../../etc/passwd", "ABCDEF", "ab/cd"])
def test_path_refuses_anything_but_a_content_hash(tmp_path: Path, bad_hash: str) -> None:
    with pytest.raises(ValueError, match="not a content hash"):
        ThumbnailCache(tmp_path).path_for(bad_hash)


@pytest.mark.parametrize(
    ("size", "expected"),
    [((300, 150), (64, 32)), ((150, 300), (32, 64)), ((99, 64), (64, 41))],
)
def test_thumbnail_fits_the_size_and_keeps_the_aspect(
    tmp_path: Path, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    image, digest = _image(tmp_path, size=size)

    thumbnail = ThumbnailCache(tmp_path / "cache", size=64).get(image, digest)

    assert thumbnail == ThumbnailCache(tmp_path / "cache", size=64).path_for(digest)
    assert _size_of(thumbnail) == expected


def test_small_image_is_not_enlarged(tmp_path: Path) -> None:
    image, digest = _image(tmp_path, size=(40, 30))

    thumbnail = ThumbnailCache(tmp_path / "cache", size=64).get(image, digest)

    assert _size_of(thumbnail) == (40, 30)


@pytest.mark.parametrize(
    "options",
    [
        {"kind": "png", "channels": 4},
        {"kind": "png", "channels": 1, "bit_depth": 16},
        {"kind": "tiff", "channels": 2, "bit_depth": 16},
        {"kind": "jpeg", "channels": 1},
    ],
)
def test_every_kind_of_image_gets_an_rgb_thumbnail(tmp_path: Path, options: dict[str, Any]) -> None:
    image, digest = _image(tmp_path, "image", size=(80, 60), **options)

    thumbnail = ThumbnailCache(tmp_path / "cache", size=32).get(image, digest)

    assert _size_of(thumbnail) == (32, 24)


def test_dicom_gets_a_thumbnail(tmp_path: Path) -> None:
    image = tmp_path / "ct.dcm"
    image.write_bytes(dicom_copy("CT_small.dcm"))

    thumbnail = ThumbnailCache(tmp_path / "cache", size=64).get(image, content_hash(b"ct"))

    assert _size_of(thumbnail) == (64, 64)


def test_cached_thumbnail_is_returned_without_decoding_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, digest = _image(tmp_path, size=(300, 150))
    cache = ThumbnailCache(tmp_path / "cache", size=64)
    thumbnail = cache.get(image, digest)
    written = thumbnail.stat().st_mtime_ns

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("the image was decoded again")

    monkeypatch.setattr(thumbnails, "read_image", no_decoding)

    assert cache.get(image, digest) == thumbnail
    assert thumbnail.stat().st_mtime_ns == written


def test_each_size_has_its_own_thumbnail(tmp_path: Path) -> None:
    image, digest = _image(tmp_path, size=(300, 150))

    small = ThumbnailCache(tmp_path / "cache", size=32).get(image, digest)
    large = ThumbnailCache(tmp_path / "cache", size=128).get(image, digest)

    assert small != large
    assert (_size_of(small), _size_of(large)) == ((32, 16), (128, 64))


def test_writing_leaves_only_the_thumbnail_behind(tmp_path: Path) -> None:
    image, digest = _image(tmp_path)
    cache = ThumbnailCache(tmp_path / "cache", size=32)

    cache.get(image, digest)

    assert _files_under(tmp_path / "cache") == [f"{digest[:2]}/{digest}_32.jpg"]


def test_a_failed_write_leaves_no_file_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, digest = _image(tmp_path)
    cache = ThumbnailCache(tmp_path / "cache", size=32)

    def killed(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.get(image, digest)

    assert _files_under(tmp_path / "cache") == []


def test_unreadable_image_raises_and_caches_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    cache = ThumbnailCache(tmp_path / "cache")

    with pytest.raises(ImageReadError, match="not an image"):
        cache.get(broken, content_hash(broken.read_bytes()))

    assert _files_under(tmp_path) == ["broken.png"]


def test_concurrent_requests_for_the_same_images_all_get_whole_files(tmp_path: Path) -> None:
    images = [
        _image(tmp_path, f"image{index}.png", size=(120, 90), seed=index) for index in range(4)
    ]
    cache = ThumbnailCache(tmp_path / "cache", size=48)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda job: cache.get(*job), images * 6))

    assert results == [cache.path_for(digest) for _, digest in images] * 6
    assert all(_size_of(path) == (48, 36) for path in results)
    assert len(_files_under(tmp_path / "cache")) == 4


def test_clear_removes_every_thumbnail_and_the_cache_still_works(tmp_path: Path) -> None:
    image, digest = _image(tmp_path)
    cache = ThumbnailCache(tmp_path / "cache", size=32)
    cache.get(image, digest)

    cache.clear()
    cache.clear()  # clearing an empty cache is fine

    assert not (tmp_path / "cache").exists()
    assert cache.get(image, digest).is_file()


def test_size_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        ThumbnailCache(tmp_path, size=0)
