"""Benchmark: time to a first model on N images, ours against plain Keras.

Prints figures; asserts nothing. Both sides start a fresh Python process, use
the same images with the same train / validation / test split (Linnaeus'), the
same ImageNet backbone file (MobileNetV2 alpha 0.5, 160 px) and its frozen
features with a new last layer:
- Linnaeus: import the folder into a new project, then ``train`` with the
  default model (quick: backbone features through onnxruntime, cached by
  content, then a fitted last layer). Twice, each time into a new project: first
  with an empty app cache folder, so the backbone's conversion to ONNX is in the
  time (as on the first training on a computer), then with the conversion kept
  (any later project; on Linux, where XDG_CACHE_HOME places the cache folder);
- plain Keras: ``image_dataset_from_directory`` +
  ``keras.applications.MobileNetV2(...).predict`` for the features, then a
  Dense softmax layer ``fit`` on them with early stopping on validation loss.
Times run from the process start (imports included) to a model whose test
accuracy is printed; Linnaeus' test accuracy is at its model's decisions.

    .venv/bin/python bench/bench_first_model.py [--limit 5000]
        [--folders ../shared/data/malaria/train ../shared/data/wbc/train]
        [--sides linnaeus keras]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from linnaeus.engine.training.backbones import find_weights

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WEIGHTS = find_weights("mobilenet_v2_0.5")  # the weights that ship in resources/weights
FOLDERS = [SHARED / "data" / "malaria" / "train", SHARED / "data" / "wbc" / "train"]

OURS = """
import json, sys, time
from pathlib import Path
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.train import train
images, project, trees = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
started = time.perf_counter()
store = ProjectStore.create(project, images)
import_images(store)
marks = {"import": [0.0, time.perf_counter() - started]}
def on_progress(progress):
    phase = getattr(progress, "phase", progress.stage)
    now = time.perf_counter() - started
    marks.setdefault(phase, [now, now])[1] = now
version = train(store, TrainConfig(), on_progress=on_progress).version
marks["done"] = [time.perf_counter() - started] * 2
for image in store.images(status="ok"):   # the same split, for the Keras side
    if image.label and image.split:
        link = trees / image.split / image.label / image.path.replace("/", "__")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(images / image.path)
marks["end"] = [time.perf_counter() - started] * 2
m = version.metrics
print(json.dumps({"model": version.kind, "marks": marks, "test_images": m["test"]["images"],
                  "test_accuracy": m["test"]["accuracy"], "val_accuracy": m["val"]["accuracy"]}))
"""

KERAS = """
import json, os, sys, time
started = time.perf_counter()
import numpy as np
import keras
trees, weights, size = sys.argv[1], sys.argv[2], 160
keras.utils.set_random_seed(0)
def load(split):
    return keras.utils.image_dataset_from_directory(
        os.path.join(trees, split), image_size=(size, size), batch_size=32, shuffle=False,
        label_mode="categorical", verbose=False)
backbone = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=0.5,
                                          include_top=False, weights=None, pooling="avg")
backbone.load_weights(weights)
prepare = keras.applications.mobilenet_v2.preprocess_input
def features(split):
    data = load(split)
    x = backbone.predict(data.map(lambda images, labels: prepare(images)), verbose=0)
    return x, np.concatenate([labels for _, labels in data]), len(data.class_names)
(x_train, y_train, classes), (x_val, y_val, _) = features("train"), features("val")
embedded = time.perf_counter() - started
head = keras.Sequential([keras.Input((x_train.shape[1],)),
                         keras.layers.Dense(classes, activation="softmax")])
head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy",
             metrics=["accuracy"])
stop = keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)
history = head.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=200, batch_size=32,
                   callbacks=[stop], verbose=0)
trained = time.perf_counter() - started
x_test, y_test, _ = features("test")
accuracy = float(np.mean(head.predict(x_test, verbose=0).argmax(1) == y_test.argmax(1)))
print(json.dumps({"embedded_s": embedded, "trained_s": trained, "test_accuracy": accuracy,
                  "epochs": len(history.history["loss"])}))
"""


def mix(folders: list[Path], limit: int, target: Path) -> int:
    """A folder of links to ``limit`` images spread evenly over the classes of ``folders``."""
    classes = sorted((c for f in folders for c in f.iterdir() if c.is_dir()), key=lambda c: c.name)
    files = {c: sorted(p for p in c.iterdir() if p.is_file()) for c in classes}
    count = 0
    for rank in range(max(map(len, files.values()))):
        for class_dir, paths in files.items():
            if count < limit and rank < len(paths):
                link = target / class_dir.name / paths[rank].name
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(paths[rank].resolve())
                count += 1
    return count


def run(code: str, *args: str, env: dict[str, str]) -> tuple[dict, float]:
    """The job's JSON line and the seconds from its start to its end."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            env=env, check=False)  # fmt: skip
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1]), seconds


def report_ours(ours: dict, seconds: float) -> float:
    """Print Linnaeus' figures; return the seconds from its start to its first model."""
    marks = ours["marks"]
    seconds -= marks["end"][0] - marks["done"][0]  # the links for the Keras side are not ours
    phases = [p for p in ("decode", "embed", "head") if p in marks]
    spans = ", ".join(f"{p} {marks[p][1] - marks[p][0]:.0f} s" for p in phases)
    accuracy = f"test accuracy {ours['test_accuracy']:.1%}, validation {ours['val_accuracy']:.1%}"
    print(f"    Linnaeus ({ours['model']}): first model after {seconds:.1f} s "
          f"(import {marks['import'][1]:.0f} s; {spans}; the rest is Python and TensorFlow "
          f"starting, building the model, converting the backbone if not kept, saving), "
          f"{accuracy}")  # fmt: skip
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", nargs="+", type=Path, default=FOLDERS)
    parser.add_argument("--limit", type=int, default=5000, help="images in all")
    parser.add_argument("--sides", nargs="+", default=["linnaeus", "keras"],
                        choices=["linnaeus", "keras"])  # fmt: skip
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="linnaeus-bench-first-"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", XDG_CACHE_HOME=str(work / "app-cache"))
    try:
        images = mix(args.folders, args.limit, work / "images")
        load = os.getloadavg()[0]
        print(f"{images} images from {', '.join(str(f) for f in args.folders)}; "
              f"{os.cpu_count()} CPU cores, load average {load:.1f} at the start")  # fmt: skip
        ours, ours_s = run(OURS, str(work / "images"), str(work / "project"), str(work / "trees"),
                           env=env)  # fmt: skip
        print(f"  split: {ours['test_images']} test images")
        if "linnaeus" in args.sides:
            print("  first training on this computer:")
            ours_s = report_ours(ours, ours_s)
            again, again_s = run(OURS, str(work / "images"), str(work / "project-2"),
                                 str(work / "trees-2"), env=env)  # fmt: skip
            print("  a new project, the converted backbone kept:")
            report_ours(again, again_s)
        if "keras" in args.sides:
            theirs, _ = run(KERAS, str(work / "trees"), str(WEIGHTS), env=env)
            print(f"  plain Keras: first model after {theirs['trained_s']:.1f} s (features "
                  f"{theirs['embedded_s']:.0f} s, {theirs['epochs']} epochs of the Dense layer), "
                  f"test accuracy {theirs['test_accuracy']:.1%}")  # fmt: skip
            if "linnaeus" in args.sides:
                print(f"  ratio: Linnaeus is {theirs['trained_s'] / ours_s:.1f} x faster")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
