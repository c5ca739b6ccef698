"""Small test images drawn on the fly, and a corpus of good and bad image files.

Pure helpers with no pytest dependency: tests call them with a ``tmp_path``.
Pixels are drawn in RGB(A) order, as `linnaeus.engine.images.imageio` returns them,
so a lossless file read back must equal `draw_pixels` with the same arguments.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pydicom
import tifffile
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import SecondaryCaptureImageStorage
from pydicom.uid import generate_uid

IMAGE_KINDS = ("png", "jpeg", "bmp", "tiff", "dicom", "gif", "webp")
CORPUS_IMAGE_SIZE = (64, 48)  # width, height of the drawn images in the corpus
BOMB_SIDE = 100_000  # the lying PNG in the corpus claims BOMB_SIDE x BOMB_SIDE pixels

_CHANNELS_BY_KIND = {
    "png": (1, 3, 4),
    "jpeg": (1, 3),
    "bmp": (1, 3),
    "tiff": (1, 2, 3, 4),
    "dicom": (1,),
    "gif": (1, 3),
    "webp": (3, 4),
}


def draw_pixels(
    size: tuple[int, int] = (64, 48), channels: int = 3, seed: int = 0, bit_depth: int = 8
) -> np.ndarray:
    """An H x W x C image (RGB(A) order) with a gradient, noise, a disc and a bar.

    Shapes and colours depend on ``seed``. 16-bit colour or gray samples lie in
    1,000..20,125, so stretching them to 8 bits visibly changes them. An alpha
    channel fades from opaque on the left to half transparent on the right.
    """
    width, height = size
    rng = np.random.default_rng(seed)
    colour_channels = 1 if channels in (1, 2) else 3
    ramp = np.linspace(30, 150, width, dtype=np.float32)[np.newaxis, :, np.newaxis]
    noise = rng.normal(0, 12, (height, width, colour_channels))
    canvas = np.clip(ramp + noise, 0, 255).astype(np.uint8)
    centre = (
        int(rng.integers(width // 4, 3 * width // 4)),
        int(rng.integers(height // 4, 3 * height // 4)),
    )
    radius = max(2, min(width, height) // 4)
    cv2.circle(canvas, centre, radius, _colour(rng, colour_channels), thickness=-1)
    corner = (int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2)))
    cv2.rectangle(
        canvas, corner, (corner[0] + width // 3, corner[1] + 3), _colour(rng, colour_channels), -1
    )
    if bit_depth == 16:
        canvas = canvas.astype(np.uint16) * np.uint16(75) + np.uint16(1000)
    if channels in (2, 4):
        fade = np.linspace(1.0, 0.5, width)[np.newaxis, :, np.newaxis]
        opaque = np.iinfo(canvas.dtype).max
        alpha = np.broadcast_to((fade * opaque).round().astype(canvas.dtype), (height, width, 1))
        canvas = np.concatenate([canvas, alpha], axis=2)
    return canvas


def write_image(
    path: Path,
    kind: str = "png",
    size: tuple[int, int] = (64, 48),
    channels: int = 3,
    seed: int = 0,
    bit_depth: int = 8,
) -> Path:
    """Write `draw_pixels` as a ``kind`` file (one of `IMAGE_KINDS`) at ``path``.

    PNG, TIFF and DICOM take 8 or 16 bits, the others 8. DICOM is gray only, WebP
    colour only; GIF keeps at most 256 colours, WebP is written lossless.
    """
    if channels not in _CHANNELS_BY_KIND[kind]:
        raise ValueError(
            f"{kind} files here take {_CHANNELS_BY_KIND[kind]} channels, not {channels}"
        )
    if bit_depth not in (8, 16) or (bit_depth == 16 and kind not in ("png", "tiff", "dicom")):
        raise ValueError(f"{kind} files here cannot hold {bit_depth}-bit samples")
    pixels = draw_pixels(size, channels, seed, bit_depth)
    path.write_bytes(encode_image(pixels, kind))
    return path


def write_class_folders(root: Path, classes: tuple[str, ...], per_class: int) -> Path:
    """A folder-per-class tree of small PNGs, ``root/<class>/<class><n>.png``; returns ``root``."""
    for label in classes:
        (root / label).mkdir(parents=True)
        for n in range(per_class):
            write_image(root / label / f"{label}{n}.png", size=(16, 16), seed=n)
    return root


def encode_image(pixels: np.ndarray, kind: str) -> bytes:
    """The bytes of a ``kind`` file holding ``pixels`` (H x W x C, RGB(A) order)."""
    if kind == "tiff":
        buffer = io.BytesIO()
        extra: dict[str, Any] = (
            {"extrasamples": ["unassalpha"]} if pixels.shape[2] in (2, 4) else {}
        )
        photometric = "minisblack" if pixels.shape[2] <= 2 else "rgb"
        tifffile.imwrite(
            buffer,
            np.squeeze(pixels, axis=2) if pixels.shape[2] == 1 else pixels,
            photometric=photometric,
            **extra,
        )
        return buffer.getvalue()
    if kind == "dicom":
        return _encode_dicom(pixels[:, :, 0])
    if kind in ("gif", "webp"):
        return encode_frames([pixels], kind)
    conversion = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}.get(pixels.shape[2])
    bgr = cv2.cvtColor(pixels, conversion) if conversion is not None else pixels
    suffix = {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp"}[kind]
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if kind == "jpeg" else []
    encoded_ok, encoded = cv2.imencode(suffix, bgr, params)
    assert encoded_ok, f"OpenCV could not encode {kind}"
    return encoded.tobytes()


def encode_frames(frames: list[np.ndarray], kind: str) -> bytes:
    """A GIF or WebP file holding ``frames`` (H x W x C, RGB(A) order), animated if several."""
    images = [Image.fromarray(f[:, :, 0] if f.shape[2] == 1 else f) for f in frames]
    buffer = io.BytesIO()
    options: dict[str, Any] = {"lossless": True} if kind == "webp" else {}
    if len(images) > 1:
        options.update(save_all=True, append_images=images[1:], duration=100, loop=0)
    images[0].save(buffer, kind.upper(), **options)
    return buffer.getvalue()


def jpeg_with_orientation(pixels: np.ndarray, orientation: int) -> bytes:
    """A JPEG of RGB ``pixels`` (stored as given) whose EXIF says to show them rotated/flipped."""
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def dicom_copy(
    name: str = "CT_small.dcm",
    *,
    photometric: str | None = None,
    transfer_syntax: str | None = None,
) -> bytes:
    """The bytes of one of pydicom's bundled test files, optionally relabelled MONOCHROME1/2
    or with another transfer syntax UID (its pixel data kept as encoded)."""
    dataset = pydicom.dcmread(bundled_dicom_path(name))
    if photometric is not None:
        dataset.PhotometricInterpretation = photometric
    if transfer_syntax is not None:
        dataset.file_meta.TransferSyntaxUID = transfer_syntax
    return _dataset_bytes(dataset)


def bundled_dicom_path(name: str) -> Path:
    """The path of ``name`` among the test files bundled with pydicom (no download)."""
    path = get_testdata_file(name, download=False)
    if not isinstance(path, str):
        raise FileNotFoundError(f"pydicom bundles no test file {name!r}")
    return Path(path)


def png_bomb(side: int = BOMB_SIDE) -> bytes:
    """A valid, tiny PNG whose header claims ``side`` x ``side`` RGB pixels."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 4096)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


