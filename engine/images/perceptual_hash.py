"""An image's perceptual hash: 64 bits that stay nearly the same when the image is
resized, re-encoded (JPEG quality) or slightly brightened, and differ for other images.

It is imagehash's pHash (the signs of the lowest 8 x 8 DCT frequencies of a
32 x 32 gray image against their median). The image is first shrunk with
OpenCV's area filter, so a 4,000-pixel X-ray costs milliseconds, not the
fraction of a second imagehash's own resize of the full image would take.
Hashes are stored as SQLite's signed 64-bit integers; `hash_distance` counts
the bits two hashes differ in.
"""

from __future__ import annotations

import cv2
import imagehash
import numpy as np
from PIL import Image

HASH_BITS = 64
_SIDE = 32  # imagehash.phash's 8 x 4: the DCT is taken of a 32 x 32 image


def perceptual_hash(pixels: np.ndarray) -> int:
    """The pHash of decoded ``pixels`` (H x W x C, uint8 or uint16, as `imageio`
    reads them) as a signed 64-bit integer."""
    gray = _gray(pixels)
    small = cv2.resize(gray, (_SIDE, _SIDE), interpolation=cv2.INTER_AREA)
    bits = imagehash.phash(Image.fromarray(small), hash_size=8).hash.ravel()
    value = int("".join("1" if bit else "0" for bit in bits), 2)
    return value - (1 << HASH_BITS) if value >= 1 << (HASH_BITS - 1) else value


def hash_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """How many of the 64 bits differ between hashes (int64 arrays that broadcast)."""
    return np.bitwise_count(np.bitwise_xor(first, second).view(np.uint64))


def _gray(pixels: np.ndarray) -> np.ndarray:
    """The image as 8-bit gray (alpha dropped; 16-bit samples scaled to 8)."""
    image = pixels if pixels.ndim == 3 else pixels[..., None]
    colour = image[..., :3] if image.shape[-1] >= 3 else image[..., :1]
    if colour.shape[-1] == 3:
        weights = np.array([0.299, 0.587, 0.114], np.float32)  # what PIL's "L" uses
        gray = colour.astype(np.float32) @ weights
    else:
        gray = colour[..., 0].astype(np.float32)
    if pixels.dtype == np.uint16:
        gray /= 257.0
    return np.clip(gray + 0.5, 0, 255).astype(np.uint8)
