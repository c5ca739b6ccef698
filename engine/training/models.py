"""Classifier models: the seeds' small CNN, a small residual net, ImageNet transfer.

Every classifier takes raw pixels, ``keras.Input((size, size, channels),
dtype="uint8", name="image")``, and scales them itself in one layer named
"preprocess", so the exported ONNX model cannot be fed wrongly. Every
classifier ends the same way, which training, export and explanation rely on:

    last conv feature map -> "gap" (GlobalAveragePooling2D) -> "head_dropout"
    -> "logits" (Dense, linear) -> "probabilities" (softmax, float32)

so a class activation map is the last feature map times the logits kernel,
logits are there for temperature scaling, and probabilities stay float32 under
mixed precision. Transfer models hold their ImageNet backbone as a nested model
named "backbone", called in inference mode, with BatchNormalization always
frozen. Imported only by the modules that train or export.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.training.backbones import BACKBONES
from linnaeus.engine.training.backbones import WeightsNotFound
from linnaeus.engine.training.backbones import backbone_info
from linnaeus.engine.training.backbones import find_weights

log = logging.getLogger(__name__)

MODEL_KINDS = ("seed-cnn", "small-resnet", "transfer")
FROM_SCRATCH_KINDS = ("seed-cnn", "small-resnet")
INPUT_NAME = "image"
BACKBONE_NAME = "backbone"
HEAD_LAYER_NAMES = ("gap", "head_dropout", "logits", "probabilities")
MIN_SCRATCH_SIZE = 32
MAX_IMAGE_SIZE = 2048

_IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)
_BLOCK_NAME = re.compile(r"block(\d+)")


@dataclass(frozen=True)
class ModelSpec:
    """What to build: architecture, classes, input size and head regularisation.

    `activation` applies to the seed CNN only (the residual net uses ReLU);
    `backbone` is a BACKBONES key, required for "transfer" and only for it.
    """

    kind: str
    num_classes: int
    image_size: int = 128
    channels: int = 3
    backbone: str | None = None
    activation: str = "elu"
    dropout: float = 0.1
    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self) -> None:
        _validate_spec(self)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-compatible values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        """The spec described by `d` (as written by `to_dict`); LinnaeusError if invalid."""
        if not isinstance(d, Mapping):
            raise LinnaeusError(f"A model spec must be a mapping, not {type(d).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise LinnaeusError(f"Unknown model spec field(s): {', '.join(map(str, unknown))}.")
        missing = [name for name in ("kind", "num_classes") if name not in d]
        if missing:
            raise LinnaeusError(f"The model spec lacks required field(s): {', '.join(missing)}.")
        return cls(**d)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LinnaeusError(f"Model spec: {name} must be a whole number, not {value!r}.")
    if not low <= value <= high:
        raise LinnaeusError(f"Model spec: {name} must be between {low} and {high}, not {value}.")


def _check_fraction(name: str, value: object, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < high:
        raise LinnaeusError(f"Model spec: {name} must be a number in [0, {high}), not {value!r}.")


def _validate_spec(spec: ModelSpec) -> None:
    if spec.kind not in MODEL_KINDS:
        raise LinnaeusError(
            f"Model spec: unknown kind {spec.kind!r}; choose one of {', '.join(MODEL_KINDS)}."
        )
    _check_int("num_classes", spec.num_classes, 2, 100_000)
    if spec.channels not in (1, 3) or isinstance(spec.channels, bool):
        raise LinnaeusError(
            f"Model spec: channels must be 1 (grayscale) or 3, not {spec.channels!r}."
        )
    min_size = MIN_SCRATCH_SIZE
    if spec.kind == "transfer":
        if spec.backbone is None:
            raise LinnaeusError("Model spec: a transfer model needs a backbone.")
        info = backbone_info(spec.backbone)
        min_size = info.min_size
        if spec.channels != 3:
            raise LinnaeusError(f"Model spec: {info.display} needs 3 channels (RGB input).")
    elif spec.backbone is not None:
        raise LinnaeusError(f"Model spec: a {spec.kind} model takes no backbone.")
    _check_int("image_size", spec.image_size, min_size, MAX_IMAGE_SIZE)
    if not isinstance(spec.activation, str):
        raise LinnaeusError(f"Model spec: activation must be a name, not {spec.activation!r}.")
    try:
        keras.activations.get(spec.activation)
    except (ValueError, TypeError):
        raise LinnaeusError(f"Model spec: unknown activation {spec.activation!r}.") from None
    _check_fraction("dropout", spec.dropout, 1.0)
    _check_fraction("l1", spec.l1, math.inf)
    _check_fraction("l2", spec.l2, math.inf)


# --- building blocks -------------------------------------------------------------------


def _featurewise_stats(
    mean: Sequence[float] | None, std: Sequence[float] | None, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and variance on the 0..255 scale for a Normalization layer.

    A mean alone centres and scales by 1/255; a std alone only divides.
    """

    def per_channel(values: Sequence[float], what: str) -> np.ndarray:
        array = np.asarray(values, dtype="float64").reshape(-1)
        if array.size not in (1, channels) or not np.all(np.isfinite(array)):
            raise LinnaeusError(f"Featurewise {what} needs 1 or {channels} finite values.")
        return np.broadcast_to(array, (channels,)).copy()

    mean_array = per_channel(mean, "mean") if mean is not None else np.zeros(channels)
    if std is None:
        return mean_array, np.full(channels, 255.0**2)
    std_array = per_channel(std, "std")
    if np.any(std_array <= 0):
        raise LinnaeusError("Featurewise std values must be positive.")
    return mean_array, std_array**2


