"""Benchmark: time to accuracy on every set in ../shared/data (and one-image-per-class
drawings), Linnaeus' one click against the peer recipe, in one table.

Prints figures; asserts nothing. For each set (`bench_sets`), both sides use the
same train / validation / test images (Linnaeus' split from import, or the set's
own test folder; validation is carved from the training images only, so no
test image is seen before the test) and the same ImageNet backbone file
(MobileNetV2 alpha 0.5, shipped in resources/weights):
- Linnaeus: import, then ``train`` with each ``--models`` choice in turn in the
  same project (``quick`` first, as one click does, then ``accurate``); the
  time of each row counts from the start of the import, so ``accurate`` is
  "quick, then accurate". Test figures at the model's own decisions
  (temperature and, for two classes, the threshold fitted on validation).
- peer: the TensorFlow transfer-learning tutorial
  (tensorflow.org/tutorials/images/transfer_learning): image_dataset_from_directory,
  RandomFlip + RandomRotation(0.2), frozen MobileNetV2 + GlobalAveragePooling +
  Dropout(0.2) + Dense, Adam(1e-4) for ``--peer-epochs``; then the layers from
  100 on unfrozen, RMSprop(1e-5) for as many epochs again. Figures at its own
  decisions (the most probable class), after each of the two phases, with the
  time (training only) to get there.

    .venv/bin/python bench/bench_accuracy.py [--sets malaria wbc ...] [--per-class 300]
        [--size 96] [--models quick accurate] [--peer-epochs 10] [--classes 50]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.*, tests.*

from bench.bench_sets import SETS
from bench.bench_sets import lay_out
from linnaeus.engine.training.backbones import find_weights

WEIGHTS = find_weights("mobilenet_v2_0.5")  # the weights that ship in resources/weights

OURS = """
import json, sys, time
from pathlib import Path
import numpy as np
from linnaeus.engine.dataset.importer import ImportOptions, import_images
from linnaeus.engine.evaluation.version import version_predictions
from linnaeus.engine.project.predictions import split_predictions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.train import train
images, project, trees = (Path(a) for a in sys.argv[1:4])
regex, positive, size = sys.argv[4:7]
models = sys.argv[7:]
started = time.perf_counter()
store = ProjectStore.create(project, images)
import_images(store, ImportOptions(group_regex=regex or None))
rows = []
for model in models:
    version = train(store, TrainConfig(model=model, image_size=int(size) or None)).version
    seconds = time.perf_counter() - started
    decided = version_predictions(store, version)
    test = split_predictions(store, version, "test")
    where = {int(i): n for n, i in enumerate(decided.image_ids)}
    picked = decided.predicted[[where[int(i)] for i in test.image_ids]]
    row = {"model": model, "seconds": seconds, "images": len(test.labels),
           "accuracy": float(np.mean(picked == test.labels)),
           "size": version.config["image_size"]}
    if positive:
        index = version.classes.index(positive)
        row["recall"] = float(np.mean(picked[test.labels == index] == index))
    rows.append(row)
for image in store.images(status="ok"):   # the same split, for the peer
    if image.label and image.split:
        link = trees / image.split / image.label / image.path.replace("/", "__")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(images / image.path)
print(json.dumps({"rows": rows, "classes": [c.name for c in store.classes()]}))
"""

PEER = """
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras, numpy as np
trees, weights, epochs, size, positive = sys.argv[1], sys.argv[2], int(sys.argv[3]), \\
    int(sys.argv[4]), sys.argv[5]
classes = json.loads(sys.argv[6])
keras.utils.set_random_seed(0)
load = lambda split, shuffle: keras.utils.image_dataset_from_directory(
    os.path.join(trees, split), image_size=(size, size), batch_size=32, shuffle=shuffle, seed=0,
    label_mode="categorical", class_names=classes, verbose=False)
