"""Read the user's image files into numpy arrays, whatever their format.

The format is recognised from the file's content, never from its name, and
every way a file can fail to read (empty, damaged, truncated, a
decompression bomb, a compressed DICOM without its decoder, a symlink loop)
ends in an `ImageReadError` whose message says why in words a user follows.
Pixel bounds are checked from the header before any pixel is decoded.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import BmpImagePlugin
from PIL import ExifTags
from PIL import GifImagePlugin
from PIL import Image
from PIL import JpegImagePlugin
from PIL import PngImagePlugin
from PIL import WebPImagePlugin
from tifffile import PHOTOMETRIC
from tifffile import TIFF

from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.images import dicom as dicom_io

logger = logging.getLogger(__name__)

# A damaged file is reported through ImageReadError; OpenCV's own warnings about
# it on stderr would only alarm users of the command line.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".tif", ".tiff", ".dcm", ".dicom"}
    | {".gif", ".webp"}
)
DEFAULT_MAX_PIXELS: int = 100_000_000


@dataclass(frozen=True)
class ImageInfo:
    """What a decoded image is: its size, channels and sample depth, and its file format.

    ``width`` and ``height`` are those of the decoded pixels (after EXIF or TIFF
    orientation). ``channels`` is 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA).
    ``bit_depth`` is the bits per sample of the decoded pixels, 8 or 16: a gray
    DICOM image is windowed to 8 bits, so it reports 8 whatever its BitsStored.
    ``format`` is one of "png", "jpeg", "bmp", "tiff", "dicom", "gif", "webp" (of an
    animated GIF or WebP, the first frame is read).
    """

    width: int
    height: int
    channels: int
    bit_depth: int
    format: str


@dataclass(frozen=True)
class DecodedImage:
    """An image's pixels, H x W x C in RGB(A) order, uint8 or uint16, and what they are."""

    pixels: np.ndarray
    info: ImageInfo


def is_image_candidate(path: Path) -> bool:
    """Whether ``path`` looks like an image Linnaeus reads, judged by name or a DICOM preamble.

    Files with a known image suffix count without being opened. Files with no
    suffix, or an all-digit one as in DICOM files named by UID
    (``1.2.840.113619.2.55.507``), count when they start with a DICOM preamble.
    """
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return True
    if suffix and not suffix[1:].isdigit():
        return False
    try:
        with path.open("rb") as file:
            head = file.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def content_hash(data: bytes) -> str:
    """The hex digest that identifies an image's content everywhere in Linnaeus."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_image(
    path: Path | str, *, data: bytes | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> DecodedImage:
    """Decode the image at ``path``, or in ``data`` when the caller already read its bytes.

    Images over ``max_pixels`` (width x height) are refused before decoding.
    Raises `ImageReadError` with a short reason for any file that cannot be read.
    """
    if data is None:
        data = _read_file(Path(path))
    if not data:
        raise ImageReadError("file is empty (0 bytes)")
    image_format = _sniff_format(data)
    if image_format is None:
        raise ImageReadError("not an image: the content is not PNG/JPEG/BMP/TIFF/DICOM/GIF/WebP")
    try:
        pixels = _DECODERS[image_format](data, max_pixels)
    except ImageReadError:
        raise
    except MemoryError as exc:
        raise ImageReadError("not enough memory to decode this image") from exc
    except Exception as exc:  # decoders fed hostile bytes raise anything (cv2.error, struct.error)
        logger.debug("cannot decode %s", path, exc_info=True)
        reason = textwrap.shorten(str(exc) or type(exc).__name__, width=200)
        raise ImageReadError(
            f"{image_format.upper()} file is damaged or unsupported: {reason}"
        ) from exc
    pixels = _channels_last(_as_uint8_or_uint16(pixels), image_format)
    height, width, channels = pixels.shape
    info = ImageInfo(width, height, channels, pixels.dtype.itemsize * 8, image_format)
    return DecodedImage(pixels=pixels, info=info)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as uint8 of the same shape, for display and training.

    uint8 passes through. uint16 colour or gray samples are stretched linearly
    so their 0.5 and 99.5 percentiles become 0 and 255 (a constant image becomes
    zeros); an alpha channel (the last of 2 or 4) is scaled exactly instead.
    """
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype != np.uint16:
        raise ValueError(f"expected uint8 or uint16 pixels, got {pixels.dtype}")
    has_alpha = pixels.ndim == 3 and pixels.shape[2] in (2, 4)
    if not has_alpha:
        return _stretch_to_uint8(pixels)
    result = np.empty(pixels.shape, np.uint8)
    result[..., :-1] = _stretch_to_uint8(pixels[..., :-1])
    result[..., -1] = pixels[..., -1] >> 8
    return result


