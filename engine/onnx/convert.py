"""Converting a Keras classifier to an ONNX graph with tf2onnx.

The serving function computes every output of `engine.onnx.format`'s contract
from uint8 images; `convert` freezes and converts it
(`engine.training.onnx_conversion`), then tidies the graph (`engine.onnx.graph`).
Imports TensorFlow, Keras and tf2onnx: only the export imports this module.
"""

from __future__ import annotations

import logging
from typing import Any

import keras
import numpy as np
import onnx
import tensorflow as tf
from onnx import helper

from linnaeus.engine.errors import ExportError
from linnaeus.engine.onnx.format import CAM
from linnaeus.engine.onnx.format import INPUT_NAME
from linnaeus.engine.onnx.format import LOGITS
from linnaeus.engine.onnx.format import METADATA_KEY
from linnaeus.engine.onnx.format import PROBABILITIES
from linnaeus.engine.onnx.format import OnnxMetadata
from linnaeus.engine.onnx.format import output_names
from linnaeus.engine.onnx.graph import pool_before_activation
from linnaeus.engine.onnx.graph import remove_unused
from linnaeus.engine.training.models import features_model
from linnaeus.engine.training.onnx_conversion import function_to_onnx

log = logging.getLogger(__name__)

_BATCH = 16


def serving_function(model: keras.Model, temperature: float) -> Any:
    """A tf.function computing the contract's outputs from uint8 images."""
    taps = features_model(model)
    gap = model.get_layer("gap")
    dense = model.get_layer("logits")
    size, _, channels = model.inputs[0].shape[1:]
    spec = tf.TensorSpec([None, size, size, channels], tf.uint8, name=INPUT_NAME)

    @tf.function(input_signature=[spec], jit_compile=False)
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        *maps, _ = taps(image, training=False)
        maps = [tf.cast(m, tf.float32) for m in maps]
        last = maps[-1]  # the input of "gap"
        logits = tf.cast(dense(gap(last)), tf.float32)
        kernel = tf.cast(dense.kernel, tf.float32)
        bias = tf.cast(dense.bias, tf.float32)
        # CAM identity: the mean of cam over the map is gap(last) @ kernel + bias = logits.
        cam = tf.einsum("nhwc,ck->nhwk", last, kernel) + bias
        scaled = logits if temperature == 1.0 else logits / float(temperature)
        outputs = {PROBABILITIES: tf.nn.softmax(scaled, axis=-1), LOGITS: logits, CAM: cam}
        for name, feature_map in zip(output_names(len(maps))[3:], maps, strict=True):
            outputs[name] = feature_map
        return outputs

    return serve


def convert(
    model: keras.Model, temperature: float, feature_count: int, *, optimize: bool
) -> onnx.ModelProto:
    """tf2onnx's conversion of ``model``: the contract's outputs in order, a dynamic batch,
    pooling moved before monotonic activations (``optimize``), unused nodes removed."""
    proto = function_to_onnx(serving_function(model, temperature), model.name)
    graph = proto.graph
    by_name = {output.name: output for output in graph.output}
    expected = output_names(feature_count)
    if set(by_name) != set(expected):
        raise ExportError(f"tf2onnx produced the outputs {sorted(by_name)}, not {expected}.")
    ordered = [by_name[name] for name in expected]
    del graph.output[:]
    graph.output.extend(ordered)
    if optimize:
        moved = pool_before_activation(graph)
        log.debug("moved max pooling before %d activations", moved)
    remove_unused(graph)
    onnx.checker.check_model(proto)
    return proto


def set_metadata(model: onnx.ModelProto, metadata: OnnxMetadata) -> None:
    """Store ``metadata`` in ``model`` (replacing any earlier Linnaeus metadata)."""
    props = {p.key: p.value for p in model.metadata_props}
    props[METADATA_KEY] = metadata.to_json()
    del model.metadata_props[:]
    helper.set_model_props(model, props)
    model.doc_string = (
        f"Linnaeus {metadata.model_kind} model {metadata.model_version}: "
        f"{', '.join(metadata.classes)}"
    )


def keras_probabilities(model: keras.Model, images: np.ndarray, temperature: float) -> np.ndarray:
    """The Keras model's probabilities of ``images`` at ``temperature`` (float64)."""
    heads = keras.Model(
        model.inputs[0], [model.get_layer(LOGITS).output, model.get_layer(PROBABILITIES).output]
    )
    logits, probabilities = [], []
    for start in range(0, len(images), _BATCH):
        batch_logits, batch_probabilities = heads(images[start : start + _BATCH], training=False)
        logits.append(np.asarray(batch_logits, np.float64))
        probabilities.append(np.asarray(batch_probabilities, np.float64))
    if temperature == 1.0:
        return np.concatenate(probabilities)
    scaled = np.concatenate(logits) / temperature
    exp = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)
