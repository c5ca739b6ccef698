"""Every transfer syntax a PACS export holds decodes, to the pixels of an uncompressed twin.

The files are pydicom's own test files, bundled in its wheel (nothing is
downloaded). Lossless syntaxes must give the reference's stored values
exactly; lossy ones within the error their codec allows. pydicom ships no
16-bit JPEG Lossless file, so GDCM writes one from MR_small.dcm here.
"""

from __future__ import annotations

import io
from pathlib import Path

import gdcm
import numpy as np
import pydicom
import pytest
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
    ("name", "syntax_name"),
    [("JPGExtended.dcm", "JPEG Extended"), ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS")],
)
def test_damaged_compressed_pixel_data_is_reported_in_one_line(name: str, syntax_name: str) -> None:
    dataset = pydicom.dcmread(bundled_dicom_path(name))
    frame = next(pydicom.encaps.generate_frames(dataset.PixelData))
    dataset.PixelData = pydicom.encaps.encapsulate([frame[:100]])
    buffer = io.BytesIO()
    dataset.save_as(buffer)

    with pytest.raises(ImageReadError) as raised:
        read_image("cut.dcm", data=buffer.getvalue())

    message = str(raised.value)
    assert message.startswith(f"DICOM file is damaged: its {syntax_name}")
    assert message.endswith("pixel data does not decode")


# pydicom decodes HTJ2K only through pylibjpeg, which Linnaeus does not install; MPEG
# video it does not decode at all.
@pytest.mark.parametrize("syntax", [HTJ2KLossless, MPEG2MPML])
def test_a_syntax_linnaeus_cannot_decode_says_how_to_export_it(syntax: str) -> None:
    data = dicom_copy("MR_small_jp2klossless.dcm", transfer_syntax=syntax)

    with pytest.raises(ImageReadError, match=r"compressed as .*cannot decode: export the image"):
        read_image("scan.dcm", data=data)


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