def _preprocess(
    image: keras.KerasTensor,
    spec: ModelSpec,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> keras.KerasTensor:
    """The single "preprocess" layer: uint8 pixels to the float range the trunk expects."""
    if spec.kind == "transfer":
        if mean is not None or std is not None:
            log.info("Featurewise mean/std ignored: %s uses its ImageNet scaling.", spec.backbone)
        info = backbone_info(str(spec.backbone))
        rescale = layers.Rescaling(
            info.input_scale, info.input_offset, dtype="float32", name="preprocess"
        )
        return rescale(image)
    if mean is None and std is None:
        return layers.Rescaling(1.0 / 255.0, dtype="float32", name="preprocess")(image)
    mean_array, variance = _featurewise_stats(mean, std, spec.channels)
    normalise = layers.Normalization(
        mean=mean_array, variance=variance, dtype="float32", name="preprocess"
    )
    return normalise(image)


def _seed_cnn_trunk(x: keras.KerasTensor, spec: ModelSpec) -> keras.KerasTensor:
    """Seed 000's CNN; its "dense 64" is a 1x1 convolution so the output stays a map."""
    act = spec.activation
    x = layers.Conv2D(32, 3, padding="same", activation=act, name="block1")(x)
    x = layers.Conv2D(32, 3, padding="same", activation=act, name="block2")(x)
    x = layers.MaxPooling2D(2, padding="same", name="pool1")(x)
    x = layers.Conv2D(64, 3, padding="same", activation=act, name="block3")(x)
    x = layers.MaxPooling2D(2, padding="same", name="pool2")(x)
    return layers.Conv2D(64, 1, activation=act, name="block4")(x)


def _residual_block(
    x: keras.KerasTensor, filters: int, strides: int, name: str
) -> keras.KerasTensor:
    conv = {"padding": "same", "use_bias": False, "kernel_initializer": "he_normal"}
    y = layers.Conv2D(filters, 3, strides=strides, name=f"{name}_conv1", **conv)(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, name=f"{name}_conv2", **conv)(y)
    # Zero-initialised last gamma: each block starts as the identity (Goyal et al. 2017).
    y = layers.BatchNormalization(gamma_initializer="zeros", name=f"{name}_bn2")(y)
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, name=f"{name}_shortcut", **conv)(x)
        shortcut = layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=name)(y)


