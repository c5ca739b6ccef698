"""Class activation maps as heatmaps over the original image.

A model's activation map covers its prepared square input; these functions
scale it to [0, 1] and map it back through the same resize policy that
`linnaeus.engine.images.preprocess.prepare_image` applied, so a heatmap lies on
the image the user sees, whether it came from the exported ONNX model (the
window, predict) or from the Keras model (the model card).
"""

from __future__ import annotations

import cv2
import numpy as np

from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.images.preprocess import pad_box


def heatmap_to_image(
    cam: np.ndarray, original_shape: tuple[int, ...], fmt: InputFormat
) -> np.ndarray:
    """One class's activation map (h x w) as an H x W float32 map in [0, 1] over the
    original image, ``original_shape`` (H, W), that ``fmt`` prepared."""
    height, width = original_shape[:2]
    return square_to_original(cam_to_square(cam, fmt.size), height, width, fmt.resize)


def cam_to_square(cam: np.ndarray, size: int) -> np.ndarray:
    """A class activation map (h x w) as a ``size`` x ``size`` float32 map in [0, 1]:
    negative evidence dropped, the strongest point 1."""
    positive = np.maximum(np.asarray(cam, np.float32), 0)
    peak = float(positive.max()) if positive.size else 0.0
    if peak > 0:
        positive /= peak
    square = cv2.resize(positive, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(square, 0, 1).astype(np.float32)


def square_to_original(square: np.ndarray, height: int, width: int, resize: str) -> np.ndarray:
    """A map over the prepared square, mapped back onto the original ``height`` x
    ``width`` image through the resize policy (for "pad", the padding is cut off)."""
    if resize == "pad":
        top, left, new_h, new_w = pad_box(height, width, square.shape[0])
        square = square[top : top + new_h, left : left + new_w]
    mapped = cv2.resize(square, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(mapped, 0, 1).astype(np.float32)