def to_rgb_uint8(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as H x W x 3 uint8 RGB: gray is replicated, alpha composited over black."""
    pixels = to_uint8(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    channels = pixels.shape[2]
    rgb = pixels[..., :3] if channels >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    if channels in (2, 4):
        alpha = pixels[..., -1:].astype(np.uint16)
        rgb = ((rgb.astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)
    return np.ascontiguousarray(rgb)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        reason = f"[Errno {exc.errno}] {exc.strerror}" if exc.strerror else str(exc)
        raise ImageReadError(f"cannot read file: {reason}") from exc


def _sniff_format(data: bytes) -> str | None:
    # DICOM first: its 128-byte preamble may itself hold a TIFF header (dual-format files).
    if data[128:132] == b"DICM":
        return "dicom"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _refuse_if_too_large(width: int, height: int, max_pixels: int) -> None:
    count = width * height
    if count > max_pixels:
        raise ImageReadError(
            f"image is {width} x {height} pixels ({_pixel_count(count)}), over the limit of "
            f"{_pixel_count(max_pixels)}; refused as a possible decompression bomb"
        )


def _pixel_count(count: int) -> str:
    if count >= 1_000_000_000:
        return f"{count / 1e9:.3g} gigapixels"
    if count >= 1_000_000:
        return f"{count / 1e6:.3g} megapixels"
    return f"{count} pixels"


# Opening a format's Pillow plugin class reads only the header. Image.open would
# also apply Pillow's own fixed pixel bound; ours is max_pixels.
_PILLOW_HEADER_READERS: dict[str, Callable[[io.BytesIO], Image.Image]] = {
    "png": PngImagePlugin.PngImageFile,
    "jpeg": JpegImagePlugin.JpegImageFile,
    "bmp": BmpImagePlugin.BmpImageFile,
    "gif": GifImagePlugin.GifImageFile,
    "webp": WebPImagePlugin.WebPImageFile,
}


def _decode_raster(data: bytes, max_pixels: int, *, image_format: str) -> np.ndarray:
    # Entropy-coded data cannot hold markers, so a complete JPEG ends its last scan (SOS) with EOI.
    if image_format == "jpeg" and data.rfind(b"\xff\xda") > data.rfind(b"\xff\xd9"):
        raise ImageReadError("JPEG file is truncated")
    with _PILLOW_HEADER_READERS[image_format](io.BytesIO(data)) as header:
        width, height = header.size
        orientation = _exif_orientation(header)
    _refuse_if_too_large(width, height, max_pixels)
    return _orient(_decode_with_opencv(data, image_format), orientation)


def _decode_first_frame(data: bytes, max_pixels: int, *, image_format: str) -> np.ndarray:
    """A GIF or WebP image, or the first frame of an animated one, decoded by Pillow."""
    with _PILLOW_HEADER_READERS[image_format](io.BytesIO(data)) as image:
        _refuse_if_too_large(*image.size, max_pixels)
        orientation = _exif_orientation(image)
        mode = _first_frame_mode(image)
        pixels = np.asarray(image if image.mode == mode else image.convert(mode))
    return _orient(pixels, orientation)


def _first_frame_mode(image: Image.Image) -> str:
    """Gray or colour, with alpha if the image has transparency: a palette becomes
    the grays or colours it stands for, its transparent entry an alpha channel."""
    alpha = "transparency" in image.info or image.mode.endswith("A")
    palette = (image.getpalette() or []) if image.mode == "P" else []
    gray = image.mode in ("L", "LA") or (
        image.mode == "P" and palette[0::3] == palette[1::3] == palette[2::3]
    )
    if gray:
        return "LA" if alpha else "L"
    return "RGBA" if alpha else "RGB"


def _exif_orientation(header: Image.Image) -> int:
    # A PNG's getexif() decodes the whole image to look for an eXIf chunk after the pixels.
    if header.format == "PNG" and "exif" not in header.info:
        return 1
    return int(header.getexif().get(ExifTags.Base.Orientation, 1))


def _decode_with_opencv(data: bytes, image_format: str) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ImageReadError(f"{image_format.upper()} file is truncated or damaged")
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    return pixels


# EXIF/TIFF orientation -> what shows the stored pixels upright (as PIL.ImageOps.exif_transpose).
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda pixels: pixels[:, ::-1],
    3: lambda pixels: pixels[::-1, ::-1],
    4: lambda pixels: pixels[::-1],
    5: lambda pixels: pixels.swapaxes(0, 1),
    6: lambda pixels: np.rot90(pixels, -1),
    7: lambda pixels: pixels[::-1, ::-1].swapaxes(0, 1),
    8: lambda pixels: np.rot90(pixels, 1),
}


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    upright = _UPRIGHT.get(orientation)
    return pixels if upright is None else np.ascontiguousarray(upright(pixels))


# Layouts tifffile decodes by itself; other colour models (CMYK, YCbCr) are left to libtiff.
_TIFFFILE_PHOTOMETRICS = {
    PHOTOMETRIC.MINISBLACK,
    PHOTOMETRIC.MINISWHITE,
    PHOTOMETRIC.RGB,
    PHOTOMETRIC.PALETTE,
}


def _decode_tiff(data: bytes, max_pixels: int) -> np.ndarray:
    with tifffile.TiffFile(io.BytesIO(data)) as tiff:
        if not tiff.pages:
            raise ImageReadError("TIFF file is damaged: it holds no image")
        page = tiff.pages.first
        _refuse_if_too_large(page.imagewidth, page.imagelength, max_pixels)
        orientation = int(page.tags.valueof("Orientation", 1))
        # Without the optional imagecodecs package tifffile lacks LZW and JPEG, the
        # most common TIFF compressions; OpenCV's libtiff has them built in.
        if not (
            page.compression in TIFF.DECOMPRESSORS
            and page.predictor in TIFF.PREDICTORS
            and page.photometric in _TIFFFILE_PHOTOMETRICS
        ):
            return _orient(_decode_with_opencv(data, "tiff"), orientation)
        pixels = page.asarray()
        if page.axes.startswith("S"):
            pixels = np.moveaxis(pixels, 0, -1)
        if page.photometric == PHOTOMETRIC.PALETTE and page.colormap is not None:
            colormap = np.right_shift(page.colormap, 8).astype(np.uint8)  # 16-bit in TIFF
            pixels = np.moveaxis(colormap[:, pixels], 0, -1)
        pixels = _as_uint8_or_uint16(pixels)
        if page.photometric == PHOTOMETRIC.MINISWHITE:
            pixels = np.iinfo(pixels.dtype).max - pixels
    return _orient(pixels, orientation)


def _as_uint8_or_uint16(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 pass; bool becomes 0/255; other types are rescaled from min..max to uint16."""
    pixels = pixels.astype(pixels.dtype.newbyteorder("="), copy=False)
    if pixels.dtype in (np.uint8, np.uint16):
        return pixels
    if pixels.dtype == np.bool_:
        return pixels.astype(np.uint8) * np.uint8(255)
    values = pixels.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(pixels.shape, np.uint16)
    low, high = values[finite].min(), values[finite].max()
    scaled = (values - low) * (65535 / (high - low)) if high > low else np.zeros_like(values)
    return np.where(finite, scaled, 0).round().astype(np.uint16)


def _channels_last(pixels: np.ndarray, image_format: str) -> np.ndarray:
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if pixels.ndim != 3 or not 1 <= pixels.shape[2] <= 4:
        raise ImageReadError(
            f"{image_format.upper()} image has samples shaped {pixels.shape}; only gray, "
            "gray + alpha, RGB and RGBA (1 to 4 channels) are supported"
        )
    return pixels


def _decode_dicom(data: bytes, max_pixels: int) -> np.ndarray:
    dataset = dicom_io.read_dataset(data)
    width, height = dicom_io.frame_size(dataset)
    _refuse_if_too_large(width, height, max_pixels)
    return dicom_io.first_frame(dataset)


def _stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    low, high = (float(bound) for bound in np.percentile(values, (0.5, 99.5)))
    if high <= low:  # mostly one value: a few outliers must still show
        low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    scaled = (values.astype(np.float32) - np.float32(low)) * np.float32(255 / (high - low))
    return np.clip(scaled, 0, 255).round().astype(np.uint8)


_DECODERS: dict[str, Callable[[bytes, int], np.ndarray]] = {
    "png": functools.partial(_decode_raster, image_format="png"),
    "jpeg": functools.partial(_decode_raster, image_format="jpeg"),
    "bmp": functools.partial(_decode_raster, image_format="bmp"),
    "tiff": _decode_tiff,
    "dicom": _decode_dicom,
    "gif": functools.partial(_decode_first_frame, image_format="gif"),
    "webp": functools.partial(_decode_first_frame, image_format="webp"),
}
