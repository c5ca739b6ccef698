"""Benchmark: classifying a folder with ``linnaeus predict`` (ONNX) against plain Keras.

Prints figures; asserts nothing. Every side classifies the same folder of real
JPEGs with the same network (seed-cnn at 128 px, random weights: speed does not
depend on them), each in a fresh process, on this machine, in turn:
- Linnaeus float: ``linnaeus predict MODEL.onnx FOLDER`` (onnxruntime, no
  TensorFlow), with its default batch size unless ``--batch-size`` is given;
- Linnaeus int8: the same with the int8 export (``linnaeus export --int8``),
  calibrated on 100 of the folder's images. Its accuracy change is not
  measured here (random weights); ``linnaeus export --int8`` reports it;
- plain Keras: ``keras.utils.image_dataset_from_directory`` + ``model.predict``
  on the saved Keras model, as the seed notebooks did, at the data set's
  documented default batch size (32) unless ``--keras-batch-size`` is given.
"End to end" is images / seconds from process start to the last prediction
(imports and model loading included); "steady" leaves start-up out; "CPU" is
the CPU time the whole process used per image (less sensitive than wall time to
other work on the machine). "Cold start" is the seconds from process start to
the prediction of a single image. Ratios are medians of the ratios of runs made
back to back. Then where the time goes: decoding + preparing vs the model alone.

    .venv/bin/python bench/bench_predict.py [--folder ../shared/data/wbc/train]
        [--limit 1000] [--batch-size N] [--keras-batch-size 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_training import subset

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wbc" / "train"
SIZE = 128

MODEL_JOB = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
from pathlib import Path
import dataclasses
import keras
import numpy as np
from linnaeus.engine import __version__
from linnaeus.engine.onnx.inference import find_images
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.training.models import ModelSpec, build_classifier
from linnaeus.engine.onnx.export import export_model
from linnaeus.engine.onnx.format import FORMAT_VERSION, OnnxMetadata
from linnaeus.engine.images.preprocess import InputFormat, prepare_image
work, size, folder = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
classes = ["EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"]
keras.utils.set_random_seed(0)
model = build_classifier(ModelSpec("seed-cnn", len(classes), image_size=size))
model.save(work / "model.keras")
metadata = OnnxMetadata(
    format_version=FORMAT_VERSION, classes=classes,
    input_format=InputFormat(size=size).to_dict(), feature_outputs=[], feature_layers=[],
    threshold=None, positive_class=None, temperature=1.0, model_version="bench",
    model_kind="seed-cnn", project_id=None, trained_at=None, metrics={},
    linnaeus_version=__version__, int8=False)
report = export_model(model, work / "model.onnx", metadata, keras_file=work / "model.keras")
paths = find_images(folder)[:: max(1, len(find_images(folder)) // 100)][:100]
images = np.stack([prepare_image(read_image(folder / p).pixels, InputFormat(size)) for p in paths])
export_model(model, work / "model-int8.onnx", dataclasses.replace(metadata, int8=True),
             images=images, keras_file=work / "model.keras")
print(json.dumps({"parity": report.max_abs_difference}))
"""


LINNAEUS_JOB = """
import argparse, json, sys, time
from linnaeus.engine.cli import main as cli
parser = cli.build_parser()
commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
if "predict" in commands.choices:
    status = cli.main(["predict", *sys.argv[1:], "--json"])
else:  # until engine/cli/main.py registers the command
    from linnaeus.engine.cli import predict as cli_predict
    parser = argparse.ArgumentParser(prog="linnaeus")
    cli_predict.add_commands(parser.add_subparsers(), None)
    args = parser.parse_args(["predict", *sys.argv[1:], "--json"])
    status = args.run(args)
print(json.dumps({"done": time.time(), "status": status}))
"""

KERAS_JOB = """
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras
import numpy as np
model_path, folder, batch_size, single = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
model = keras.models.load_model(model_path)
size = model.inputs[0].shape[1]
if single != "-":  # cold start: one image, as a notebook predicts one file
    image = keras.utils.img_to_array(keras.utils.load_img(single, target_size=(size, size)))
    model.predict(image[np.newaxis], verbose=0)
    print(json.dumps({"done": time.time()}))
    sys.exit(0)
started = time.time()
data = keras.utils.image_dataset_from_directory(
    folder, labels=None, image_size=(size, size), batch_size=batch_size, shuffle=False,
    verbose=False)
probabilities = model.predict(data, verbose=0)
done = time.time()
print(json.dumps({"done": done, "steady": done - started, "images": len(data.file_paths)}))
"""

