"""How fast an exported model classifies, against TensorFlow, on this machine.

Builds a seed CNN (random weights: they do not change the speed), saves it as
a model version's Keras file, exports it with `engine.onnx_export`, and prints
images per second at batch 1, 8 and 64 for:

- TensorFlow: ``tf.function(jit_compile=False)`` over the Keras model, fixed
  input signature (the plain TensorFlow way);
- onnxruntime on tf2onnx's graph as converted, full graph (every output);
- onnxruntime float and int8 (QOperator, as exported; and QDQ for comparison)
  on the copy cut down to "probabilities" that inference classifies with;
- the same float and int8 models as `linnaeus predict` runs them: the batch
  split into one call per core, side by side, each on one onnxruntime thread;

plus each one's ratio to TensorFlow, and the graph facts behind the figures
(opset, Transpose nodes before and after onnxruntime's optimisation). The
contenders run in interleaved rounds and the median round is reported, so
another program busy on the machine affects them alike.

    .venv/bin/python bench/bench_inference_model.py [--size 128] [--classes 4]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import onnx
import onnx.utils
import onnxruntime
import tensorflow as tf

from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.onnx import export as onnx_export
from linnaeus.engine.onnx import graph as onnx_graph
from linnaeus.engine.onnx.format import FORMAT_VERSION
from linnaeus.engine.onnx.format import INPUT_NAME
from linnaeus.engine.onnx.format import PROBABILITIES
from linnaeus.engine.onnx.format import OnnxMetadata
from linnaeus.engine.sessions import physical_cores
from linnaeus.engine.sessions import session_options
from linnaeus.engine.training.models import ModelSpec
from linnaeus.engine.training.models import build_classifier

Run = Callable[[np.ndarray], object]


def metadata(size: int, classes: int, *, int8: bool) -> OnnxMetadata:
    """A version-like description of the benchmark model."""
    return OnnxMetadata(
        format_version=FORMAT_VERSION, classes=[f"class{i}" for i in range(classes)],
        input_format=InputFormat(size).to_dict(), feature_outputs=[], feature_layers=[],
        threshold=None, positive_class=None, temperature=1.0, model_version="v1",
        model_kind="seed-cnn", project_id=None, trained_at=None, metrics={},
        linnaeus_version="bench", int8=int8,
    )  # fmt: skip


def probabilities_only(path: Path) -> bytes:
    """The model cut down to "probabilities", as inference classifies with it."""
    model = onnx.utils.Extractor(onnx.load(path)).extract_model([INPUT_NAME], [PROBABILITIES])
    return model.SerializeToString()


def ort_runner(model: bytes | str, threads: int) -> Run:
    session = onnxruntime.InferenceSession(
        model, sess_options=session_options(threads), providers=["CPUExecutionProvider"]
    )
    return lambda images: session.run(None, {INPUT_NAME: images})


def ort_side_by_side(model: bytes, threads: int) -> Run:
    """As `linnaeus predict` runs: the batch split over ``threads`` calls side by side,
    each on one onnxruntime thread."""
    session = onnxruntime.InferenceSession(
        model, sess_options=session_options(1), providers=["CPUExecutionProvider"]
    )
    pool = ThreadPoolExecutor(threads)

    def run(images: np.ndarray) -> object:
        parts = np.array_split(images, min(threads, len(images)))
        return list(pool.map(lambda part: session.run(None, {INPUT_NAME: part}), parts))

    return run


def graph_facts(path: Path, label: str, threads: int) -> str:
    """Opset and node counts of a model file and of onnxruntime's optimised graph."""
    model = onnx.load(path)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    before = collections.Counter(n.op_type for n in model.graph.node)
    with tempfile.TemporaryDirectory() as work:
        options = session_options(threads)
        options.optimized_model_filepath = str(Path(work) / "optimised.onnx")
        options.log_severity_level = 3  # the NCHWc layout warning is expected here
        onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        after = collections.Counter(
            n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node
        )
    keep = ("Transpose", "ReorderInput", "ReorderOutput", "Elu", "Conv", "QLinearConv", "MaxPool")
    summary = ", ".join(f"{k} {after[k]}" for k in keep if after[k])
    return (
        f"{label}: opset {opset}, {sum(before.values())} nodes, Transpose {before['Transpose']}; "
        f"after onnxruntime ORT_ENABLE_ALL: {summary}"
    )