has_val = os.path.isdir(os.path.join(trees, "val"))
train, test = load("train", True), load("test", False)
val = load("val", False) if has_val else None
augment = keras.Sequential([keras.layers.RandomFlip("horizontal"),
                            keras.layers.RandomRotation(0.2)])
base = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=0.5,
                                      include_top=False, weights=None)
base.load_weights(weights)
base.trainable = False
inputs = keras.Input((size, size, 3))
x = keras.applications.mobilenet_v2.preprocess_input(augment(inputs))
x = base(x, training=False)
x = keras.layers.Dropout(0.2)(keras.layers.GlobalAveragePooling2D()(x))
model = keras.Model(inputs, keras.layers.Dense(len(classes), activation="softmax")(x))
truth = np.concatenate([y.numpy().argmax(1) for _, y in test])
def measure(phase, seconds):
    picked = model.predict(test, verbose=0).argmax(1)
    row = {"phase": phase, "seconds": seconds, "accuracy": float(np.mean(picked == truth)),
           "images": len(truth)}
    if positive:
        index = classes.index(positive)
        row["recall"] = float(np.mean(picked[truth == index] == index))
    return row
started = time.perf_counter()
model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy",
              metrics=["accuracy"])
model.fit(train, validation_data=val, epochs=epochs, verbose=0)
rows = [measure("frozen", time.perf_counter() - started)]
clock = time.perf_counter()
base.trainable = True
for layer in base.layers[:100]:
    layer.trainable = False
model.compile(optimizer=keras.optimizers.RMSprop(1e-5), loss="categorical_crossentropy",
              metrics=["accuracy"])
model.fit(train, validation_data=val, epochs=2 * epochs, initial_epoch=epochs, verbose=0)
rows.append(measure("fine-tuned", rows[0]["seconds"] + time.perf_counter() - clock))
print(json.dumps({"rows": rows}))
"""


def run(code: str, *args: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(Path(__file__).parents[1]))
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            env=env, check=False)  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def row(name: str, side: str, figures: dict, size: int) -> str:
    recall = f"{figures['recall']:.1%}" if "recall" in figures else "-"
    return (f"| {name} | {side} | {size} | {figures['images']} | {figures['accuracy']:.1%} | "
            f"{recall} | {figures['seconds'] / 60:.1f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--per-class", type=int, help="at most this many images per class folder")
    parser.add_argument("--classes", type=int, default=50, help="drawn classes (one-image)")
    parser.add_argument("--size", type=int, default=0, help="input size (default: each model's)")
    parser.add_argument("--models", nargs="+", default=["quick", "accurate"])
    parser.add_argument("--peer-epochs", type=int, default=10, help="per phase (tutorial: 10)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores; MobileNetV2 alpha 0.5 both sides; same split; "
          f"at most {args.per_class or 'all'} images per class folder")  # fmt: skip
    print("| set | recipe | px | test images | accuracy at decisions | recall | minutes |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.sets:
        bench = SETS[name]
        work = Path(tempfile.mkdtemp(prefix=f"linnaeus-bench-{name}-"))
        try:
            images = lay_out(bench, work, args.per_class, args.classes, seed=0)
            ours = run(OURS, str(images), str(work / "project"), str(work / "trees"),
                       bench.group_regex or "", bench.positive or "", str(args.size),
                       *args.models)  # fmt: skip
            for figures in ours["rows"]:
                print(row(name, f"Linnaeus {figures['model']}", figures, figures["size"]))
            size = args.size or 160  # the tutorial's
            peer = run(PEER, str(work / "trees"), str(WEIGHTS), str(args.peer_epochs), str(size),
                       bench.positive or "", json.dumps(ours["classes"]))  # fmt: skip
            for figures in peer["rows"]:
                print(row(name, f"TF tutorial, {figures['phase']}", figures, size), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    for name in args.sets:
        print(f"- {name}: {SETS[name].note}")


if __name__ == "__main__":
    main()
