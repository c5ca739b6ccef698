"""Image augmentation: the seeds' ImageDataGenerator settings, in numpy and OpenCV.

Training and the GUI's preview grid both go through `augment_batch`, so the
samples a user previews are the ones the model gets. No TensorFlow or Keras
here: the GUI imports this module.

Settings mean what they mean to Keras' legacy ImageDataGenerator, except that
width_shift_range moves images horizontally and height_shift_range vertically
(Keras 3 swaps them), rotation, shear and zoom turn about the true centre
(Keras' is off for non-square images), interpolation is OpenCV's bilinear
(within about a grey level of Keras') and ``wrap`` has period W, H (scipy's
legacy wrap uses W - 1, H - 1). Each image draws nine uniform numbers in a
fixed order whatever the settings, so moving one slider changes only its own
part of each sample. The featurewise flags leave pixels alone: training
normalises model inputs with `FeaturewiseStats`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import check_cancelled

FILL_MODES = ("nearest", "reflect", "constant", "wrap")

_BORDERS = {
    "nearest": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT,  # abcd|dcba, as Keras' (scipy's) "reflect"
    "constant": cv2.BORDER_CONSTANT,
    "wrap": cv2.BORDER_WRAP,
}
# Allowed values: (lowest, highest, whether highest itself is allowed).
_LIMITS: dict[str, tuple[float, float, bool]] = {
    "rotation_range": (0.0, 180.0, True),
    "width_shift_range": (0.0, 1.0, False),
    "height_shift_range": (0.0, 1.0, False),
    "shear_range": (0.0, 90.0, False),
    "zoom_range": (0.0, 1.0, False),
    "cval": (0.0, 255.0, True),
}
_FLAGS = ("horizontal_flip", "vertical_flip", "featurewise_center", "featurewise_std_normalization")
_STD_FLOOR = 1e-3
_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _number(name: str, value: Any, owner: str = "Augmentation") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise LinnaeusError(f"{owner} setting {name} must be a number (got {value!r}).")
    if not math.isfinite(value):
        raise LinnaeusError(f"{owner} setting {name} must be a finite number (got {value!r}).")
    return float(value)


@dataclass(frozen=True)
class Augmentation:
    """How to draw random variants of an image, as Keras' ImageDataGenerator does.

    ``rotation_range`` is in degrees (uniform in [-r, r]); shifts are fractions
    of the width and height. ``shear_range`` is a shear angle in degrees, as in
    ImageDataGenerator, so the seeds' 0.1 and 0.2 are barely visible. Zoom
    factors are drawn in [1 - z, 1 + z] for x and y independently and, as in
    Keras, a factor below 1 enlarges the image (zooms in). Brightness
    multiplies pixels by a factor drawn in ``brightness_range``. ``cval`` is the
    fill grey level for ``fill_mode="constant"``.
    """

    rotation_range: float = 0.0
    width_shift_range: float = 0.0
    height_shift_range: float = 0.0
    shear_range: float = 0.0
    zoom_range: float = 0.0
    horizontal_flip: bool = False
    vertical_flip: bool = False
    brightness_range: tuple[float, float] | None = None
    fill_mode: str = "nearest"
    cval: float = 0.0
    featurewise_center: bool = False
    featurewise_std_normalization: bool = False

    def __post_init__(self) -> None:
        for name, (low, high, high_allowed) in _LIMITS.items():
            value = _number(name, getattr(self, name))
            if value < low or value > high or (value == high and not high_allowed):
                top = f"at most {high:g}" if high_allowed else f"below {high:g}"
                raise LinnaeusError(f"Augmentation setting {name} must be {low:g} or more, {top}.")
            object.__setattr__(self, name, value)
        for name in _FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise LinnaeusError(f"Augmentation setting {name} must be true or false.")
        if self.fill_mode not in FILL_MODES:
            raise LinnaeusError(f"Augmentation setting fill_mode must be one of {FILL_MODES}.")
        if self.brightness_range is not None:
            bounds: Any = self.brightness_range
            pair = isinstance(bounds, (tuple, list)) and len(bounds) == 2
            low, high = (_number("brightness_range", b) for b in bounds) if pair else (1.0, 0.0)
            if not 0 <= low <= high:
                raise LinnaeusError(
                    "Augmentation setting brightness_range must be two numbers 0 <= low <= high."
                )
            object.__setattr__(self, "brightness_range", (low, high))

    @property
    def is_identity(self) -> bool:
        """True when `augment_image` returns images unchanged (no geometry, no brightness)."""
        return _no_geometry(self) and self.brightness_range in (None, (1.0, 1.0))

    def to_dict(self) -> dict[str, Any]:
        """All settings as a JSON-safe dict (``brightness_range`` as a list or None)."""
        result = dataclasses.asdict(self)
        if self.brightness_range is not None:
            result["brightness_range"] = list(self.brightness_range)
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Augmentation:
        """Settings from `to_dict`'s output; missing keys take defaults, unknown ones fail."""
        if not isinstance(data, Mapping):
            raise LinnaeusError("Augmentation settings must be a JSON object of named settings.")
        _refuse_unknown(data, cls)
        values = dict(data)
        if isinstance(values.get("brightness_range"), list):
            values["brightness_range"] = tuple(values["brightness_range"])
        return cls(**values)

    def replace(self, **changes: Any) -> Augmentation:
        """A copy with ``changes`` applied and checked."""
        _refuse_unknown(changes, type(self))
        return dataclasses.replace(self, **changes)