def make_bad_corpus(folder: Path) -> dict[str, str]:
    """Write good and bad image files into ``folder``; map each relative path to "ok" or "error".

    Files the file system refuses (a non-UTF-8 name, symbolic links) are left out.
    """
    folder.mkdir(parents=True, exist_ok=True)
    size = CORPUS_IMAGE_SIZE
    rgb = draw_pixels(size, 3, seed=1)
    jpeg = encode_image(rgb, "jpeg")
    png = encode_image(rgb, "png")
    gif = encode_frames([rgb, draw_pixels(size, 3, seed=8)], "gif")
    webp = encode_image(draw_pixels(size, 4, seed=9), "webp")
    cmyk = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(cmyk, "JPEG", quality=95)
    files = {
        "rgb.png": ("ok", png),
        "rgba.png": ("ok", encode_image(draw_pixels(size, 4, seed=2), "png")),
        "gray.png": ("ok", encode_image(draw_pixels(size, 1, seed=3), "png")),
        "gray16.png": ("ok", encode_image(draw_pixels(size, 1, seed=4, bit_depth=16), "png")),
        "photo.jpg": ("ok", jpeg),
        "cmyk.jpg": ("ok", cmyk.getvalue()),
        "exif_rotated.jpg": ("ok", jpeg_with_orientation(rgb, 6)),
        "really_a_jpeg.png": ("ok", jpeg),
        "UPPER.JPG": ("ok", jpeg),
        "bitmap.bmp": ("ok", encode_image(rgb, "bmp")),
        "rgb8.tif": ("ok", encode_image(rgb, "tiff")),
        "gray16.tiff": ("ok", encode_image(draw_pixels(size, 1, seed=5, bit_depth=16), "tiff")),
        "gray_alpha.tif": ("ok", encode_image(draw_pixels(size, 2, seed=6), "tiff")),
        "rgba16.tif": ("ok", encode_image(draw_pixels(size, 4, seed=7, bit_depth=16), "tiff")),
        "ct_small.dcm": ("ok", bundled_dicom_path("CT_small.dcm").read_bytes()),
        "monochrome1.dcm": ("ok", dicom_copy("CT_small.dcm", photometric="MONOCHROME1")),
        "IM0001": ("ok", dicom_copy("MR_small.dcm")),
        "Zellkern_äöü_細胞.png": ("ok", png),
        "truncated.jpg": ("error", jpeg[: len(jpeg) * 6 // 10]),
        "truncated.png": ("error", png[: len(png) * 6 // 10]),
        "empty.png": ("error", b""),
        "text.png": ("error", b"These are notes, not an image.\n"),
        "bomb.png": ("error", png_bomb()),
        "random.jpg": ("error", b"\x00" + np.random.default_rng(0).bytes(2047)),
        "no_pixels.dcm": ("error", _dicom_without_pixels()),
        "animated.gif": ("ok", gif),
        "photo.webp": ("ok", webp),
        "truncated.gif": ("error", gif[: len(gif) // 2]),
        "truncated.webp": ("error", webp[: len(webp) // 2]),
    }
    corpus = {}
    for name, (expected, data) in files.items():
        (folder / name).write_bytes(data)
        corpus[name] = expected
    try:  # a file name that is not valid UTF-8 (Linux allows any bytes but / and NUL)
        with open(os.path.join(os.fsencode(folder), b"latin1_\xe9t\xe9.png"), "wb") as file:
            file.write(png)
        corpus[os.fsdecode(b"latin1_\xe9t\xe9.png")] = "ok"
    except OSError:
        pass
    try:
        os.symlink("loop_b.png", folder / "loop_a.png")
        os.symlink("loop_a.png", folder / "loop_b.png")
        corpus["loop_a.png"] = corpus["loop_b.png"] = "error"
    except (OSError, NotImplementedError):
        pass
    return corpus


def _colour(rng: np.random.Generator, channels: int) -> tuple[int, ...]:
    return tuple(int(value) for value in rng.integers(170, 256, channels))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _encode_dicom(gray: np.ndarray) -> bytes:
    dataset = pydicom.Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.Modality = "OT"
    dataset.set_pixel_data(
        gray,
        photometric_interpretation="MONOCHROME2",
        bits_stored=gray.itemsize * 8,
        generate_instance_uid=False,
    )
    # derived from the pixels, so the same image always gives the same bytes
    dataset.SOPInstanceUID = generate_uid(entropy_srcs=[gray.tobytes().hex()])
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    return _dataset_bytes(dataset)


def _dicom_without_pixels() -> bytes:
    dataset = pydicom.dcmread(bundled_dicom_path("CT_small.dcm"))
    del dataset.PixelData
    return _dataset_bytes(dataset)


def _dataset_bytes(dataset: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
