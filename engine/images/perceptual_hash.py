"""An image's perceptual hashes: 64 bits each that stay nearly the same when the
image is resized or re-encoded (JPEG quality) and differ for other images.

Two of imagehash's hashes, which fail differently: pHash (the signs of the
lowest 8 x 8 DCT frequencies against their median) and dHash (whether each
pixel of a 9 x 8 image is brighter than its right neighbour). Alone, pHash
links unrelated images that share a strong layout (rotated photos with black
corners, round cells on a plain background); requiring both to agree keeps
the copies and drops those (bench/bench_duplicates.py). Both are taken of the
image as it is and of its seven quarter turns and mirror images, since data
sets are often augmented with those (wbc's training set is). The image is
first shrunk with OpenCV's area filter, so a 4,000-pixel X-ray costs
milliseconds. The 16 hashes are stored as one 128-byte value; `hash_table`
reads them back and `hash_distance` counts the bits two hashes differ in.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import imagehash
import numpy as np
from PIL import Image

HASH_BITS = 64
VIEWS = 8  # the image, its three quarter turns, and the mirror images of those four
_SIDE = 64  # shrunk to this first; imagehash then takes 32 x 32 (pHash) or 9 x 8 (dHash)
_STORED = np.dtype("<i8")


def perceptual_hashes(pixels: np.ndarray) -> bytes:
    """The pHash and dHash of decoded ``pixels`` (H x W x C, uint8 or uint16, as
    `imageio` reads them) and of its turned and mirrored views, as stored: `VIEWS`
    rows of (pHash, dHash), signed 64-bit, the image as it is first."""
    gray = _gray(pixels)
    rows = []
    for flipped in (gray, np.fliplr(gray)):
        for turns in range(4):
            view = Image.fromarray(np.ascontiguousarray(np.rot90(flipped, turns)))
            rows.append((_signed(imagehash.phash(view)), _signed(imagehash.dhash(view))))
    return np.array(rows, _STORED).tobytes()


def hash_table(stored: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray]:
    """The stored hashes of N images as an N x `VIEWS` x 2 int64 array (zeros where
    none is stored), and which images have them."""
    known = np.array([value is not None and len(value) == VIEWS * 16 for value in stored])
    table = np.zeros((len(stored), VIEWS, 2), np.int64)
    for row in np.flatnonzero(known):
        table[row] = np.frombuffer(stored[row], _STORED).reshape(VIEWS, 2)  # type: ignore[arg-type]
    return table, known


def hash_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """How many of the 64 bits differ between hashes (int64 arrays that broadcast)."""
    return np.bitwise_count(np.bitwise_xor(first, second).view(np.uint64))


def _signed(value: imagehash.ImageHash) -> int:
    number = int("".join("1" if bit else "0" for bit in value.hash.ravel()), 2)
    return number - (1 << HASH_BITS) if number >= 1 << (HASH_BITS - 1) else number


def _gray(pixels: np.ndarray) -> np.ndarray:
    """The image shrunk to `_SIDE` x `_SIDE`, as 8-bit gray (alpha dropped; 16-bit
    samples scaled to 8)."""
    image = pixels if pixels.ndim == 3 else pixels[..., None]
    small = cv2.resize(image, (_SIDE, _SIDE), interpolation=cv2.INTER_AREA)
    small = small if small.ndim == 3 else small[..., None]
    if small.shape[-1] >= 3:
        gray = cv2.cvtColor(np.ascontiguousarray(small[..., :3]), cv2.COLOR_RGB2GRAY)
    else:
        gray = small[..., 0]
    if gray.dtype == np.uint16:
        return ((gray.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return gray
