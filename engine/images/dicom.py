"""DICOM images as a radiologist expects to see them, for `linnaeus.engine.images.imageio`.

Only the first frame is read. Gray images go through the file's modality LUT
(rescale slope and intercept) and VOI (window centre/width or VOI LUT) and
come out as uint8, MONOCHROME1 inverted so that bone is bright as in
MONOCHROME2. Colour images come out as stored (YBR converted to RGB), palette
images through their colour LUT.

Pixel data may be stored uncompressed, deflated, RLE, JPEG (baseline, 12-bit
extended and lossless), JPEG-LS (lossless and near-lossless), JPEG 2000 or
High-Throughput JPEG 2000, as PACS exports hold them. Each compressed syntax
goes to one decoder (`DECODERS`), never on to another when it fails: GDCM
aborts the whole process on some damaged JPEG, JPEG-LS and JPEG 2000 data, so
it decodes only what nothing else permissively licensed can (lossless and
12-bit JPEG, the latter through `dicom_jpeg12`). packaging/README.md says why
these decoders and no others.
"""

from __future__ import annotations

import io
import logging

import numpy as np
import pydicom
from pydicom.encaps import generate_frames
from pydicom.pixels import apply_color_lut
from pydicom.pixels import apply_modality_lut
from pydicom.pixels import apply_voi_lut
from pydicom.pixels import apply_windowing
from pydicom.pixels import get_decoder
from pydicom.pixels import pixel_array
from pydicom.pixels.decoders import JPEGExtended12BitDecoder
from pydicom.uid import HTJ2K
from pydicom.uid import JPEG2000
from pydicom.uid import UID
from pydicom.uid import HTJ2KLossless
from pydicom.uid import HTJ2KLosslessRPCL
from pydicom.uid import JPEG2000Lossless
from pydicom.uid import JPEGBaseline8Bit
from pydicom.uid import JPEGExtended12Bit
from pydicom.uid import JPEGLossless
from pydicom.uid import JPEGLosslessSV1
from pydicom.uid import JPEGLSLossless
from pydicom.uid import JPEGLSNearLossless
from pydicom.uid import RLELossless

from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.images import dicom_jpeg12

logger = logging.getLogger(__name__)

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

# pydicom logs the traceback of a decoder that fails on a frame, at ERROR level,
# before it raises the error that becomes the file's one-line reason; the
# traceback would only clutter the user's terminal.
logging.getLogger("pydicom.pixels.decoders.base").setLevel(logging.CRITICAL)

JPEGExtended12BitDecoder.add_plugin(
    dicom_jpeg12.LABEL, (dicom_jpeg12.__name__, dicom_jpeg12.decode_frame.__name__)
)

# The pydicom plugin that decodes each compressed syntax: Pillow (libjpeg-turbo),
# pyjpegls (CharLS), pylibjpeg (OpenJPEG), GDCM; RLE and deflated data pydicom itself.
DECODERS = {
    JPEGBaseline8Bit: "pillow",
    JPEGLossless: "gdcm",
    JPEGLosslessSV1: "gdcm",
    JPEGLSLossless: "pyjpegls",
    JPEGLSNearLossless: "pyjpegls",
    JPEG2000Lossless: "pylibjpeg",
    JPEG2000: "pylibjpeg",
    HTJ2KLossless: "pylibjpeg",
    HTJ2KLosslessRPCL: "pylibjpeg",
    HTJ2K: "pylibjpeg",
    RLELossless: "pydicom",
}


