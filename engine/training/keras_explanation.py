"""Where a Keras model looked: class activation maps and feature maps.

The exported ONNX model computes the same maps in its graph (outputs "cam" and
"features_*"); this TensorFlow version serves the report and is the reference
the ONNX maps are checked against.

Only CAM, no Grad-CAM: every model Linnaeus builds (`engine.models`, each kind)
ends in global average pooling -> dropout -> one dense "logits" layer, where CAM
is exact (its map averages to the logit) and needs no gradients, so it can run
in the ONNX graph without TensorFlow. A model without that head cannot be
trained or exported by Linnaeus; it is refused here with a message rather than
explained by a second method no Linnaeus model would use.
"""

from __future__ import annotations

import keras
import numpy as np

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.training.models import HEAD_LAYER_NAMES
from linnaeus.engine.training.models import features_model


def class_activation_maps(model: keras.Model, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(CAM N x h x w x K, probabilities N x K) of prepared uint8 images.

    The map of class k is the last feature map weighted by the "logits" kernel
    column k, plus the class bias, so its spatial mean is the class logit
    (Zhou et al. 2016); the exported ONNX model computes the same. A model
    without the Linnaeus head raises LinnaeusError.
    """
    check_cam_head(model)
    outputs = features_model(model).predict(pixels, verbose=0)
    last, probabilities = np.asarray(outputs[-2]), np.asarray(outputs[-1])
    kernel, bias = model.get_layer("logits").get_weights()
    cams = np.einsum("nhwc,ck->nhwk", last.astype(np.float64), kernel) + bias
    return cams.astype(np.float32), probabilities


def check_cam_head(model: keras.Model) -> None:
    """LinnaeusError unless ``model`` ends in the head CAM needs: its layers
    "gap" -> "head_dropout" -> "logits" -> "probabilities", in that order, last."""
    names = [layer.name for layer in model.layers]
    if tuple(names[-len(HEAD_LAYER_NAMES) :]) != HEAD_LAYER_NAMES:
        raise LinnaeusError(
            f"Cannot show where the model {model.name!r} looked: class activation maps need a "
            f"model that ends in {' -> '.join(HEAD_LAYER_NAMES)}, as every model Linnaeus "
            "trains does. Train the model in Linnaeus to get heatmaps."
        )
