"""Why the model decided what it did about one image, from the exported model alone.

`explain_file` runs an exported Linnaeus model (onnxruntime, no TensorFlow) on
one image and returns its class probabilities, the class activation map of a
chosen class laid over the image, and the feature maps of each convolutional
block ("what the model sees"). `feature_grid` tiles one block's maps into a
single picture, each map stretched to its own range so weak maps stay visible;
`block_depths` names the blocks by depth, as a user reads them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linnaeus.engine.images.heatmaps import heatmap_to_image
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.preprocess import prepare_image
from linnaeus.engine.onnx.format import CAM
from linnaeus.engine.onnx.format import PROBABILITIES
from linnaeus.engine.onnx.inference import Classifier
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled

MAX_GRID_MAPS = 64  # a block with more maps shows its first 64 (the grid stays readable)


@dataclass(frozen=True)
class ImageExplanation:
    """A model's view of one image."""

    classes: list[str]
    probabilities: np.ndarray  # K, as the model reports them
    predicted: int  # the class the model decides for (threshold included)
    explained: int  # the class the heatmap explains
    heatmap: np.ndarray  # H x W float32 in [0, 1] over the image as stored
    feature_maps: list[np.ndarray]  # per block, h x w x channels float32
    feature_layers: list[str]  # the blocks' layer names, for display


def explain_file(
    classifier: Classifier,
    path: Path,
    class_index: int | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImageExplanation:
    """Explain the image at ``path``: the heatmap of ``class_index`` (default: the
    predicted class) and every block's feature maps. Raises ImageReadError for a
    file that cannot be read, as import does."""
    pixels = read_image(Path(path)).pixels
    check_cancelled(cancel)
    prepared = prepare_image(pixels, classifier.input_format)[np.newaxis]
    outputs = classifier.explain_pixels(prepared)
    probabilities = outputs[PROBABILITIES][0]
    predicted = int(classifier.decide(probabilities[np.newaxis])[0])
    explained = predicted if class_index is None else int(class_index)
    if not 0 <= explained < len(classifier.classes):
        raise ValueError(f"class index {explained} is not one of the model's classes")
    cam = outputs[CAM][0, :, :, explained]
    names = classifier.metadata.feature_outputs
    return ImageExplanation(
        classes=list(classifier.classes),
        probabilities=probabilities,
        predicted=predicted,
        explained=explained,
        heatmap=heatmap_to_image(cam, pixels.shape[:2], classifier.input_format),
        feature_maps=[np.asarray(outputs[name][0], np.float32) for name in names],
        feature_layers=list(classifier.metadata.feature_layers) or list(names),
    )


DEPTHS = (
    ("early", "edges and colours"),
    ("middle", "textures and patterns"),
    ("late", "parts and shapes"),
)


def block_depths(count: int) -> list[str]:
    """What each of ``count`` blocks (input to output) responds to, by its depth in
    the model, in a user's words: "early: edges and colours" for the first third,
    "middle: textures and patterns", "late: parts and shapes" for the last."""
    names = []
    for index in range(count):
        share = index / (count - 1) if count > 1 else 1.0
        depth, sees = DEPTHS[min(len(DEPTHS) - 1, int(share * len(DEPTHS)))]
        names.append(f"{depth}: {sees}")
    return names


@dataclass(frozen=True)
class FeatureGrid:
    """One block's maps tiled into one picture."""

    pixels: np.ndarray  # uint8, each map stretched to 0-255
    gaps: np.ndarray  # bool, same shape: True between the maps (drawn in another colour)
    shown: int  # how many maps it holds


def feature_grid(
    maps: np.ndarray, limit: int = MAX_GRID_MAPS, gap: int | None = None
) -> FeatureGrid:
    """One block's feature maps (h x w x C) tiled row by row into a uint8 picture,
    ``gap`` pixels apart (default: a tenth of a map, at least one pixel, so that
    small maps stay apart when enlarged);
    each map is stretched from its own lowest to highest value (a constant map is
    black). At most ``limit`` maps are shown."""
    maps = np.asarray(maps, np.float32)
    if maps.ndim != 3:
        raise ValueError(f"expected feature maps shaped h x w x channels, got {maps.shape}")
    height, width, channels = maps.shape
    gap = max(1, math.ceil(max(height, width) / 10)) if gap is None else gap
    count = min(channels, limit)
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns) if count else 0
    shape = (max(0, rows * (height + gap) - gap), max(0, columns * (width + gap) - gap))
    grid = np.zeros(shape, np.uint8)
    gaps = np.ones(shape, bool)
    for index in range(count):
        channel = maps[:, :, index]
        low, high = float(channel.min()), float(channel.max())
        scaled = (channel - low) / (high - low) * 255 if high > low else np.zeros_like(channel)
        top, left = (index // columns) * (height + gap), (index % columns) * (width + gap)
        grid[top : top + height, left : left + width] = np.round(scaled).astype(np.uint8)
        gaps[top : top + height, left : left + width] = False
    return FeatureGrid(grid, gaps, count)