def measure(
    runs: dict[str, Run], images: np.ndarray, rounds: int, seconds: float
) -> dict[str, float]:
    """Median images/s of each runner over interleaved rounds."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run(images)  # warm up (first-call graph building, memory arenas)
    for _ in range(rounds):
        for name, run in runs.items():
            count, started = 0, time.perf_counter()
            while True:
                run(images)
                count += 1
                elapsed = time.perf_counter() - started
                if elapsed >= seconds / rounds:
                    break
            rates[name].append(count * len(images) / elapsed)
    return {name: statistics.median(values) for name, values in rates.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="default: physical cores")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0, help="per contender and batch size")
    args = parser.parse_args(argv)
    threads = args.threads or physical_cores()
    size, classes = args.size, args.classes

    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, onnxruntime "
          f"{onnxruntime.__version__}; {threads} threads ({physical_cores()} physical cores, "
          f"{os.cpu_count()} logical CPUs)")  # fmt: skip
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, size, size, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory(prefix="linnaeus-bench-") as work:
        folder = Path(work)
        keras_file = folder / "model.keras"
        build_classifier(ModelSpec(kind="seed-cnn", num_classes=classes, image_size=size)).save(
            keras_file
        )
        model = keras.models.load_model(keras_file, compile=False)

        started = time.perf_counter()
        float_report = onnx_export.export_model(
            model, folder / "float.onnx", metadata(size, classes, int8=False),
            images=images, keras_file=keras_file,
        )  # fmt: skip
        print(f"float export: {time.perf_counter() - started:.1f} s, "
              f"max |difference| {float_report.max_abs_difference:.1e}")  # fmt: skip
        onnx_export.export_model(
            model, folder / "converted.onnx", metadata(size, classes, int8=False),
            images=images[:8], keras_file=keras_file, optimize=False,
        )  # fmt: skip
        started = time.perf_counter()
        onnx_export.export_model(
            model, folder / "int8.onnx", metadata(size, classes, int8=True),
            images=images, keras_file=keras_file,
        )  # fmt: skip
        print(f"int8 export (QOperator): {time.perf_counter() - started:.1f} s")
        qdq = onnx_graph.quantise(
            onnx.load(folder / "float.onnx"), images, folder, quant_format="QDQ"
        )
        onnx.save(qdq, folder / "int8_qdq.onnx")

        for path, label in (
            (folder / "converted.onnx", "tf2onnx graph as converted (all outputs)"),
            (folder / "float.onnx", "exported float (all outputs)"),
        ):
            print(graph_facts(path, label, threads))
        for name in ("float.onnx", "int8.onnx"):
            cut = folder / f"probabilities_{name}"
            cut.write_bytes(probabilities_only(folder / name))
            print(graph_facts(cut, f"{name} cut to probabilities", threads))

        serve = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)],
            jit_compile=False,
        )
        runs: dict[str, Run] = {
            "TensorFlow tf.function": lambda x: serve(x).numpy(),
            "ORT float, as converted, all outputs": ort_runner(
                str(folder / "converted.onnx"), threads
            ),
            "ORT float, exported, all outputs": ort_runner(str(folder / "float.onnx"), threads),
            "ORT float, as converted (classify)": ort_runner(
                probabilities_only(folder / "converted.onnx"), threads
            ),
            "ORT float (classify)": ort_runner(probabilities_only(folder / "float.onnx"), threads),
            "ORT int8 QOperator (classify)": ort_runner(
                probabilities_only(folder / "int8.onnx"), threads
            ),
            "ORT int8 QDQ (classify)": ort_runner(
                probabilities_only(folder / "int8_qdq.onnx"), threads
            ),
            f"ORT float, {threads} calls x 1 thread": ort_side_by_side(
                probabilities_only(folder / "float.onnx"), threads
            ),
            f"ORT int8, {threads} calls x 1 thread": ort_side_by_side(
                probabilities_only(folder / "int8.onnx"), threads
            ),
        }
        for batch in (1, 8, 64):
            rates = measure(runs, images[:batch], args.rounds, args.seconds)
            reference = rates["TensorFlow tf.function"]
            print(f"\nbatch {batch} ({size} px seed-cnn, {classes} classes): images/s, ratio to TF")
            for name, rate in rates.items():
                print(f"  {name:40s} {rate:8.1f}   {rate / reference:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