def _no_geometry(params: Augmentation) -> bool:
    ranges = (params.rotation_range, params.width_shift_range, params.height_shift_range)
    flips = (params.horizontal_flip, params.vertical_flip)
    return not any((*ranges, params.shear_range, params.zoom_range, *flips))


def _refuse_unknown(data: Mapping[str, Any], cls: Any) -> None:
    known = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(str(key) for key in data if key not in known)
    if unknown:
        raise LinnaeusError(
            f"Unknown {cls.__name__} setting(s): {', '.join(unknown)} (known: {', '.join(known)})."
        )


PRESETS: dict[str, Augmentation] = {
    "none": Augmentation(),
    "gentle": Augmentation(  # seed 000's final settings
        rotation_range=10,
        width_shift_range=0.1,
        height_shift_range=0.1,
        shear_range=0.1,
        zoom_range=0.1,
    ),
    "strong": Augmentation(  # seed 000's first settings
        rotation_range=40,
        width_shift_range=0.2,
        height_shift_range=0.2,
        shear_range=0.2,
        zoom_range=0.2,
        horizontal_flip=True,
    ),
}


def load_augmentation(spec: str) -> Augmentation:
    """The preset named ``spec``, or the settings in the JSON file at path ``spec``."""
    if spec.strip().lower() in PRESETS:
        return PRESETS[spec.strip().lower()]
    path = Path(spec)
    if not path.is_file():
        raise LinnaeusError(
            f"{spec!r} is neither an augmentation preset ({', '.join(PRESETS)}) "
            "nor a JSON file of augmentation settings."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LinnaeusError(f"Cannot read augmentation settings from {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise LinnaeusError(f"Augmentation settings file {path} is not valid JSON: {exc}") from exc
    try:
        return Augmentation.from_dict(data)
    except LinnaeusError as exc:
        raise LinnaeusError(f"Augmentation settings file {path}: {exc}") from exc


def transform_matrix(
    params: Augmentation, rng: np.random.Generator, height: int, width: int
) -> np.ndarray:
    """The random 2x3 affine matrix for one image, mapping input pixel (x, y) to output.

    Ready for ``cv2.warpAffine`` without ``WARP_INVERSE_MAP``. Rotation (positive
    is counter-clockwise on screen), shift, shear and zoom act about the image
    centre; flips follow, as in Keras. Draws exactly eight uniform numbers from
    ``rng``, whatever ``params`` are, in Keras' order: rotation, height shift,
    width shift, shear, zoom x, zoom y, horizontal flip, vertical flip.
    """
    u = rng.random(8).tolist()
    theta = math.radians(params.rotation_range * (2 * u[0] - 1))
    shift_y = params.height_shift_range * (2 * u[1] - 1) * height
    shift_x = params.width_shift_range * (2 * u[2] - 1) * width
    shear = math.radians(params.shear_range * (2 * u[3] - 1))
    zoom_x = 1 + params.zoom_range * (2 * u[4] - 1)
    zoom_y = 1 + params.zoom_range * (2 * u[5] - 1)
    # The inverse of Keras' output-to-input map (rotation . shift . shear . zoom about
    # the centre), written out in plain floats: it runs once per image.
    cos, sin = math.cos(theta), math.sin(theta)
    a, b, d = 1 / zoom_x, math.tan(shear) / zoom_x, 1 / (zoom_y * math.cos(shear))
    m00, m01, m10, m11 = a * cos - b * sin, a * sin + b * cos, -d * sin, d * cos
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    offset_x = cos * shift_x - sin * shift_y + centre_x
    offset_y = sin * shift_x + cos * shift_y + centre_y
    rows = [
        [m00, m01, centre_x - m00 * offset_x - m01 * offset_y],
        [m10, m11, centre_y - m10 * offset_x - m11 * offset_y],
    ]
    if params.horizontal_flip and u[6] < 0.5:
        rows[0] = [-m00, -m01, width - 1 - rows[0][2]]
    if params.vertical_flip and u[7] < 0.5:
        rows[1] = [-m10, -m11, height - 1 - rows[1][2]]
    return np.array(rows)


def augment_image(image: np.ndarray, params: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """A random variant of ``image`` (H x W x C uint8, C = 1 or 3), same shape and dtype.

    Geometry (`transform_matrix`), filled per ``params.fill_mode``, then
    brightness, clipped to 0..255. Always draws nine uniform numbers from
    ``rng`` (the matrix's eight, then brightness), even when ``params`` is the
    identity, which returns an unchanged copy.
    """
    if image.ndim != 3 or image.shape[2] not in (1, 3) or image.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 1|3 uint8 image, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    matrix = transform_matrix(params, rng, height, width)
    brightness_draw = rng.random()
    result = image
    if not _no_geometry(params) and not np.array_equal(matrix, _IDENTITY):
        result = _warp(image, matrix, params)
    if params.brightness_range is not None:
        low, high = params.brightness_range
        factor = low + (high - low) * brightness_draw
        if factor != 1.0:
            result = cv2.convertScaleAbs(np.ascontiguousarray(result), alpha=factor)
    if result is image:
        return image.copy()
    return result.reshape(image.shape)  # OpenCV drops a single channel's axis


def _warp(image: np.ndarray, matrix: np.ndarray, params: Augmentation) -> np.ndarray:
    # OpenCV's bilinear warp is vectorised for 1 and 4 channels but not 3: going
    # through RGBA gives the same pixels about twice as fast.
    height, width, channels = image.shape
    source = np.ascontiguousarray(image)
    if channels == 3:
        source = cv2.cvtColor(source, cv2.COLOR_RGB2RGBA)
    warped = cv2.warpAffine(
        source,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=_BORDERS[params.fill_mode],
        borderValue=(params.cval,) * 4,
    )
    return cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB) if channels == 3 else warped


def augment_batch(images: np.ndarray, params: Augmentation, seed: int) -> np.ndarray:
    """Random variants of N x H x W x C uint8 ``images``, same shape and dtype.

    Image ``i`` uses ``np.random.default_rng([seed, i])``, so its variant
    depends only on ``seed`` and its index. Give each batch its own seed
    (repeating one repeats the transforms). A negative seed is taken modulo 2**64.
    """
    if images.ndim != 4 or images.shape[3] not in (1, 3) or images.dtype != np.uint8:
        raise ValueError(
            f"expected N x H x W x 1|3 uint8 images, got {images.shape} {images.dtype}"
        )
    if params.is_identity:  # what the loop below would give, without its cost
        return images.copy()
    seed = int(seed) % 2**64
    result = np.empty(images.shape, np.uint8)
    for index in range(images.shape[0]):
        result[index] = augment_image(images[index], params, np.random.default_rng([seed, index]))
    return result


def preview_samples(
    image: np.ndarray, params: Augmentation, count: int, seed: int = 0
) -> list[np.ndarray]:
    """``count`` variants of ``image`` exactly as training's `augment_batch` makes them.

    Sample ``k`` equals ``augment_batch(np.stack([pixels] * count), params,
    seed)[k]``, where ``pixels`` is ``image`` as H x W x 1|3 uint8: gray gets a
    channel axis, alpha is dropped, uint16 is stretched linearly from its
    minimum..maximum to 0..255.
    """
    pixels = _preview_pixels(np.asarray(image))
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return list(augment_batch(np.broadcast_to(pixels, (count, *pixels.shape)), params, seed))


def _preview_pixels(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise LinnaeusError(f"Cannot preview an image of shape {image.shape}.")
    if image.dtype not in (np.uint8, np.uint16):
        raise LinnaeusError(f"Cannot preview {image.dtype} pixels; 8- or 16-bit images only.")
    image = image[:, :, :1] if image.shape[2] == 2 else image[:, :, :3]
    if image.dtype == np.uint16:
        low, high = int(image.min()), int(image.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        image = np.round((image.astype(np.float32) - low) * scale).astype(np.uint8)
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class FeaturewiseStats:
    """Per-channel mean and standard deviation of the training images, on a 0..255 scale.

    Training subtracts ``mean`` when ``featurewise_center`` is set and divides
    by ``std`` when ``featurewise_std_normalization`` is.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            values = tuple(_number(name, v, "FeaturewiseStats") for v in getattr(self, name))
            object.__setattr__(self, name, values)
        if not self.mean or len(self.mean) != len(self.std) or min(self.std) <= 0:
            raise LinnaeusError("FeaturewiseStats needs one mean and one positive std per channel.")

    def to_dict(self) -> dict[str, list[float]]:
        """``{"mean": [...], "std": [...]}``, JSON-safe."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeaturewiseStats:
        """Stats from `to_dict`'s output; unknown or missing keys fail."""
        if not isinstance(data, Mapping):
            raise LinnaeusError("FeaturewiseStats must be a JSON object with mean and std.")
        _refuse_unknown(data, cls)
        for name in ("mean", "std"):
            if not isinstance(data.get(name), (list, tuple)):
                raise LinnaeusError(f"FeaturewiseStats {name} must be a list of numbers.")
        return cls(mean=tuple(data["mean"]), std=tuple(data["std"]))


def featurewise_stats(
    images: Iterable[np.ndarray], *, cancel: CancelToken | None = None
) -> FeaturewiseStats:
    """Per-channel mean and std over uint8 ``images`` (H x W or H x W x C), read once.

    Any number of images in constant memory; the result is exact (a per-channel
    histogram is accumulated). A std below 1e-3 is raised to 1e-3.
    """
    histogram: np.ndarray | None = None
    for image in images:
        check_cancelled(cancel)
        pixels = np.asarray(image)
        if pixels.ndim == 2:
            pixels = pixels[:, :, np.newaxis]
        if pixels.dtype != np.uint8 or pixels.ndim != 3:
            raise LinnaeusError(f"Image statistics need uint8 images, not {pixels.dtype}.")
        channels = pixels.shape[2]
        if histogram is None:
            histogram = np.zeros((channels, 256), np.int64)
        elif histogram.shape[0] != channels:
            raise LinnaeusError("Training images must all have the same number of channels.")
        flat = pixels.reshape(-1, channels)
        for channel in range(channels):
            histogram[channel] += np.bincount(flat[:, channel], minlength=256)
    if histogram is None or not histogram[0].any():
        raise LinnaeusError("No training pixels to compute image statistics from.")
    values = np.arange(256, dtype=np.int64)
    count = int(histogram[0].sum())
    totals = [int(t) for t in histogram @ values]  # exact integer sums
    squares = [int(q) for q in histogram @ (values * values)]
    variances = [(count * q - t * t) / count**2 for t, q in zip(totals, squares, strict=True)]
    return FeaturewiseStats(
        mean=tuple(t / count for t in totals),
        std=tuple(max(math.sqrt(v), _STD_FLOOR) for v in variances),
    )
