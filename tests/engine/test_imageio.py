"""Reading every supported format, and failing clearly on every kind of bad file (the
details of TIFF and DICOM: test_imageio_tiff.py, test_dicom.py)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image
from PIL import ImageOps

from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.images.imageio import DEFAULT_MAX_PIXELS
from linnaeus.engine.images.imageio import IMAGE_SUFFIXES
from linnaeus.engine.images.imageio import DecodedImage
from linnaeus.engine.images.imageio import content_hash
from linnaeus.engine.images.imageio import is_image_candidate
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.imageio import to_rgb_uint8
from linnaeus.engine.images.imageio import to_uint8
from tests.engine.conftest import corpus_file
from tests.image_factory import CORPUS_IMAGE_SIZE
from tests.image_factory import IMAGE_KINDS
from tests.image_factory import bundled_dicom_path
from tests.image_factory import draw_pixels
from tests.image_factory import encode_image
from tests.image_factory import jpeg_with_orientation
from tests.image_factory import png_bomb
from tests.image_factory import write_image

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NON_UTF8_NAME = os.fsdecode(b"latin1_\xe9t\xe9.png")

W, H = CORPUS_IMAGE_SIZE
# name -> (width, height, channels, bit_depth, format) of the good corpus files
GOOD_FILES = {
    "rgb.png": (W, H, 3, 8, "png"),
    "rgba.png": (W, H, 4, 8, "png"),
    "gray.png": (W, H, 1, 8, "png"),
    "gray16.png": (W, H, 1, 16, "png"),
    "photo.jpg": (W, H, 3, 8, "jpeg"),
    "cmyk.jpg": (W, H, 3, 8, "jpeg"),
    "exif_rotated.jpg": (H, W, 3, 8, "jpeg"),
    "really_a_jpeg.png": (W, H, 3, 8, "jpeg"),
    "UPPER.JPG": (W, H, 3, 8, "jpeg"),
    "bitmap.bmp": (W, H, 3, 8, "bmp"),
    "rgb8.tif": (W, H, 3, 8, "tiff"),
    "gray16.tiff": (W, H, 1, 16, "tiff"),
    "gray_alpha.tif": (W, H, 2, 8, "tiff"),
    "rgba16.tif": (W, H, 4, 16, "tiff"),
    "ct_small.dcm": (128, 128, 1, 8, "dicom"),
    "monochrome1.dcm": (128, 128, 1, 8, "dicom"),
    "IM0001": (64, 64, 1, 8, "dicom"),
    "Zellkern_äöü_細胞.png": (W, H, 3, 8, "png"),
    NON_UTF8_NAME: (W, H, 3, 8, "png"),
    "animated.gif": (W, H, 3, 8, "gif"),
    "photo.webp": (W, H, 4, 8, "webp"),
}
# name -> words the error message must contain
BAD_FILES = {
    "truncated.jpg": "JPEG file is truncated",
    "truncated.png": "PNG file is truncated or damaged",
    "empty.png": "file is empty (0 bytes)",
    "text.png": "not an image",
    "bomb.png": "100000 x 100000 pixels (10 gigapixels), over the limit of 100 megapixels",
    "random.jpg": "not an image",
    "no_pixels.dcm": "DICOM has no pixel data",
    "loop_a.png": "cannot read file: [Errno",
    "loop_b.png": "cannot read file: [Errno",
    "truncated.gif": "GIF file is damaged",
    "truncated.webp": "WEBP file is damaged",
}


def test_corpus_lists_exactly_the_files_these_tests_know(
    corpus: tuple[Path, dict[str, str]],
) -> None:
    _, expected = corpus
    known = {name: "ok" for name in GOOD_FILES} | {name: "error" for name in BAD_FILES}
    assert {name: known.get(name) for name in expected} == expected


@pytest.mark.parametrize("name", GOOD_FILES)
def test_good_corpus_file_reads_with_its_size_channels_and_depth(
    corpus: tuple[Path, dict[str, str]], name: str
) -> None:
    image = read_image(corpus_file(corpus, name))

    width, height, channels, bit_depth, image_format = GOOD_FILES[name]
    info = image.info
    assert (info.width, info.height, info.channels) == (width, height, channels)
    assert (info.bit_depth, info.format) == (bit_depth, image_format)
    assert image.pixels.shape == (height, width, channels)
    assert image.pixels.dtype == (np.uint16 if bit_depth == 16 else np.uint8)


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_corpus_file_raises_a_reason_a_user_understands(
    corpus: tuple[Path, dict[str, str]], name: str
) -> None:
    with pytest.raises(ImageReadError) as caught:
        read_image(corpus_file(corpus, name))

    assert BAD_FILES[name] in str(caught.value)


def test_reading_the_corpus_leaves_every_file_byte_identical(
    corpus: tuple[Path, dict[str, str]],
) -> None:
    folder, expected = corpus

    def snapshot() -> dict[str, str]:
        return {
            name: os.readlink(path) if path.is_symlink() else content_hash(path.read_bytes())
            for name in expected
            for path in [folder / name]
        }

    before = snapshot()
    for name in expected:
        with contextlib.suppress(ImageReadError):
            read_image(folder / name)

    assert snapshot() == before


def test_cmyk_jpeg_decodes_to_the_rgb_colours_pillow_sees(
    corpus: tuple[Path, dict[str, str]],
) -> None:
    path = corpus_file(corpus, "cmyk.jpg")
    with Image.open(path) as cmyk:
        expected = np.asarray(cmyk.convert("RGB")).astype(int)

    pixels = read_image(path).pixels.astype(int)

    assert np.abs(pixels - expected).mean() < 3


@pytest.mark.parametrize(
    ("kind", "channels", "bit_depth"),
    [
        ("png", 1, 8),
        ("png", 3, 8),
        ("png", 4, 8),
        ("png", 3, 16),
        ("png", 4, 16),
        ("bmp", 1, 8),
        ("bmp", 3, 8),
        ("tiff", 1, 8),
        ("tiff", 2, 16),
        ("tiff", 3, 8),
        ("tiff", 3, 16),
        ("tiff", 4, 8),
    ],
)
def test_lossless_file_reads_back_exactly_in_rgb_order(
    tmp_path: Path, kind: str, channels: int, bit_depth: int
) -> None:
    path = write_image(tmp_path / f"image.{kind}", kind, (37, 23), channels, 5, bit_depth)

    image = read_image(path)

    np.testing.assert_array_equal(image.pixels, draw_pixels((37, 23), channels, 5, bit_depth))


def test_jpeg_reads_in_rgb_order_like_pillow(tmp_path: Path) -> None:
    path = write_image(tmp_path / "photo.jpg", "jpeg", (40, 30), 3, seed=2)
    with Image.open(path) as reference:
        expected = np.asarray(reference.convert("RGB")).astype(int)

    pixels = read_image(path).pixels.astype(int)

    assert np.abs(pixels - expected).mean() < 2


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_applies_it(orientation: int) -> None:
    data = jpeg_with_orientation(draw_pixels((40, 24), 3, seed=9), orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))

    pixels = read_image("upright.jpg", data=data).pixels

    assert pixels.shape == expected.shape
    assert np.abs(pixels.astype(int) - expected).mean() < 2


def test_exif_orientation_6_swaps_width_and_height() -> None:
    data = jpeg_with_orientation(draw_pixels((40, 24), 3), 6)

    info = read_image("rotated.jpg", data=data).info

    assert (info.width, info.height) == (24, 40)


def test_format_comes_from_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "scan.bmp"
    path.write_bytes(encode_image(draw_pixels(channels=1), "png"))

    assert read_image(path).info.format == "png"


def test_read_from_data_never_touches_the_path() -> None:
    data = encode_image(draw_pixels(), "png")

    image = read_image("/no/such/folder/image.png", data=data)

    assert isinstance(image, DecodedImage)
    assert image.info.format == "png"


def test_a_folder_is_not_readable_as_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="cannot read file"):
        read_image(tmp_path)


def test_missing_file_says_it_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match=r"cannot read file: \[Errno \d+\] No such file"):
        read_image(tmp_path / "gone.png")


# --- decompression bombs --------------------------------------------------------------


def test_bomb_is_refused_from_its_header_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def decode_nothing(*args: object) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(cv2, "imdecode", decode_nothing)

    with pytest.raises(ImageReadError, match="possible decompression bomb"):
        read_image("bomb.png", data=png_bomb())


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_max_pixels_below_an_ordinary_image_refuses_it(kind: str) -> None:
    data = encode_image(draw_pixels((40, 30), 1), kind)

    with pytest.raises(ImageReadError, match=r"40 x 30 pixels \(1200 pixels\).*limit of 1000"):
        read_image("small", data=data, max_pixels=1000)
    assert read_image("small", data=data, max_pixels=1200).info.width == 40


def test_tiff_bomb_is_refused_before_its_pixels_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tifffile.TiffPage, "asarray", None)
    data = encode_image(draw_pixels((40, 30), 3), "tiff")

    with pytest.raises(ImageReadError, match="decompression bomb"):
        read_image("big.tif", data=data, max_pixels=100)


def test_dicom_whose_header_lies_about_its_size_is_refused() -> None:
    dataset = pydicom.dcmread(bundled_dicom_path("CT_small.dcm"))
    dataset.Rows = dataset.Columns = 60_000
    buffer = io.BytesIO()
    dataset.save_as(buffer)

    with pytest.raises(ImageReadError, match=r"60000 x 60000 pixels \(3.6 gigapixels\)"):
        read_image("lying.dcm", data=buffer.getvalue())


def test_default_limit_is_100_megapixels() -> None:
    assert DEFAULT_MAX_PIXELS == 100_000_000


# --- conversions ----------------------------------------------------------------------


def test_to_uint8_passes_uint8_through_untouched() -> None:
    pixels = draw_pixels()

    assert to_uint8(pixels) is pixels


def test_to_uint8_turns_a_constant_image_into_zeros() -> None:
    stretched = to_uint8(np.full((4, 5, 1), 1234, np.uint16))

    np.testing.assert_array_equal(stretched, np.zeros((4, 5, 1), np.uint8))


def test_to_uint8_scales_alpha_exactly_instead_of_stretching_it() -> None:
    pixels = draw_pixels((20, 10), 4, bit_depth=16)

    stretched = to_uint8(pixels)

    np.testing.assert_array_equal(stretched[:, :, 3], pixels[:, :, 3] >> 8)
    assert stretched[:, :, :3].max() == 255


def test_to_uint8_refuses_other_sample_types() -> None:
    with pytest.raises(ValueError, match="float32"):
        to_uint8(np.zeros((2, 2, 1), np.float32))


def test_to_rgb_uint8_replicates_gray() -> None:
    gray = draw_pixels((20, 10), 1)

    rgb = to_rgb_uint8(gray)

    assert rgb.shape == (10, 20, 3)
    np.testing.assert_array_equal(rgb, np.repeat(gray, 3, axis=2))


@pytest.mark.parametrize("channels", [2, 4])
def test_to_rgb_uint8_composites_alpha_over_black(channels: int) -> None:
    pixels = np.full((2, 3, channels), 200, np.uint8)
    pixels[:, :, -1] = [[255, 128, 0], [255, 128, 0]]

    rgb = to_rgb_uint8(pixels)

    assert rgb.shape == (2, 3, 3)
    np.testing.assert_array_equal(rgb[0, :, 0], [200, 100, 0])


def test_to_rgb_uint8_of_rgb_is_the_same_pixels() -> None:
    pixels = draw_pixels((20, 10), 3)

    np.testing.assert_array_equal(to_rgb_uint8(pixels), pixels)


# --- candidates and hashes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("scan.png", b"", True),
        ("SCAN.JPG", b"", True),
        ("slide.TIFF", b"", True),
        ("study.dcm", b"", True),
        ("notes.txt", b"text", False),
        ("archive.tar", b"\x00" * 128 + b"DICM", False),
        ("IM0001", b"\x00" * 128 + b"DICM" + b"\x00" * 64, True),
        ("1.2.840.113619.2.55.507", b"\x00" * 128 + b"DICM", True),
        ("README", b"Just a text file that is long enough to be read past byte 132." * 3, False),
        ("tiny", b"DICM", False),
    ],
)
def test_is_image_candidate(tmp_path: Path, name: str, content: bytes, expected: bool) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    assert is_image_candidate(path) is expected


def test_missing_suffixless_file_is_not_a_candidate(tmp_path: Path) -> None:
    assert not is_image_candidate(tmp_path / "IM0002")


def test_image_suffixes_are_lower_case_and_cover_every_format() -> None:
    assert all(suffix == suffix.lower() and suffix.startswith(".") for suffix in IMAGE_SUFFIXES)
    common = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".gif", ".webp"}
    assert common <= IMAGE_SUFFIXES


def test_content_hash_is_a_128_bit_blake2b_hex_digest() -> None:
    digest = content_hash(b"Linnaeus")

    assert digest == hashlib.blake2b(b"Linnaeus", digest_size=16).hexdigest()
    assert len(digest) == 32


# --- real images ----------------------------------------------------------------------


@pytest.mark.skipif(not (SHARED_DATA / "brain_mri").is_dir(), reason="../shared/data is absent")
def test_every_brain_mri_image_reads_with_the_size_pillow_sees() -> None:
    paths = sorted(path for path in (SHARED_DATA / "brain_mri").rglob("*") if path.is_file())

    assert len(paths) > 200
    for path in paths:
        assert is_image_candidate(path), path
        info = read_image(path).info
        with Image.open(path) as reference:
            upright = ImageOps.exif_transpose(reference)
            assert (info.width, info.height) == upright.size, path
        assert info.channels in (1, 3, 4), path
