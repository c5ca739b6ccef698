"""NumPy pixels as Qt images."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtGui import QPixmap


def qimage_from_array(pixels: np.ndarray) -> QImage:
    """A QImage copy of H x W, H x W x 1 or H x W x 3 uint8 pixels (gray or RGB)."""
    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    if array.ndim == 2:
        image = QImage(array.data, width, height, width, QImage.Format.Format_Grayscale8)
    elif array.ndim == 3 and array.shape[2] == 3:
        image = QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    else:
        raise ValueError(f"expected gray or RGB pixels, got shape {array.shape}")
    return image.copy()  # the QImage above only borrows the array's memory


def pixmap_from_array(pixels: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(qimage_from_array(pixels))
