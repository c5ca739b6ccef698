"""Class activation maps as heatmaps over the original image: the one place for
heatmap maths (scaling, smoothing, colours, what an empty map means).

A model's activation map covers its prepared square input in a few coarse
cells (7 x 7 for 224-pixel inputs). These functions keep its positive part
(evidence for the class), scale it to [0, 1], enlarge it smoothly (bicubic,
then a Gaussian of half a cell, so that no cell edges or the cross-shaped
ridges of bilinear interpolation show) and map it back through the same
resize policy that `linnaeus.engine.images.preprocess.prepare_image`
applied: the heatmap covers exactly the image the user sees (for "pad", the
padding is cut off), whether it came from the exported ONNX model (the
window, predict) or from the Keras model (the model card). A map with no
positive evidence stays all zero, and `evidence_note` says so in words.
"""

from __future__ import annotations

import cv2
import numpy as np

from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.images.preprocess import pad_box

# Positive evidence below this share of the map's largest absolute value is noise:
# such a map is shown as no evidence rather than stretched to full colour.
EVIDENCE_FLOOR = 1e-3
LEGEND_TEXT = ("low", "high", "contribution to")  # the legend's ends and its title
# A value's colour covers the image by value ** ALPHA_POWER (times the opacity): weak
# evidence stays a faint tint, so the places that decided stand out.
ALPHA_POWER = 2.0


def heatmap_to_image(
    cam: np.ndarray, original_shape: tuple[int, ...], fmt: InputFormat
) -> np.ndarray:
    """One class's activation map (h x w) as an H x W float32 map in [0, 1] over the
    original image, ``original_shape`` (H, W), that ``fmt`` prepared."""
    height, width = original_shape[:2]
    return square_to_original(cam_to_square(cam, fmt.size), height, width, fmt.resize)


def cam_to_square(cam: np.ndarray, size: int) -> np.ndarray:
    """A class activation map (h x w) as a smooth ``size`` x ``size`` float32 map in
    [0, 1]: negative evidence dropped, the strongest point 1, all zero when there is
    no positive evidence."""
    cam = np.nan_to_num(np.asarray(cam, np.float32))
    positive = np.maximum(cam, 0)
    peak = float(positive.max()) if positive.size else 0.0
    if peak <= EVIDENCE_FLOOR * float(np.abs(cam).max(initial=0.0)) or peak <= 0:
        return np.zeros((size, size), np.float32)
    square = cv2.resize(positive / peak, (size, size), interpolation=cv2.INTER_CUBIC)
    cell = size / max(cam.shape[:2])
    if cell > 2:
        square = cv2.GaussianBlur(square, (0, 0), cell / 2, borderType=cv2.BORDER_REPLICATE)
    return _unit(square)


def square_to_original(square: np.ndarray, height: int, width: int, resize: str) -> np.ndarray:
    """A map over the prepared square, mapped back onto the original ``height`` x
    ``width`` image through the resize policy (for "pad", the padding is cut off)."""
    if resize == "pad":
        top, left, new_h, new_w = pad_box(height, width, square.shape[0])
        square = square[top : top + new_h, left : left + new_w]
    return resize_heatmap(square, height, width)


def resize_heatmap(heatmap: np.ndarray, height: int, width: int) -> np.ndarray:
    """``heatmap`` (values in [0, 1]) at ``height`` x ``width``: averaged when it
    shrinks, bicubic when it grows, and never outside [0, 1] (bicubic overshoots)."""
    heatmap = np.nan_to_num(np.asarray(heatmap, np.float32))
    if heatmap.shape[:2] == (height, width):
        return np.clip(heatmap, 0, 1)
    shrinking = height * width < heatmap.shape[0] * heatmap.shape[1]
    method = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return np.clip(cv2.resize(heatmap, (width, height), interpolation=method), 0, 1)


def has_evidence(heatmap: np.ndarray) -> bool:
    """Whether a heatmap from these functions shows any evidence for its class."""
    return bool(np.asarray(heatmap).size) and float(np.max(heatmap)) > 0


def evidence_note(heatmap: np.ndarray, class_name: str) -> str | None:
    """The sentence shown instead of an empty overlay (None when there is evidence)."""
    if has_evidence(heatmap):
        return None
    return (
        f"Nothing in this image speaks for “{class_name}”: every region the model "
        "weighed counts against it, so the heatmap has nothing to colour."
    )


def heatmap_colours() -> np.ndarray:
    """The heatmap colour scale as 256 x 3 uint8 RGB, low to high (inferno: dark
    purple to pale yellow, readable without colour vision and on dark themes)."""
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    return cv2.applyColorMap(ramp, cv2.COLORMAP_INFERNO)[:, 0, ::-1].copy()


def heatmap_alpha() -> np.ndarray:
    """How much each of the 256 colours covers the image (0-255), low to high."""
    return np.round(np.linspace(0, 1, 256) ** ALPHA_POWER * 255).astype(np.uint8)


def overlay(rgb: np.ndarray, heatmap: np.ndarray, opacity: float = 0.7) -> np.ndarray:
    """``rgb`` (H x W x 3 uint8) with a [0, 1] heatmap of the same size laid on top,
    as the window draws it: the colour's opacity grows with the value
    (`heatmap_alpha`), so places without evidence keep the image as it is."""
    values = np.clip(np.nan_to_num(heatmap), 0, 1).astype(np.float32)
    levels = np.round(values * 255).astype(np.uint8)
    coloured = heatmap_colours()[levels]
    alpha = (opacity * heatmap_alpha()[levels] / 255)[..., np.newaxis]
    blended = (1 - alpha) * rgb.astype(np.float32) + alpha * coloured
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def legend_strip(width: int = 256, height: int = 12) -> np.ndarray:
    """The colour scale as a ``height`` x ``width`` RGB picture, low on the left."""
    columns = np.linspace(0, 255, width).round().astype(np.uint8)
    return np.repeat(heatmap_colours()[columns][np.newaxis], height, axis=0)


def _unit(values: np.ndarray) -> np.ndarray:
    values = np.clip(values, 0, None)
    peak = float(values.max()) if values.size else 0.0
    return (values / peak if peak > 0 else values).astype(np.float32)
