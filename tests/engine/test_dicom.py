"""DICOM reading: every transfer syntax a PACS export holds decodes, to the pixels of an
uncompressed twin; windows, MONOCHROME1 and the other layouts read as a viewer shows them.

The files are pydicom's own test files, bundled in its wheel (nothing is
downloaded). Lossless syntaxes must give the reference's stored values
exactly; lossy ones within the error their codec allows. pydicom ships no
16-bit JPEG Lossless file, so GDCM writes one from MR_small.dcm here.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
import time
from pathlib import Path

import gdcm
import numpy as np
import pydicom
import pytest
from pydicom.uid import HEVCMP51
from pydicom.uid import JPEG2000
from pydicom.uid import MPEG2MPML
from pydicom.uid import DeflatedExplicitVRLittleEndian
from pydicom.uid import HTJ2KLossless
from pydicom.uid import JPEG2000Lossless
from pydicom.uid import JPEGBaseline8Bit
from pydicom.uid import JPEGExtended12Bit
from pydicom.uid import JPEGLossless
from pydicom.uid import JPEGLosslessSV1
from pydicom.uid import JPEGLSLossless
from pydicom.uid import JPEGLSNearLossless
from pydicom.uid import RLELossless

from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.images import dicom as dicom_io
from linnaeus.engine.images.imageio import read_image
from tests.engine.conftest import corpus_file
from tests.image_factory import bundled_dicom_path
from tests.image_factory import dicom_copy

MR = "MR_small.dcm"  # 64 x 64 signed 16-bit MR, uncompressed
BANDS = "SC_rgb_rle.dcm"  # 100 x 100 RGB colour bands, RLE: lossless


def _stored(data: bytes) -> np.ndarray:
    return dicom_io.stored_first_frame(dicom_io.read_dataset(data))


def _syntax(data: bytes) -> str:
    return pydicom.dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID


@pytest.mark.parametrize(
    ("name", "syntax", "reference", "max_error"),
    [
        ("MR_small_RLE.dcm", RLELossless, MR, 0),
        ("SC_rgb_jpeg_gdcm.dcm", JPEGLosslessSV1, BANDS, 0),
        ("MR_small_jpeg_ls_lossless.dcm", JPEGLSLossless, MR, 0),
        ("MR_small_jp2klossless.dcm", JPEG2000Lossless, MR, 0),
        ("SC_rgb_dcmtk_+eb+cr.dcm", JPEGBaseline8Bit, BANDS, 4),  # lossy, stored as RGB
        ("SC_rgb_jpeg_dcmtk.dcm", JPEGBaseline8Bit, BANDS, 8),  # lossy, stored as YBR
        ("SC_rgb_jls_lossy_line.dcm", JPEGLSNearLossless, BANDS, 2),  # NEAR=2 in its header
        ("SC_rgb_gdcm_KY.dcm", JPEG2000, BANDS, 2),  # lossy
    ],
)
def test_compressed_dicom_decodes_to_its_uncompressed_twin(
    name: str, syntax: str, reference: str, max_error: int
) -> None:
    data = dicom_copy(name)
    expected = _stored(dicom_copy(reference)).astype(np.int32)

    pixels = _stored(data)

    assert _syntax(data) == syntax
    assert pixels.shape == expected.shape
    assert np.abs(pixels.astype(np.int32) - expected).max() <= max_error
    assert read_image(name, data=data).pixels.shape[:2] == expected.shape[:2]


def test_jpeg_lossless_process_14_with_any_predictor_label_decodes() -> None:
    # .57 allows every predictor, selection value 1 included: the .70 file, relabelled.
    data = dicom_copy("SC_rgb_jpeg_gdcm.dcm", transfer_syntax=JPEGLossless)

    assert _syntax(data) == JPEGLossless
    np.testing.assert_array_equal(_stored(data), _stored(dicom_copy(BANDS)))


@pytest.mark.parametrize("syntax", [JPEGLossless, JPEGLosslessSV1])
def test_16_bit_lossless_jpeg_written_by_gdcm_decodes_exactly(syntax: str, tmp_path: Path) -> None:
    data = _gdcm_transcoded(bundled_dicom_path(MR), syntax, tmp_path / "lossless.dcm")

    assert _syntax(data) == syntax
    np.testing.assert_array_equal(_stored(data), _stored(dicom_copy(MR)))


def test_12_bit_jpeg_extended_decodes_to_pydicom_s_reference_values() -> None:
    # No uncompressed twin ships; these are the values pydicom's own tests check.
    data = dicom_copy("JPGExtended.dcm")

    pixels = _stored(data)

    assert _syntax(data) == JPEGExtended12Bit
    assert (pixels.shape, pixels.dtype, pixels.max()) == ((1024, 256), np.uint16, 264)
    assert (pixels[420, 140], pixels[230, 120]) == (244, 95)
    assert read_image("nm.dcm", data=data).pixels.shape == (1024, 256, 1)


def test_deflated_dicom_decodes_to_pydicom_s_reference_values() -> None:
    data = dicom_copy("image_dfl.dcm")

    pixels = _stored(data)

    assert _syntax(data) == DeflatedExplicitVRLittleEndian
    assert tuple(pixels[300, 255:263]) == (138, 65, 65, 65, 65, 35, 35, 35)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("JPGExtended.dcm", "its JPEG Extended (Process 2 and 4) pixel data does not decode"),
        ("MR_small_jp2klossless.dcm", "pixel data does not decode"),
        ("SC_rgb_jpeg_dcmtk.dcm", "its JPEG Baseline (Process 1) pixel data does not decode"),
        # CharLS took 7 to 9 s to refuse a JPEG-LS stream cut in the middle of its scan.
        (
            "MR_small_jpeg_ls_lossless.dcm",
            "JPEG-LS Lossless Image Compression pixel data is cut short",
        ),
    ],
)
def test_pixel_data_cut_short_is_reported_in_one_line_at_once(name: str, reason: str) -> None:
    dataset = pydicom.dcmread(bundled_dicom_path(name))
    frame = next(pydicom.encaps.generate_frames(dataset.PixelData))
    dataset.PixelData = pydicom.encaps.encapsulate([frame[: len(frame) * 2 // 3]])
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    started = time.perf_counter()

    with pytest.raises(ImageReadError) as raised:
        read_image("cut.dcm", data=buffer.getvalue())

    assert str(raised.value).startswith("DICOM file is damaged: ")
    assert str(raised.value).endswith(reason)
    assert time.perf_counter() - started < 3


def test_high_throughput_jpeg_2000_goes_to_openjpeg() -> None:
    # pydicom ships no HTJ2K file and OpenJPEG cannot write one; OpenJPEG reads classic
    # JPEG 2000 code streams under the HTJ2K label too, which tests the route.
    data = dicom_copy("MR_small_jp2klossless.dcm", transfer_syntax=HTJ2KLossless)

    np.testing.assert_array_equal(_stored(data), _stored(dicom_copy(MR)))


# Damaged frames on which GDCM threw a C++ exception that nothing catches, which
# aborted the whole process (found by mutating pydicom's files; `_mutated`).
@pytest.mark.parametrize(
    ("name", "seed"),
    [
        ("SC_rgb_jpeg_dcmtk.dcm", 221749),  # JPEG baseline
        ("MR_small_jpeg_ls_lossless.dcm", 285101),
        ("MR_small_jp2klossless.dcm", 688970),
    ],
)
def test_damaged_data_that_aborted_gdcm_is_refused_in_one_line(
    name: str, seed: int, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_bytes(_mutated(name, seed))
    code = (
        "import sys\n"
        "from linnaeus.engine.errors import ImageReadError\n"
        "from linnaeus.engine.images.imageio import read_image\n"
        "try:\n"
        "    print('decoded', read_image(sys.argv[1]).pixels.shape)\n"
        "except ImageReadError as error:\n"
        "    print(error)\n"
    )

    result = subprocess.run(  # a child process: an abort must not take pytest down
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(("decoded", "DICOM file is damaged")), result.stdout


@pytest.mark.parametrize("syntax", [MPEG2MPML, HEVCMP51])
def test_a_syntax_linnaeus_cannot_decode_says_how_to_export_it(syntax: str) -> None:
    data = dicom_copy("MR_small_jp2klossless.dcm", transfer_syntax=syntax)

    with pytest.raises(ImageReadError, match=r"compressed as .*cannot decode: export the image"):
        read_image("scan.dcm", data=data)


# --- windows, photometric interpretations and layouts -----------------------------------


def test_monochrome1_is_the_inverse_of_monochrome2(corpus: tuple[Path, dict[str, str]]) -> None:
    monochrome2 = read_image(corpus_file(corpus, "ct_small.dcm")).pixels
    monochrome1 = read_image(corpus_file(corpus, "monochrome1.dcm")).pixels

    np.testing.assert_array_equal(monochrome1, 255 - monochrome2)


def test_dicom_window_centre_and_width_from_the_file_are_applied() -> None:
    path = bundled_dicom_path("MR_small.dcm")
    dataset = pydicom.dcmread(path)
    centre, width = float(dataset.WindowCenter), float(dataset.WindowWidth)
    raw = dataset.pixel_array.astype(float)
    # DICOM PS3.3 C.11.2.1.2.1, linear VOI, mapped onto 0..255
    expected = np.clip((raw - (centre - 0.5)) / (width - 1) + 0.5, 0, 1) * 255

    pixels = read_image(path).pixels[:, :, 0]

    assert np.abs(pixels - expected).max() <= 1
    assert pixels.min() > 0  # the window reaches below the darkest pixel


def test_dicom_without_a_window_spans_its_full_range() -> None:
    path = bundled_dicom_path("CT_small.dcm")
    raw = pydicom.dcmread(path).pixel_array.astype(float)
    expected = (raw - raw.min()) / (raw.max() - raw.min()) * 255

    pixels = read_image(path).pixels[:, :, 0]

    assert np.abs(pixels - expected).max() <= 1


def test_rle_compressed_dicom_reads_like_its_uncompressed_twin() -> None:
    plain = read_image(bundled_dicom_path("MR_small.dcm")).pixels
    rle = read_image(bundled_dicom_path("MR_small_RLE.dcm")).pixels

    np.testing.assert_array_equal(rle, plain)


@pytest.mark.parametrize(
    ("name", "shape", "dtype"),
    [
        ("SC_rgb_rle_2frame.dcm", (100, 100, 3), np.uint8),  # multi-frame: first frame
        ("SC_rgb_rle_16bit.dcm", (100, 100, 3), np.uint16),
        ("SC_ybr_full_422_uncompressed.dcm", (100, 100, 3), np.uint8),
        ("examples_palette.dcm", (350, 800, 3), np.uint8),
        ("MR_small_bigendian.dcm", (64, 64, 1), np.uint8),
    ],
)
def test_dicom_layouts_read(name: str, shape: tuple[int, ...], dtype: type) -> None:
    pixels = read_image(bundled_dicom_path(name)).pixels

    assert pixels.shape == shape
    assert pixels.dtype == dtype


def test_truncated_dicom_is_reported_damaged() -> None:
    with pytest.raises(ImageReadError, match="DICOM file is damaged"):
        read_image(bundled_dicom_path("MR_truncated.dcm"))


def test_dicom_keeps_frame_size_reading_separate_from_decoding() -> None:
    dataset = dicom_io.read_dataset(dicom_copy("MR_small.dcm"))

    assert dicom_io.frame_size(dataset) == (64, 64)


def _mutated(name: str, seed: int) -> bytes:
    """pydicom's test file ``name`` with its first frame overwritten, cut or scrambled."""
    dataset = pydicom.dcmread(bundled_dicom_path(name))
    frame = bytearray(next(pydicom.encaps.generate_frames(dataset.PixelData)))
    rng = random.Random(seed)
    kind = rng.random()
    if kind < 0.4:
        for _ in range(rng.randint(1, 8)):
            frame[rng.randrange(len(frame))] = rng.randrange(256)
    elif kind < 0.7:
        frame = frame[: rng.randrange(1, len(frame))]
    else:
        start = rng.randrange(len(frame))
        stop = start + rng.randint(1, 64)
        frame[start:stop] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    dataset.PixelData = pydicom.encaps.encapsulate([bytes(frame)])
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    return buffer.getvalue()


def _gdcm_transcoded(source: Path, syntax: str, destination: Path) -> bytes:
    """``source`` compressed by GDCM with the transfer syntax ``syntax``."""
    reader = gdcm.ImageReader()
    reader.SetFileName(str(source))
    assert reader.Read()
    change = gdcm.ImageChangeTransferSyntax()
    gdcm_syntax = gdcm.TransferSyntax.GetTSType(syntax)
    change.SetTransferSyntax(gdcm.TransferSyntax(gdcm_syntax))
    change.SetInput(reader.GetImage())
    assert change.Change()
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(destination))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    assert writer.Write()
    return destination.read_bytes()
