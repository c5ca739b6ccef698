"""A disk cache of small JPEG previews of images, keyed by image content.

A thumbnail is named after the content hash of its image, so renaming or
moving an image keeps its thumbnail and editing it makes a new one. Each file
is written atomically: a killed process never leaves half a thumbnail, and
worker threads asking for the same image at once each write a whole file.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cv2
import numpy as np

from linnaeus.engine.atomic import atomic_write_bytes
from linnaeus.engine.disk_space import disk_full_as_error
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.imageio import to_rgb_uint8

JPEG_QUALITY = 90

_CONTENT_HASH = re.compile(r"[0-9a-f]{2,}")


class ThumbnailCache:
    """Thumbnails no larger than ``size`` x ``size`` pixels, kept in ``folder``.

    `get` may be called from several threads at once.
    """

    def __init__(self, folder: Path, *, size: int = 256) -> None:
        if size < 1:
            raise ValueError(f"thumbnail size must be positive, got {size}")
        self.folder = folder
        self.size = size

    def path_for(self, content_hash: str) -> Path:
        """Where the thumbnail of the image with ``content_hash`` is, or will be, stored."""
        if not _CONTENT_HASH.fullmatch(content_hash):
            raise ValueError(f"not a content hash: {content_hash!r}")
        return self.folder / content_hash[:2] / f"{content_hash}_{self.size}.jpg"

    def get(self, image_path: Path, content_hash: str) -> Path:
        """The thumbnail of the image at ``image_path``, made now if it is not cached yet.

        Images are shrunk to fit, keeping their aspect, never enlarged; alpha is
        composited over black. Raises `ImageReadError` if the image cannot be read.
        """
        thumbnail_path = self.path_for(content_hash)
        if thumbnail_path.is_file():
            return thumbnail_path
        rgb = _fit(to_rgb_uint8(read_image(image_path).pixels), self.size)
        encoded_ok, encoded = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )
        if not encoded_ok:
            raise RuntimeError(f"OpenCV could not encode the thumbnail of {image_path}")
        with disk_full_as_error(self.folder):
            thumbnail_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(thumbnail_path, encoded.tobytes())
        return thumbnail_path

    def clear(self) -> None:
        """Delete every cached thumbnail (of any size); call it while no `get` is running."""
        if self.folder.exists():
            shutil.rmtree(self.folder)


def _fit(rgb: np.ndarray, size: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    if scale >= 1:
        return rgb
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, new_size, interpolation=cv2.INTER_AREA)