KERAS_BREAKDOWN_JOB = """
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras
import numpy as np
model_path, folder, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = keras.models.load_model(model_path)
size = model.inputs[0].shape[1]
data = keras.utils.image_dataset_from_directory(
    folder, labels=None, image_size=(size, size), batch_size=batch_size, shuffle=False,
    verbose=False)
t = time.perf_counter()
pixels = np.concatenate([batch.numpy() for batch in data]).astype(np.uint8)
decode = time.perf_counter() - t
model.predict(pixels[:batch_size], verbose=0)
t = time.perf_counter()
model.predict(pixels, batch_size=batch_size, verbose=0)
print(json.dumps({"images": len(pixels), "decode": decode, "model": time.perf_counter() - t}))
"""

BREAKDOWN_JOB = """
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import numpy as np
from linnaeus.engine.onnx.inference import Classifier, find_images
model, folder, batch_size = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
classifier = Classifier(model)
paths = [folder / p for p in find_images(folder)]
t = time.perf_counter()
prepared = [classifier.prepare_file(p) for p in paths]
one_thread = time.perf_counter() - t
with ThreadPoolExecutor(os.cpu_count()) as pool:
    t = time.perf_counter()
    list(pool.map(classifier.prepare_file, paths))
    pooled = time.perf_counter() - t
pixels = np.stack([p for p in prepared if isinstance(p, np.ndarray)])
classifier.predict_pixels(pixels[:batch_size])
t = time.perf_counter()
for start in range(0, len(pixels), batch_size):
    classifier.predict_pixels(pixels[start : start + batch_size])
model_only = time.perf_counter() - t
t = time.perf_counter()
count = sum(1 for _ in classifier.classify_folder(folder))
pipelined = time.perf_counter() - t
print(json.dumps({"images": count, "decode_1_thread": one_thread, "decode_pool": pooled,
                  "model": model_only, "pipelined": pipelined, "provider": classifier.provider,
                  "workers": classifier.threads}))
"""


def run(code: str, *args: str) -> tuple[list[str], float, float]:
    """Run ``code`` in a fresh Python: its stdout lines, start time and CPU seconds."""
    env = dict(os.environ, PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="2")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"benchmark job failed:\n{result.stderr[-3000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return result.stdout.strip().splitlines(), started, cpu


@dataclass
class Run:
    """One classification of the folder by one side."""

    images: int
    wall: float  # process start to the last prediction
    steady: float  # the classification alone
    cpu: float  # CPU seconds of the whole process
    cold: float = 0.0  # process start to the prediction of a single image


def ours(model: Path, folder: Path, one: Path, work: Path, batch_size: int | None) -> Run:
    out = ["--out", str(work / "predictions.csv")]
    out += [] if batch_size is None else ["--batch-size", str(batch_size)]
    lines, started, cpu = run(LINNAEUS_JOB, str(model), str(folder), *out)
    summary = json.loads("\n".join(lines[:-1]))
    result = Run(
        summary["images"], json.loads(lines[-1])["done"] - started, summary["seconds"], cpu
    )
    lines, started, _ = run(LINNAEUS_JOB, str(model), str(one), *out)
    result.cold = json.loads(lines[-1])["done"] - started
    return result


def keras_way(model: Path, folder: Path, first: Path, batch_size: int) -> Run:
    lines, started, cpu = run(KERAS_JOB, str(model), str(folder), str(batch_size), "-")
    job = json.loads(lines[-1])
    result = Run(job["images"], job["done"] - started, job["steady"], cpu)
    lines, started, _ = run(KERAS_JOB, str(model), str(folder), "1", str(first))
    result.cold = json.loads(lines[-1])["done"] - started
    return result


def export_models(work: Path, folder: Path) -> float:
    """Save the Keras model and its float and int8 ONNX exports (engine/onnx/export.py)
    in ``work``; return the largest probability difference of float ONNX from Keras."""
    lines, _, _ = run(MODEL_JOB, str(work), str(SIZE), str(folder))
    return json.loads(lines[-1])["parity"]


