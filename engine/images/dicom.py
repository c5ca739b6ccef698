"""DICOM images as a radiologist expects to see them, for `linnaeus.engine.images.imageio`.

Only the first frame is read. Gray images go through the file's modality LUT
(rescale slope and intercept) and VOI (window centre/width or VOI LUT) and
come out as uint8, MONOCHROME1 inverted so that bone is bright as in
MONOCHROME2. Colour images come out as stored (YBR converted to RGB), palette
images through their colour LUT.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut
from pydicom.pixels import apply_modality_lut
from pydicom.pixels import apply_voi_lut
from pydicom.pixels import apply_windowing
from pydicom.pixels import get_decoder
from pydicom.pixels import pixel_array

from linnaeus.engine.errors import ImageReadError

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


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
    transfer_syntax = dataset.file_meta.TransferSyntaxUID
    if transfer_syntax.is_compressed and not get_decoder(transfer_syntax).is_available:
        raise ImageReadError(
            f"DICOM pixel data is compressed as {transfer_syntax.name}, and no decoder for it "
            "is installed (pylibjpeg, GDCM or pyjpegls can add one)"
        )
    pixels = pixel_array(dataset, index=0)
    photometric = dataset.PhotometricInterpretation
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, dataset)
        return (rgb >> 8).astype(np.uint8) if rgb.dtype == np.uint16 else rgb
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return pixels
    gray = _window_to_uint8(apply_modality_lut(pixels, dataset), dataset)
    return 255 - gray if photometric == "MONOCHROME1" else gray


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
