"""Surgery on exported ONNX graphs, and their int8 quantisation.

Kept apart from the converter: these work on ONNX protobufs only (no
TensorFlow), with onnx and onnxruntime.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from linnaeus.engine.errors import ExportError
from linnaeus.engine.library_logs import quiet
from linnaeus.engine.onnx.format import INPUT_NAME
from linnaeus.engine.onnx.format import PROBABILITIES
from linnaeus.engine.onnx.format import Int8Check
from linnaeus.engine.onnx.format import OnnxMetadata
from linnaeus.engine.sessions import run_output

INT8_OPERATORS = ("Conv", "MaxPool", "Add", "Clip", "Relu")
_BATCH = 16
_POOL_FIRST_ACTIVATIONS = ("Elu", "Selu", "Celu")


def pool_before_activation(graph: onnx.GraphProto) -> int:
    """Rewrite ``act -> (transposes cancelling out) -> MaxPool`` as ``MaxPool -> act`` for
    the activations in `_POOL_FIRST_ACTIVATIONS`; returns how many were rewritten.

    Exact: max pooling commutes with a non-decreasing function (ONNX pads are
    ignored by MaxPool). The original activation stays for its other uses (a
    feature map output), so only graphs cut down to "probabilities" gain.
    """
    producers = {out: node for node in graph.node for out in node.output}

    def through_transposes(name: str) -> str:
        chain: list[list[int]] = []
        current = name
        while current in producers and producers[current].op_type == "Transpose":
            node = producers[current]
            perm = [list(a.ints) for a in node.attribute if a.name == "perm"]
            if not perm:
                break
            chain.append(perm[0])
            current = node.input[0]
            composed = list(range(len(chain[0])))
            for perm in reversed(chain):
                composed = [composed[i] for i in perm]
            if composed == sorted(composed):
                return current
        return name

    rewritten: list[onnx.NodeProto] = []
    moved = 0
    for node in graph.node:
        source = through_transposes(node.input[0]) if node.op_type == "MaxPool" else ""
        activation = producers.get(source)
        if (
            activation is not None
            and len(node.output) == 1
            and activation.op_type in _POOL_FIRST_ACTIVATIONS
            and all(a.f >= 0 for a in activation.attribute)  # alpha, gamma >= 0: monotonic
        ):
            pooled = f"{node.output[0]}__before_{activation.op_type.lower()}"
            pool = helper.make_node(
                "MaxPool", [activation.input[0]], [pooled], name=f"{node.name}__first"
            )
            pool.attribute.extend(node.attribute)
            after = helper.make_node(
                activation.op_type, [pooled], [node.output[0]], name=f"{activation.name}__after"
            )
            after.attribute.extend(activation.attribute)
            rewritten += [pool, after]
            moved += 1
        else:
            rewritten.append(node)
    del graph.node[:]
    graph.node.extend(rewritten)
    return moved


def remove_unused(graph: onnx.GraphProto) -> None:
    """Drop nodes and initialisers no graph output depends on."""
    needed = {output.name for output in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initialisers = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initialisers)
    value_info = [v for v in graph.value_info if v.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(value_info)


def quantise(
    model: onnx.ModelProto, images: np.ndarray, workdir: Path, *, quant_format: str = "QOperator"
) -> onnx.ModelProto:
    """``model`` with its convolutions in int8, calibrated on ``images``.

    First onnxruntime's portable graph optimisations fold the batch
    normalisations and pads into the convolutions (else each becomes a float
    island between int8 ones); then QOperator format (QLinearConv: faster than
    QDQ at batch 1 on onnxruntime's CPU provider, see
    bench/bench_inference_model.py), unsigned activations, signed per-channel
    weights at 7 bits (``reduce_range``: no overflow on CPUs without VNNI).
    """
    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization import QuantFormat
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._starts = iter(range(0, len(images), _BATCH))

        def get_next(self) -> dict[str, np.ndarray] | None:
            start = next(self._starts, None)
            return None if start is None else {INPUT_NAME: images[start : start + _BATCH]}

    source = workdir / "quantise-source.onnx"
    prepared = workdir / "quantise-prepared.onnx"
    target = workdir / "quantise-int8.onnx"
    onnx.save(model, source)
    with quiet("root", logging.ERROR):  # the quantiser warns on the root logger
        try:
            quant_pre_process(source, prepared, skip_symbolic_shape=True)
            quantize_static(
                prepared,
                target,
                Reader(),
                quant_format=QuantFormat[quant_format],
                op_types_to_quantize=list(INT8_OPERATORS),
                per_channel=True,
                reduce_range=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
        except Exception as error:  # onnxruntime's quantiser raises anything
            raise ExportError(f"The model cannot be quantised to int8: {error}") from error
    quantised = onnx.load(str(target))
    onnx.checker.check_model(quantised)
    return quantised


# --- running and comparing ---------------------------------------------------------------


def probabilities_of(model: bytes, images: np.ndarray) -> np.ndarray:
    """The "probabilities" output of the serialised ``model`` for ``images``, on the CPU."""
    return run_output(model, PROBABILITIES, images, input_name=INPUT_NAME, batch_size=_BATCH)


def compare_int8(
    float_probabilities: np.ndarray,
    int8_model: bytes,
    images: np.ndarray,
    labels: np.ndarray | None,
    metadata: OnnxMetadata,
) -> Int8Check:
    """How the int8 model's answers on ``images`` differ from the float model's
    (``float_probabilities``), and each one's accuracy if ``labels`` are known."""
    int8_probabilities = probabilities_of(int8_model, images)
    rule = metadata.decision_rule()
    ours, theirs = rule.decide(int8_probabilities), rule.decide(float_probabilities)
    return Int8Check(
        images=len(images),
        agreement=float(np.mean(ours == theirs)),
        max_abs_difference=float(np.max(np.abs(int8_probabilities - float_probabilities))),
        accuracy_float=None if labels is None else float(np.mean(theirs == labels)),
        accuracy_int8=None if labels is None else float(np.mean(ours == labels)),
    )