def _small_resnet_trunk(x: keras.KerasTensor, spec: ModelSpec) -> keras.KerasTensor:
    """Stride-2 stem, then 3 stages of 2 residual blocks (32/64/128 filters): stride 8."""
    x = layers.Conv2D(
        32, 3, strides=2, padding="same", use_bias=False, kernel_initializer="he_normal",
        name="stem_conv",
    )(x)  # fmt: skip
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    block = 0
    for stage, filters in enumerate((32, 64, 128)):
        for i in range(2):
            block += 1
            x = _residual_block(x, filters, 2 if stage > 0 and i == 0 else 1, f"block{block}")
    return x


_TRUNKS: dict[str, Callable[[keras.KerasTensor, ModelSpec], keras.KerasTensor]] = {
    "seed-cnn": _seed_cnn_trunk,
    "small-resnet": _small_resnet_trunk,
}
_TRUNK_STRIDE_STEPS = {"seed-cnn": 2, "small-resnet": 3}  # log2 of each trunk's total stride


def _head(features: keras.KerasTensor, spec: ModelSpec) -> keras.KerasTensor:
    """The standard ending: gap -> head_dropout -> logits -> probabilities (float32)."""
    x = layers.GlobalAveragePooling2D(name="gap")(features)
    x = layers.Dropout(spec.dropout, name="head_dropout")(x)
    regulariser = keras.regularizers.L1L2(spec.l1, spec.l2) if spec.l1 or spec.l2 else None
    x = layers.Dense(spec.num_classes, kernel_regularizer=regulariser, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name="probabilities")(x)


def _application(key: str, size: int) -> keras.Model:
    """The Keras Applications backbone `key`, random init, no top, named "backbone"."""
    common: dict[str, Any] = {
        "include_top": False, "weights": None, "input_shape": (size, size, 3),
        "name": BACKBONE_NAME,
    }  # fmt: skip
    apps = keras.applications
    if key.startswith("mobilenet_v2_"):
        return apps.MobileNetV2(alpha=float(key.rsplit("_", 1)[1]), **common)
    if key == "mobilenet_v3_small":
        return apps.MobileNetV3Small(include_preprocessing=False, **common)
    if key == "mobilenet_v3_large":
        return apps.MobileNetV3Large(include_preprocessing=False, **common)
    if key == "efficientnet_b0":
        return apps.EfficientNetB0(**common)
    if key == "inception_v3":
        return apps.InceptionV3(**common)
    raise LinnaeusError(f"No builder for backbone {key!r}.")


def _build_backbone(spec: ModelSpec, weights: Path | None) -> keras.Model:
    """The ImageNet backbone of `spec` with the official weight file loaded into it."""
    key = str(spec.backbone)
    info = backbone_info(key)
    path = Path(weights) if weights is not None else find_weights(key)
    if not path.is_file():
        raise WeightsNotFound(
            f"The weight file {path} for {info.display} does not exist.",
            file_name=info.file_name,
            searched=(path.parent,),
        )
    backbone = _application(key, spec.image_size)
    try:
        # The official files are Keras 2 HDF5 files with Keras 2 layer names; they load
        # by topological order into the standalone backbone (never by name).
        backbone.load_weights(str(path))
    except (ValueError, OSError, KeyError) as exc:
        raise LinnaeusError(f"{path} does not hold {info.display} weights: {exc}") from exc
    if key == "efficientnet_b0":
        _match_efficientnet_imagenet_scaling(backbone)
    return backbone


def _match_efficientnet_imagenet_scaling(backbone: keras.Model) -> None:
    """Give a weights=None EfficientNet the extra input scaling weights="imagenet" adds.

    Keras inserts Rescaling(1/sqrt(stddev)) after the Normalization layer only when
    built with weights="imagenet"; multiplying the loaded variance by stddev gives
    the same function.
    """
    norm = next(la for la in backbone.layers if isinstance(la, layers.Normalization))
    norm.adapt_variance.assign(norm.adapt_variance * np.asarray(_IMAGENET_STDDEV_RGB))
    norm.finalize_state()


def _model_name(spec: ModelSpec) -> str:
    if spec.kind == "transfer":
        return f"transfer_{spec.backbone}".replace(".", "_")
    return spec.kind.replace("-", "_")


