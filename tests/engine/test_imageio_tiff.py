"""TIFF reading: 16-bit, planar, multi-page, compressed, CMYK, palette, inverted, float."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.imageio import to_uint8
from tests.engine.conftest import corpus_file
from tests.image_factory import draw_pixels


def test_16_bit_tiff_stays_uint16_and_to_uint8_stretches_it(
    corpus: tuple[Path, dict[str, str]],
) -> None:
    pixels = read_image(corpus_file(corpus, "gray16.tiff")).pixels

    stretched = to_uint8(pixels)

    assert pixels.dtype == np.uint16
    assert pixels.max() < 30_000  # the drawn range is 1,000..20,125
    assert stretched.dtype == np.uint8
    assert stretched.shape == pixels.shape
    assert np.percentile(stretched, 0.5) <= 1
    assert np.percentile(stretched, 99.5) >= 254
    order = np.argsort(pixels, axis=None, kind="stable")
    assert np.all(np.diff(stretched.ravel()[order].astype(int)) >= 0)  # order kept


def _tiff(pixels: np.ndarray, **options: Any) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, **options)
    return buffer.getvalue()


def test_planar_tiff_reads_as_channels_last() -> None:
    rgb = draw_pixels((40, 30), 3, seed=3)
    data = _tiff(np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")

    np.testing.assert_array_equal(read_image("planar.tif", data=data).pixels, rgb)


def test_multi_page_tiff_reads_its_first_page() -> None:
    first, second = draw_pixels((40, 30), 1, seed=1), draw_pixels((40, 30), 1, seed=2)
    data = _tiff(np.stack([first[:, :, 0], second[:, :, 0]]), photometric="minisblack")

    np.testing.assert_array_equal(read_image("pages.tif", data=data).pixels, first)


def test_lzw_tiff_reads_without_imagecodecs() -> None:
    rgb = draw_pixels((40, 30), 3, seed=3)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "TIFF", compression="tiff_lzw")

    np.testing.assert_array_equal(read_image("lzw.tif", data=buffer.getvalue()).pixels, rgb)


def test_cmyk_tiff_reads_as_rgb() -> None:
    rgb = draw_pixels((40, 30), 3, seed=3)
    buffer = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buffer, "TIFF")

    pixels = read_image("cmyk.tif", data=buffer.getvalue()).pixels

    assert np.abs(pixels[:, :, :3].astype(int) - rgb).max() <= 1


def test_palette_tiff_reads_as_its_colours() -> None:
    palette = Image.fromarray(draw_pixels((40, 30), 3, seed=3)).convert("P")
    buffer = io.BytesIO()
    palette.save(buffer, "TIFF")

    pixels = read_image("palette.tif", data=buffer.getvalue()).pixels

    np.testing.assert_array_equal(pixels, np.asarray(palette.convert("RGB")))


def test_min_is_white_tiff_is_inverted() -> None:
    gray = draw_pixels((40, 30), 1, seed=3)
    data = _tiff(gray[:, :, 0], photometric="miniswhite")

    np.testing.assert_array_equal(read_image("negative.tif", data=data).pixels, 255 - gray)


def test_float_tiff_is_rescaled_to_the_full_uint16_range() -> None:
    values = np.linspace(-1, 3, 1200, dtype=np.float32).reshape(30, 40)

    image = read_image("float.tif", data=_tiff(values))

    assert image.info.bit_depth == 16
    assert (image.pixels.min(), image.pixels.max()) == (0, 65535)


def test_tiff_with_five_channels_is_refused() -> None:
    data = _tiff(np.zeros((30, 40, 5), np.uint8), photometric="minisblack", planarconfig="contig")

    with pytest.raises(ImageReadError, match="1 to 4 channels"):
        read_image("five.tif", data=data)
