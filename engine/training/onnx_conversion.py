"""A TensorFlow function as an ONNX graph, through tf2onnx: the one conversion
behind the exported models (`engine.onnx.convert`) and the quick model's backbone
features (`engine.training.features`)."""

from __future__ import annotations

import logging
from typing import Any

import onnx
import tensorflow as tf

from linnaeus.engine import __version__
from linnaeus.engine.errors import ExportError
from linnaeus.engine.library_logs import quiet

OPSET = 17  # within tf2onnx's tested range (14-18); onnxruntime >= 1.14 runs it


def function_to_onnx(function: Any, name: str) -> onnx.ModelProto:
    """tf2onnx's conversion of ``function``, a tf.function of one input signature
    returning a dict: its input and its outputs keep their names, and every input
    and output gets a dynamic batch dimension "N". ExportError if tf2onnx fails."""
    import tf2onnx

    # tf2onnx.convert.from_function, except that only the image is a graph input: it
    # would also make inputs of tensors the function captured (Keras 3 keeps a
    # Normalization layer's mean and variance as such tensors); freezing turns those
    # into constants.
    concrete = function.get_concrete_function()
    inputs = [concrete.inputs[0].name]
    outputs = [tensor.name for tensor in concrete.outputs]
    renames = tf2onnx.convert.tensor_names_from_structed(concrete, inputs, outputs)
    with quiet("tf2onnx"), quiet("tensorflow", logging.ERROR), tf.device("/cpu:0"):
        try:
            frozen = tf2onnx.tf_loader.from_function(concrete, inputs, outputs)
            proto, _ = tf2onnx.convert.from_graph_def(
                frozen, name=name, input_names=inputs, output_names=outputs,
                opset=OPSET, tensors_to_rename=renames,
            )  # fmt: skip
        except Exception as error:  # tf2onnx raises anything for an op it cannot convert
            raise ExportError(f"tf2onnx cannot convert the model {name!r}: {error}") from error
    for value in (*proto.graph.input, *proto.graph.output):
        batch = value.type.tensor_type.shape.dim[0]
        batch.ClearField("dim_value")
        batch.dim_param = "N"
    proto.producer_name = "linnaeus"
    proto.producer_version = __version__
    return proto
