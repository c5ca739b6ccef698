"""Where a Keras model looked: class activation maps and feature maps.

The exported ONNX model computes the same maps in its graph (outputs "cam" and
"features_*"); this TensorFlow version serves the report and is the reference
the ONNX maps are checked against.
"""

from __future__ import annotations

import keras
import numpy as np

from linnaeus.engine.models import features_model


def class_activation_maps(model: keras.Model, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(CAM N x h x w x K, probabilities N x K) of prepared uint8 images.

    The map of class k is the last feature map weighted by the "logits" kernel
    column k, plus the class bias, so its spatial mean is the class logit
    (Zhou et al. 2016); the exported ONNX model computes the same.
    """
    outputs = features_model(model).predict(pixels, verbose=0)
    last, probabilities = np.asarray(outputs[-2]), np.asarray(outputs[-1])
    kernel, bias = model.get_layer("logits").get_weights()
    cams = np.einsum("nhwc,ck->nhwk", last.astype(np.float64), kernel) + bias
    return cams.astype(np.float32), probabilities