# --- public API ------------------------------------------------------------------------


def build_classifier(
    spec: ModelSpec,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    backbone_weights: Path | None = None,
) -> keras.Model:
    """The classifier described by `spec`, taking uint8 pixels, ending in "probabilities".

    `mean`/`std` are featurewise statistics on the 0..255 scale (1 or `channels`
    values) for from-scratch models; transfer models always use their backbone's
    ImageNet scaling. Transfer loads `backbone_weights` (default: `find_weights`),
    raising WeightsNotFound if absent, and starts with its backbone frozen.
    """
    image = keras.Input(
        shape=(spec.image_size, spec.image_size, spec.channels), dtype="uint8", name=INPUT_NAME
    )
    x = _preprocess(image, spec, mean, std)
    if spec.kind == "transfer":
        backbone = _build_backbone(spec, backbone_weights)
        x = backbone(x, training=False)
    else:
        x = _TRUNKS[spec.kind](x, spec)
    model = keras.Model(image, _head(x, spec), name=_model_name(spec))
    if spec.kind == "transfer":
        set_backbone_trainable(model, 0.0)
    return model


def _find_backbone(model: keras.Model) -> keras.Model | None:
    try:
        layer = model.get_layer(BACKBONE_NAME)
    except ValueError:
        return None
    return layer if isinstance(layer, keras.Model) else None


def set_backbone_trainable(model: keras.Model, trainable_fraction: float) -> None:
    """Freeze the backbone (0.0) or unfreeze the top fraction of its weighted layers.

    BatchNormalization layers stay frozen, in inference mode, whatever the
    fraction. Recompile the model afterwards for the change to take effect.
    """
    if isinstance(trainable_fraction, bool) or not (
        isinstance(trainable_fraction, (int, float)) and 0.0 <= trainable_fraction <= 1.0
    ):
        raise LinnaeusError(
            f"The trainable fraction must be in [0, 1], not {trainable_fraction!r}."
        )
    backbone = _find_backbone(model)
    if backbone is None:
        raise LinnaeusError(f"Model {model.name!r} has no ImageNet backbone to freeze or unfreeze.")
    frozen_kinds = (layers.BatchNormalization, layers.Normalization)
    tunable = [la for la in backbone.layers if la.weights and not isinstance(la, frozen_kinds)]
    count = round(trainable_fraction * len(tunable))
    backbone.trainable = count > 0
    if count == 0:
        return
    unfrozen = {id(la) for la in tunable[len(tunable) - count :]}
    for layer in backbone.layers:
        if layer.weights:
            layer.trainable = id(layer) in unfrozen


def feature_layer_names(model: keras.Model) -> list[str]:
    """Names of the layers whose outputs are the model's conv feature maps, input to output.

    The last one feeds "gap" (the CAM layer). From-scratch models: "block1",
    "block2", ...; transfer models: layers inside the nested "backbone".
    """
    backbone = _find_backbone(model)
    if backbone is None:
        blocks = [la.name for la in model.layers if _BLOCK_NAME.fullmatch(la.name)]
        if not blocks:
            raise LinnaeusError(f"Model {model.name!r} has no Linnaeus feature blocks.")
        return sorted(blocks, key=lambda name: int(name[len("block") :]))
    # Saved models do not record their backbone key: recognise it by its layer names
    # (the longest matching list, as MobileNetV3 Large holds all of Small's names).
    present = {la.name for la in backbone.layers}
    matches = [i.feature_layers for i in BACKBONES.values() if set(i.feature_layers) <= present]
    if matches:
        return [*max(matches, key=len), backbone.layers[-1].name]
    raise LinnaeusError(f"Model {model.name!r} has a backbone Linnaeus does not know.")