SIDES = ("linnaeus float", "linnaeus int8", "plain Keras")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--limit", type=int, default=1000, help="images used (0: all)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: predict's own")
    parser.add_argument("--keras-batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side (median)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="linnaeus-bench-predict-"))
    try:
        folder = subset(args.folder, args.limit, work) if args.limit else args.folder
        first = next(p for p in sorted(folder.rglob("*")) if p.is_file())
        one = work / "one"
        one.mkdir()
        (one / first.name).symlink_to(first.resolve())
        load = os.getloadavg()[0]
        parity = export_models(work, folder)
        model_keras = work / "model.keras"
        rounds = []
        for _ in range(args.repeats):  # back to back, so background load hits all alike
            rounds.append(
                (
                    ours(work / "model.onnx", folder, one, work, args.batch_size),
                    ours(work / "model-int8.onnx", folder, one, work, args.batch_size),
                    keras_way(model_keras, folder, first, args.keras_batch_size),
                )
            )
        breakdown_args = (str(folder), str(args.batch_size or 64))
        mine = {}
        for name in ("model.onnx", "model-int8.onnx"):
            lines, _, _ = run(BREAKDOWN_JOB, str(work / name), *breakdown_args)
            mine[name] = json.loads(lines[-1])
        lines, _, _ = run(KERAS_BREAKDOWN_JOB, str(model_keras), str(folder), "32")
        theirs = json.loads(lines[-1])
        load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, rounds, mine, theirs, parity, (load, load_after))


def report(
    args: argparse.Namespace,
    rounds: list[tuple[Run, Run, Run]],
    mine: dict,
    theirs: dict,
    parity: float,
    load: tuple[float, float],
) -> None:
    images = rounds[0][0].images
    print(
        f"{args.folder}: {images} JPEGs, seed-cnn at {SIZE} px, linnaeus batch "
        f"{args.batch_size or 'default'}, Keras batch {args.keras_batch_size}, "
        f"{os.cpu_count()} CPU cores, load average {load[0]:.1f} at start and {load[1]:.1f} at "
        f"the end; median of {args.repeats} runs; ONNX within {parity:.0e} of Keras; "
        f"provider {mine['model.onnx']['provider']}"
    )
    columns = {
        "end to end img/s": lambda r: images / r.wall,
        "steady img/s": lambda r: images / r.steady,
        "CPU ms/img": lambda r: 1000 * r.cpu / images,
        "cold start s": lambda r: r.cold,
    }
    print(f"{'':16}" + "".join(f"{name:>19}" for name in columns))
    for side, name in enumerate(SIDES):
        cells = [statistics.median(f(row[side]) for row in rounds) for f in columns.values()]
        print(f"{name:16}" + "".join(f"{cell:19.2f}" for cell in cells))
    for side, name in enumerate(SIDES[:2]):
        ratios = [statistics.median(f(r[side]) / f(r[2]) for r in rounds) for f in columns.values()]
        ratios[2:] = [1 / r for r in ratios[2:]]  # less CPU and time is better
        print(f"{name + ' is':16}" + "".join(f"{r:17.2f} x" for r in ratios))
    for name, f in columns.items():
        values = [tuple(round(f(run), 2) for run in row) for row in rounds]
        print(f"  every run, {name} ({', '.join(SIDES)}): {values}")
    for model, label in (("model.onnx", "float"), ("model-int8.onnx", "int8")):
        job = mine[model]
        per_image = {k: 1000 * v / job["images"] for k, v in job.items() if k in BREAKDOWN_KEYS}
        print(f"\nwhere the time goes, ms per image (linnaeus {label}, {job['workers']} threads):")
        print(f"  decode + prepare, 1 thread  {per_image['decode_1_thread']:7.2f}")
        print(f"  decode + prepare, pool      {per_image['decode_pool']:7.2f}")
        print(f"  model alone                 {per_image['model']:7.2f}")
        print(f"  classify_folder (overlap)   {per_image['pipelined']:7.2f}")
    print("plain Keras, ms per image:")
    print(f"  decode (tf.data)            {1000 * theirs['decode'] / theirs['images']:7.2f}")
    print(f"  model.predict alone         {1000 * theirs['model'] / theirs['images']:7.2f}")


BREAKDOWN_KEYS = ("decode_1_thread", "decode_pool", "model", "pipelined")


if __name__ == "__main__":
    main()
