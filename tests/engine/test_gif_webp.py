"""GIF and WebP images (the first frame of an animated one) read wherever images
are read: import, predict, thumbnails and the viewer all go through `read_image`."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.images.imageio import content_hash
from linnaeus.engine.images.imageio import is_image_candidate
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.thumbnails import ThumbnailCache
from linnaeus.engine.onnx.inference import Classifier
from linnaeus.engine.project.store import ProjectStore
from tests.image_factory import draw_pixels
from tests.image_factory import encode_frames
from tests.image_factory import encode_image
from tests.onnx_factory import make_model


def _solid(colour: tuple[int, ...], size: tuple[int, int] = (24, 18)) -> np.ndarray:
    width, height = size
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, len(colour))).copy()


RED, GREEN, BLUE = (220, 20, 20), (20, 220, 20), (20, 20, 220)


@pytest.mark.parametrize("channels", [3, 4])
def test_lossless_webp_reads_back_exactly(channels: int) -> None:
    pixels = draw_pixels((40, 30), channels, seed=3)

    image = read_image("photo.webp", data=encode_image(pixels, "webp"))

    assert (image.info.format, image.info.channels, image.info.bit_depth) == ("webp", channels, 8)
    np.testing.assert_array_equal(image.pixels, pixels)


@pytest.mark.parametrize(("channels", "expected"), [(1, 1), (3, 3)])
def test_gif_reads_gray_as_gray_and_colour_as_rgb(channels: int, expected: int) -> None:
    pixels = draw_pixels((40, 30), channels, seed=4)

    image = read_image("drawing.gif", data=encode_image(pixels, "gif"))

    assert (image.info.format, image.info.width, image.info.height) == ("gif", 40, 30)
    assert image.pixels.shape == (30, 40, expected) and image.pixels.dtype == np.uint8
    if channels == 1:  # a gray palette holds every gray level exactly
        np.testing.assert_array_equal(image.pixels, pixels)


@pytest.mark.parametrize("kind", ["gif", "webp"])
def test_an_animation_gives_its_first_frame(kind: str) -> None:
    data = encode_frames([_solid(GREEN), _solid(RED), _solid(BLUE)], kind)

    pixels = read_image(f"animation.{kind}", data=data).pixels

    assert pixels.shape == (18, 24, 3)
    np.testing.assert_array_equal(pixels[9, 12], GREEN)


def test_a_transparent_gif_colour_becomes_alpha() -> None:
    frame = Image.fromarray(_solid(RED)).quantize(4)
    buffer = io.BytesIO()
    frame.save(buffer, "GIF", transparency=0)

    image = read_image("clear.gif", data=buffer.getvalue())

    assert image.info.channels == 4 and image.pixels[0, 0, 3] == 0


def test_a_gif_that_claims_a_huge_screen_is_refused_before_decoding() -> None:
    data = bytearray(encode_image(_solid(RED), "gif"))
    data[6:10] = struct.pack("<HH", 60_000, 60_000)  # the logical screen size

    with pytest.raises(ImageReadError, match=r"60000 x 60000 pixels.*decompression bomb"):
        read_image("bomb.gif", data=bytes(data))


@pytest.mark.parametrize("kind", ["gif", "webp"])
def test_a_truncated_file_is_an_image_read_error(kind: str) -> None:
    data = encode_image(draw_pixels((40, 30), 3, seed=5), kind)

    with pytest.raises(ImageReadError, match=f"{kind.upper()} file"):
        read_image(f"cut.{kind}", data=data[: len(data) // 2])


@pytest.mark.parametrize("name", ["a.gif", "b.GIF", "c.webp", "d.WebP"])
def test_gif_and_webp_files_are_image_candidates(tmp_path: Path, name: str) -> None:
    assert is_image_candidate(tmp_path / name)


def _pets(root: Path) -> Path:
    (root / "cat").mkdir(parents=True)
    (root / "cat" / "still.gif").write_bytes(encode_image(_solid(RED), "gif"))
    (root / "cat" / "moving.webp").write_bytes(encode_frames([_solid(BLUE), _solid(RED)], "webp"))
    (root / "cat" / "photo.png").write_bytes(encode_image(_solid(GREEN), "png"))
    return root


def test_import_takes_gif_and_webp_files(tmp_path: Path) -> None:
    root = _pets(tmp_path / "images")

    with ProjectStore.create(tmp_path / "project", root) as store:
        report = import_images(store)
        formats = {image.path: image.format for image in store.images()}

    assert (report.found, report.skipped_files, report.unreadable) == (3, 0, [])
    assert formats == {"cat/moving.webp": "webp", "cat/photo.png": "png", "cat/still.gif": "gif"}


def test_predict_gives_gif_and_webp_files_a_prediction(tmp_path: Path) -> None:
    root = _pets(tmp_path / "images")
    classifier = Classifier(make_model(tmp_path / "colours.onnx", ("red", "green", "blue")))

    found = {p.path: p.label for p in classifier.classify_folder(root)}

    assert found == {"cat/moving.webp": "blue", "cat/photo.png": "green", "cat/still.gif": "red"}


@pytest.mark.parametrize("kind", ["gif", "webp"])
def test_gif_and_webp_get_a_thumbnail(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"image.{kind}"
    path.write_bytes(encode_image(draw_pixels((80, 60), 3), kind))

    thumbnail = ThumbnailCache(tmp_path / "cache", size=32).get(path, content_hash(b"x"))

    assert thumbnail.is_file()
