"""Turning a decoded image into a model's input, identically everywhere.

Training, evaluation, the augmentation preview and ONNX classification all
call `prepare_image`, so a model never sees pixels prepared differently from
those it was trained on. The input format is stored with each model version.
"""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.images.imageio import to_rgb_uint8

RESIZE_POLICIES = ("stretch", "pad")


@dataclass(frozen=True)
class InputFormat:
    """How images are prepared for a model: square size, colour mode, resize policy.

    ``channels`` 1 converts to grayscale (seed 002), ``binarize`` thresholds the
    grayscale image with Otsu's method (seed 003); ``resize`` "stretch" fills the
    square, "pad" keeps the aspect ratio and pads with black.
    """

    size: int = 128
    channels: int = 3
    resize: str = "stretch"
    binarize: bool = False

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 1024:
            raise LinnaeusError(
                f"The image size must be between 16 and 1024 pixels, not {self.size}."
            )
        if self.channels not in (1, 3):
            raise LinnaeusError("The colour mode must be grayscale (1 channel) or colour (3).")
        if self.resize not in RESIZE_POLICIES:
            raise LinnaeusError(f"The resize policy must be one of {', '.join(RESIZE_POLICIES)}.")

    @property
    def key(self) -> str:
        """A short name for caches: ``128-rgb-stretch`` or ``96-gray-pad-binary``."""
        colour = "rgb" if self.channels == 3 else "gray"
        return f"{self.size}-{colour}-{self.resize}" + ("-binary" if self.binarize else "")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, self.channels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputFormat:
        return cls(**{k: data[k] for k in ("size", "channels", "resize", "binarize") if k in data})


def prepare_image(pixels: np.ndarray, fmt: InputFormat) -> np.ndarray:
    """A decoded image (any of `read_image`'s shapes and depths) as a
    ``fmt.size`` x ``fmt.size`` x ``fmt.channels`` uint8 array."""
    rgb = to_rgb_uint8(pixels)
    if fmt.channels == 1 or fmt.binarize:
        image = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if fmt.binarize:
            _, image = cv2.threshold(image, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        if fmt.channels == 3:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    else:
        image = rgb
    image = _resize(image, fmt.size, fmt.resize)
    return image.reshape(fmt.shape)


def _resize(image: np.ndarray, size: int, policy: str) -> np.ndarray:
    height, width = image.shape[:2]
    if policy == "stretch" or height == width:
        return _scale(image, size, size)
    top, left, new_h, new_w = pad_box(height, width, size)
    canvas = np.zeros((size, size, *image.shape[2:]), np.uint8)
    canvas[top : top + new_h, left : left + new_w] = _scale(image, new_w, new_h)
    return canvas


def pad_box(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """Where the "pad" policy puts a ``height`` x ``width`` image in its ``size``
    square: (top, left, scaled height, scaled width)."""
    if height == width:
        return 0, 0, size, size
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    return (size - new_h) // 2, (size - new_w) // 2, new_h, new_w


def _scale(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width < image.shape[1] or height < image.shape[0]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)
