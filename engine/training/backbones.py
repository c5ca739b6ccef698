"""ImageNet backbones and where their weight files live on disk.

Linnaeus never downloads at run time: transfer learning uses the official Keras
Applications "no top" weight files. MobileNetV2 (alpha 0.5 and 0.35) ships with
the app as package data of `linnaeus.resources` (in a clone, a pip install and
the installers alike); other files are looked for in the folders of
``LINNAEUS_WEIGHTS``, the app's data folder and the Keras cache. Their
conversions to ONNX are kept in the app's cache folder. Pure path logic: this
module imports neither Keras nor TensorFlow, so the CLI and the GUI can say
which backbones are usable without starting TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from linnaeus.engine.errors import LinnaeusError
from linnaeus.resources import resource_path

WEIGHTS_ENV = "LINNAEUS_WEIGHTS"
APP_NAME = "Linnaeus"


class WeightsNotFound(LinnaeusError):
    """A backbone's ImageNet weight file is on none of the searched folders."""

    def __init__(self, message: str, *, file_name: str = "", searched: tuple[Path, ...] = ()):
        super().__init__(message)
        self.file_name = file_name
        self.searched = searched


@dataclass(frozen=True)
class BackboneInfo:
    """An ImageNet backbone Linnaeus can fine-tune, and its official weight file.

    `input_scale`/`input_offset` take 0..255 pixels to the range the backbone
    was trained on; `feature_layers` name its intermediate feature maps shown
    by explanation (the last layer at strides 2, 4, 8, 16; the backbone's
    output, stride 32, comes after them).
    """

    key: str
    display: str
    file_name: str
    default_size: int
    min_size: int
    input_scale: float = 1.0 / 127.5
    input_offset: float = -1.0
    feature_layers: tuple[str, ...] = ()


def _mobilenet_v2(alpha: str) -> BackboneInfo:
    return BackboneInfo(
        key=f"mobilenet_v2_{alpha}",
        display=f"MobileNetV2 (alpha {alpha})",
        file_name=f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_224_no_top.h5",
        default_size=224,
        min_size=32,
        feature_layers=(
            "block_1_expand_relu",
            "block_3_expand_relu",
            "block_6_expand_relu",
            "block_13_expand_relu",
        ),
    )


BACKBONES: dict[str, BackboneInfo] = {
    info.key: info
    for info in (
        _mobilenet_v2("0.35"),
        _mobilenet_v2("0.5"),
        _mobilenet_v2("1.0"),
        BackboneInfo(
            key="mobilenet_v3_small",
            display="MobileNetV3 Small",
            file_name="weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
            default_size=224,
            min_size=32,
            feature_layers=(
                "expanded_conv_project_bn",
                "expanded_conv_2_add",
                "expanded_conv_7_add",
            ),
        ),
        BackboneInfo(
            key="mobilenet_v3_large",
            display="MobileNetV3 Large",
            file_name="weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
            default_size=224,
            min_size=32,
            feature_layers=(
                "expanded_conv_add",
                "expanded_conv_2_add",
                "expanded_conv_5_add",
                "expanded_conv_11_add",
            ),
        ),
        BackboneInfo(
            key="efficientnet_b0",
            display="EfficientNetB0",
            file_name="efficientnetb0_notop.h5",
            default_size=224,
            min_size=32,
            input_scale=1.0,  # EfficientNet normalises 0..255 inside the model
            input_offset=0.0,
            feature_layers=(
                "block2a_expand_activation",
                "block3a_expand_activation",
                "block4a_expand_activation",
                "block6a_expand_activation",
            ),
        ),
        BackboneInfo(
            key="inception_v3",
            display="InceptionV3",
            file_name="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
            default_size=299,
            min_size=75,
            feature_layers=("mixed2", "mixed7"),
        ),
    )
}


def backbone_info(key: str) -> BackboneInfo:
    """The backbone called `key`; LinnaeusError naming the known keys if there is none."""
    try:
        return BACKBONES[key]
    except KeyError:
        known = ", ".join(BACKBONES)
        raise LinnaeusError(f"Unknown backbone {key!r}; known backbones: {known}.") from None


def app_weights_dir() -> Path:
    """The app's own weights folder, where a user puts weight files of other backbones."""
    return platformdirs.user_data_path(APP_NAME) / "weights"


def converted_backbones_dir() -> Path:
    """The app's cache of backbones converted to ONNX (`engine.training.features`)."""
    return platformdirs.user_cache_path(APP_NAME) / "backbones"


def keras_cache_dir() -> Path:
    """The Keras download cache: ``$KERAS_HOME/models``, else ``~/.keras/models``."""
    keras_home = os.environ.get("KERAS_HOME")
    base = Path(keras_home) if keras_home else Path.home() / ".keras"
    return base / "models"


def package_weights_dir() -> Path:
    """The weights that ship with Linnaeus (``resources/weights``; in an installer's
    bundle, wherever PyInstaller unpacked the package data)."""
    return resource_path("weights")


def weight_search_dirs() -> list[Path]:
    """The folders searched for weight files, in order of preference: the shipped
    weights, then ``LINNAEUS_WEIGHTS``, the app's data folder and the Keras cache."""
    dirs = [package_weights_dir()]
    dirs += [Path(p).expanduser() for p in os.environ.get(WEIGHTS_ENV, "").split(os.pathsep) if p]
    dirs.append(app_weights_dir())
    dirs.append(keras_cache_dir())
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def find_weights(key: str) -> Path:
    """The weight file of backbone `key`, from the first search folder that holds it.

    Never downloads; raises WeightsNotFound naming the file, every folder
    searched and how to fix it.
    """
    info = backbone_info(key)
    searched = tuple(weight_search_dirs())
    for folder in searched:
        candidate = folder / info.file_name
        if candidate.is_file():
            return candidate
    folders = "\n".join(f"  {d}" for d in searched)
    raise WeightsNotFound(
        f"ImageNet weights for {info.display} were not found: no file named "
        f"{info.file_name} in any of these folders:\n{folders}\n"
        f"To fix: copy {info.file_name} into {app_weights_dir()} "
        f"(or into a folder listed in the {WEIGHTS_ENV} environment variable).",
        file_name=info.file_name,
        searched=searched,
    )


def available_backbones() -> list[str]:
    """Keys of the backbones whose weight files are on disk, in BACKBONES order."""
    found = []
    for key in BACKBONES:
        try:
            find_weights(key)
        except WeightsNotFound:
            continue
        found.append(key)
    return found
