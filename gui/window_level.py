"""Window and level: which pixel values the viewer spans from black to white.

Pure NumPy, as a radiology workstation does it: the window is a range of
values; dragging with the right button widens it (left/right) and moves its
centre, the level (up/down). "Auto" is the 0.5-99.5 percentile stretch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_DRAG_SENSITIVITY = 1 / 300  # fraction of the value range per pixel of right-drag


@dataclass(frozen=True)
class Window:
    """Display window: values from ``low`` to ``high`` span black to white."""

    low: float
    high: float

    @property
    def centre(self) -> float:
        return (self.low + self.high) / 2

    @property
    def width(self) -> float:
        return self.high - self.low

    @classmethod
    def from_centre(cls, centre: float, width: float) -> Window:
        width = max(width, 1e-6)
        return cls(centre - width / 2, centre + width / 2)

    def dragged(self, dx: float, dy: float, value_range: float) -> Window:
        """The window after a right-drag of (dx, dy) screen pixels over an image whose
        values span ``value_range``: right widens, up raises the level."""
        step = value_range * _DRAG_SENSITIVITY
        return Window.from_centre(self.centre - dy * step, max(self.width + dx * step, 1.0))


def auto_window(pixels: np.ndarray) -> Window:
    """The 0.5-99.5 percentile stretch (as `imageio.to_uint8`), or min-max if flat."""
    sample = pixels if pixels.size <= 1_000_000 else pixels.ravel()[:: pixels.size // 1_000_000]
    low, high = (float(v) for v in np.percentile(sample, (0.5, 99.5)))
    if high <= low:
        low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        high = low + 1
    return Window(low, high)


def display_pixels(pixels: np.ndarray) -> np.ndarray:
    """Gray H x W or colour H x W x 3 from decoded H x W x C pixels (alpha dropped)."""
    if pixels.ndim == 2:
        return pixels
    if pixels.shape[2] in (1, 2):
        return pixels[:, :, 0]
    return pixels[:, :, :3]