def read_dataset(data: bytes) -> pydicom.Dataset:
    """The DICOM dataset in ``data``, its pixels still encoded; refused if it has no image."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    if not any(keyword in dataset for keyword in _PIXEL_KEYWORDS):
        raise ImageReadError("DICOM has no pixel data")
    if "Rows" not in dataset or "Columns" not in dataset:
        raise ImageReadError("DICOM file is damaged: it has pixel data but no Rows/Columns")
    return dataset


def frame_size(dataset: pydicom.Dataset) -> tuple[int, int]:
    """Width and height of one frame of ``dataset``."""
    return int(dataset.Columns), int(dataset.Rows)


def first_frame(dataset: pydicom.Dataset) -> np.ndarray:
    """The first frame's pixels: gray windowed to uint8, colour RGB as stored."""
    pixels = stored_first_frame(dataset)
    photometric = dataset.PhotometricInterpretation
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, dataset)
        return (rgb >> 8).astype(np.uint8) if rgb.dtype == np.uint16 else rgb
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return pixels
    gray = _window_to_uint8(apply_modality_lut(pixels, dataset), dataset)
    return 255 - gray if photometric == "MONOCHROME1" else gray


def stored_first_frame(dataset: pydicom.Dataset) -> np.ndarray:
    """The first frame's stored values, decoded, before any LUT (colour as RGB)."""
    transfer_syntax = dataset.file_meta.TransferSyntaxUID
    if not transfer_syntax.is_compressed:
        return pixel_array(dataset, index=0)
    plugin = decoder_for(transfer_syntax, int(dataset.get("BitsStored", 8)))
    if plugin is None:
        raise ImageReadError(
            f"DICOM pixel data is compressed as {transfer_syntax.name}, which Linnaeus cannot "
            "decode: export the image again uncompressed, or as JPEG, JPEG-LS, JPEG 2000 or RLE"
        )
    if plugin == "pyjpegls" and _jpeg_ls_cut_short(dataset):
        raise ImageReadError(
            f"DICOM file is damaged: its {transfer_syntax.name} pixel data is cut short"
        )
    try:
        return pixel_array(dataset, index=0, decoding_plugin=plugin)
    except Exception as exc:  # each decoder fails its own way on damaged data
        logger.debug("cannot decode %s pixel data", transfer_syntax.name, exc_info=True)
        raise ImageReadError(
            f"DICOM file is damaged: its {transfer_syntax.name} pixel data does not decode"
        ) from exc


def decoder_for(transfer_syntax: UID, bits_stored: int) -> str | None:
    """The installed pydicom plugin that decodes ``transfer_syntax`` ("" for pydicom's
    choice), or None when none here does."""
    if transfer_syntax == JPEGExtended12Bit:
        plugin = dicom_jpeg12.LABEL if bits_stored > 8 else "pillow"
    else:
        plugin = DECODERS.get(transfer_syntax, "")
    try:
        available = get_decoder(transfer_syntax).available_plugins
    except NotImplementedError:  # a syntax pydicom has no decoder for at all (MPEG, ...)
        return None
    if plugin:
        return plugin if plugin in available else None
    return plugin if available else None


def _jpeg_ls_cut_short(dataset: pydicom.Dataset) -> bool:
    """Whether the first frame's JPEG-LS code stream lacks its end marker, as in a file
    cut short. CharLS refuses such a stream too, but takes seconds to do it."""
    try:
        frame = next(generate_frames(dataset.PixelData, number_of_frames=1))
    except Exception:  # damaged encapsulation: the decoder says so
        return False
    return not frame.rstrip(b"\x00").endswith(b"\xff\xd9")


def _window_to_uint8(values: np.ndarray, dataset: pydicom.Dataset) -> np.ndarray:
    """Apply the file's VOI to modality ``values``; without one, show their full range."""
    if dataset.get("VOILUTSequence"):
        windowed = apply_voi_lut(values, dataset)
        low, high = 0.0, 2.0 ** dataset.VOILUTSequence[0].LUTDescriptor[2] - 1
    elif "WindowCenter" in dataset and "WindowWidth" in dataset:
        windowed = apply_windowing(values, dataset)
        # pydicom maps the window onto an output range taken from the pixel module;
        # values far outside the window on either side land on that range's ends.
        with np.errstate(over="ignore"):
            low, high = apply_windowing(np.array([-1e12, 1e12]), dataset)
    else:
        windowed, low, high = values, values.min(), values.max()
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    scaled = (windowed.astype(np.float32) - np.float32(low)) * np.float32(255 / (high - low))
    return np.clip(scaled, 0, 255).round().astype(np.uint8)