def features_model(model: keras.Model) -> keras.Model:
    """Same input; outputs each feature map (feature_layer_names order), then probabilities."""
    names = feature_layer_names(model)
    image = model.inputs[0]
    backbone = _find_backbone(model)
    if backbone is None:
        maps = [model.get_layer(name).output for name in names]
        outputs = [*maps, model.get_layer("probabilities").output]
        return keras.Model(image, outputs, name=f"{model.name}_features")
    # The backbone's inner layers are not connected to the outer input: replay the
    # outer chain (image -> preprocess -> backbone -> head), swapping the backbone for
    # a multi-output view of it that shares its layers and weights.
    chain = [la for la in model.layers if not isinstance(la, layers.InputLayer)]
    if tuple(la.name for la in chain[-len(HEAD_LAYER_NAMES) :]) != HEAD_LAYER_NAMES:
        raise LinnaeusError(f"Model {model.name!r} does not end with the Linnaeus head.")
    taps = keras.Model(
        backbone.inputs, [backbone.get_layer(name).output for name in names], name="backbone_taps"
    )
    x = image
    maps = []
    for layer in chain:
        if layer is backbone:
            maps = list(taps(x, training=False))
            x = maps[-1]
        else:
            x = layer(x)
    return keras.Model(image, [*maps, x], name=f"{model.name}_features")


def embedding_model(model: keras.Model) -> keras.Model:
    """Same input; outputs the "gap" vector (the image's embedding)."""
    return keras.Model(
        model.inputs[0], model.get_layer("gap").output, name=f"{model.name}_embedding"
    )


def build_autoencoder(
    spec: ModelSpec,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> tuple[keras.Model, keras.Model]:
    """Seed 002's convolutional denoising autoencoder: (autoencoder, encoder).

    The encoder is the conv trunk of the from-scratch classifier of `spec.kind`,
    with the same layer names (see `copy_encoder_weights`); pass the same `mean`
    and `std` as to `build_classifier`. Input uint8; output the reconstruction
    in [0, 1], float32, same shape. The caller makes it denoising: feed noisy
    images, take the MSE against the clean image / 255.
    """
    if spec.kind not in FROM_SCRATCH_KINDS:
        raise LinnaeusError("Autoencoder pretraining is for from-scratch models, not transfer.")
    size, channels = spec.image_size, spec.channels
    image = keras.Input(shape=(size, size, channels), dtype="uint8", name=INPUT_NAME)
    encoded = _TRUNKS[spec.kind](_preprocess(image, spec, mean, std), spec)
    encoder = keras.Model(image, encoded, name=f"{_model_name(spec)}_encoder")

    y = encoded
    steps = _TRUNK_STRIDE_STEPS[spec.kind]
    act = spec.activation if spec.kind == "seed-cnn" else "relu"
    for i in range(1, steps + 1):
        y = layers.UpSampling2D(2, name=f"decoder_up{i}")(y)
        filters = max(32, int(encoded.shape[-1]) >> i)
        y = layers.Conv2D(filters, 3, padding="same", activation=act, name=f"decoder_conv{i}")(y)
    extra = int(y.shape[1]) - size
    if extra:
        y = layers.Cropping2D(((0, extra), (0, extra)), name="decoder_crop")(y)
    reconstruction = layers.Conv2D(
        channels, 3, padding="same", activation="sigmoid", dtype="float32", name="reconstruction"
    )(y)
    autoencoder = keras.Model(image, reconstruction, name=f"{_model_name(spec)}_autoencoder")
    return autoencoder, encoder


def copy_encoder_weights(encoder: keras.Model, classifier: keras.Model) -> int:
    """Copy the encoder's weights into the classifier's layers of the same name; how many.

    LinnaeusError if a layer of the same name holds weights of other shapes.
    """
    copied = 0
    for layer in encoder.layers:
        values = layer.get_weights()
        if not values:
            continue
        try:
            target = classifier.get_layer(layer.name)
        except ValueError:
            continue
        target_shapes = [w.shape for w in target.get_weights()]
        if target_shapes != [v.shape for v in values]:
            raise LinnaeusError(
                f"Cannot copy the pretrained layer {layer.name!r}: the classifier's layer has "
                "other shapes (different channels or architecture?)."
            )
        target.set_weights(values)
        copied += 1
    return copied
