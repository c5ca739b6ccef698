"""Tiny ONNX models that follow Linnaeus' ONNX contract, built with onnx.helper (no TensorFlow).

The graph: uint8 "image" N x S x S x C -> /255 -> 2x2 average pool ("features_1",
N x S/2 x S/2 x C) -> per-pixel matmul with ``weights`` (C x K) plus ``bias`` ("cam",
N x S/2 x S/2 x K) -> mean over the map ("logits") -> softmax(logits / temperature)
("probabilities"). `reference_outputs` computes the same in numpy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto
from onnx import helper
from onnx import numpy_helper

from linnaeus.engine.onnx import format as onnx_format

OPSET = 17


def colour_weights(channels: int, classes: int, scale: float = 8.0) -> np.ndarray:
    """C x K weights: class k answers to channel k % C (red/green/blue detectors)."""
    weights = np.zeros((channels, classes), np.float32)
    for k in range(classes):
        weights[k % channels, k] = scale
    return weights


def make_metadata(
    classes: Sequence[str] = ("red", "green", "blue"), **overrides: Any
) -> onnx_format.OnnxMetadata:
    """Metadata of a model made by this factory, with any field overridden."""
    fields: dict[str, Any] = {
        "format_version": onnx_format.FORMAT_VERSION,
        "classes": list(classes),
        "input_format": {"size": 16, "channels": 3, "resize": "stretch", "binarize": False},
        "feature_outputs": [onnx_format.feature_output_name(1)],
        "feature_layers": ["block1"],
        "threshold": None,
        "positive_class": None,
        "temperature": 1.0,
        "model_version": "v1",
        "model_kind": "test-factory",
        "project_id": None,
        "trained_at": None,
        "metrics": {},
        "linnaeus_version": "0.1.0",
        "int8": False,
    }
    fields.update(overrides)
    return onnx_format.OnnxMetadata(**fields)


def make_model(
    path: Path,
    classes: Sequence[str] = ("red", "green", "blue"),
    *,
    size: int = 16,
    channels: int = 3,
    resize: str = "stretch",
    weights: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    temperature: float = 1.0,
    with_metadata: bool = True,
    failing_cam: bool = False,
    **metadata: Any,
) -> Path:
    """Write a contract-conformant model to ``path`` and return ``path``.

    With ``failing_cam``, computing "cam" fails at run time unless the batch size is
    a multiple of 7: a model that works only if "probabilities" never runs that branch.
    """
    k = len(classes)
    weights = colour_weights(channels, k) if weights is None else weights.astype(np.float32)
    bias = np.zeros(k, np.float32) if bias is None else bias.astype(np.float32)
    graph = _graph(size, channels, k, weights, bias, temperature)
    if failing_cam:
        _make_cam_fail(graph, size // 2, k)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    if with_metadata:
        input_format = {"size": size, "channels": channels, "resize": resize, "binarize": False}
        info = make_metadata(
            classes, input_format=input_format, temperature=temperature, **metadata
        )
        helper.set_model_props(model, {"linnaeus": info.to_json()})
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def reference_outputs(
    images: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray | None = None,
    temperature: float = 1.0,
) -> dict[str, np.ndarray]:
    """The factory model's outputs, computed with numpy."""
    x = images.astype(np.float64) / 255.0
    n, s, _, c = x.shape
    features = x.reshape(n, s // 2, 2, s // 2, 2, c).mean(axis=(2, 4))
    cam = features @ weights + (0.0 if bias is None else bias)
    logits = cam.mean(axis=(1, 2))
    scaled = logits / temperature
    exp = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return {
        "probabilities": exp / exp.sum(axis=1, keepdims=True),
        "logits": logits,
        "cam": cam,
        "features_1": features,
    }


def _graph(
    size: int, channels: int, k: int, weights: np.ndarray, bias: np.ndarray, temperature: float
) -> onnx.GraphProto:
    half = size // 2
    initialisers = [
        numpy_helper.from_array(np.array(1 / 255, np.float32), "inv255"),
        numpy_helper.from_array(weights, "weights"),
        numpy_helper.from_array(bias, "bias"),
        numpy_helper.from_array(np.array(1 / temperature, np.float32), "inv_temperature"),
    ]
    nodes = [
        helper.make_node("Cast", ["image"], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["as_float", "inv255"], ["scaled"]),
        helper.make_node("Transpose", ["scaled"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("AveragePool", ["nchw"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["pooled"], ["features_1"], perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["features_1", "weights"], ["cam_raw"]),
        helper.make_node("Add", ["cam_raw", "bias"], ["cam"]),
        helper.make_node("ReduceMean", ["cam"], ["logits"], axes=[1, 2], keepdims=0),
        helper.make_node("Mul", ["logits", "inv_temperature"], ["tempered"]),
        helper.make_node("Softmax", ["tempered"], ["probabilities"], axis=-1),
    ]
    image = helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", size, size, channels])
    outputs = [
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", k]),
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", k]),
        helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", half, half, k]),
        helper.make_tensor_value_info("features_1", TensorProto.FLOAT, ["N", half, half, channels]),
    ]
    return helper.make_graph(nodes, "linnaeus_test_model", [image], outputs, initialisers)


def _make_cam_fail(graph: onnx.GraphProto, half: int, k: int) -> None:
    """Route the "cam" output through a reshape to rows of 7 values (logits keep the
    map as it was)."""
    for node in graph.node:
        node.output[:] = ["cam_map" if name == "cam" else name for name in node.output]
        node.input[:] = ["cam_map" if name == "cam" else name for name in node.input]
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([-1, 7], np.int64), "rows_of_7"),
            numpy_helper.from_array(np.array([-1, half, half, k], np.int64), "cam_shape"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Reshape", ["cam_map", "rows_of_7"], ["cam_rows"]),
            helper.make_node("Reshape", ["cam_rows", "cam_shape"], ["cam"]),
        ]
    )


def metadata_json(path: Path) -> dict[str, Any]:
    """The "linnaeus" metadata of a model file, as a dict."""
    model = onnx.load(path)
    props = {p.key: p.value for p in model.metadata_props}
    return json.loads(props["linnaeus"])
