"""Benchmark: time to accuracy on real data, ours against plain Keras.

Prints figures; asserts nothing. For each data set, both sides use the same
train / validation / test images (Linnaeus' split, or the set's own test
folder) and the same ImageNet backbone file (MobileNetV2 alpha 0.5):
- Linnaeus: import + ``train`` with the default model (quick: cached backbone
  embeddings and a fitted last layer);
- plain Keras: the transfer-learning tutorial way, ``image_dataset_from_directory``
  + frozen MobileNetV2 + GlobalAveragePooling + Dense, ``fit`` with early
  stopping; the test accuracy is measured after every epoch and the time to the
  best one is reported.

    .venv/bin/python bench/bench_accuracy.py [--sets malaria potato] [--epochs 15]
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

from linnaeus.engine.training.backbones import find_weights

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WEIGHTS = find_weights("mobilenet_v2_0.5")  # the weights that ship in resources/weights

OURS = """
import json, sys, time
from pathlib import Path

from linnaeus.engine.training.backbones import find_weights
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.train import train
from linnaeus.engine.project.store import from_db_path
images, project, trees = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
started = time.perf_counter()
store = ProjectStore.create(project, images)
import_images(store)
imported = time.perf_counter() - started
result = train(store, TrainConfig())
seconds = time.perf_counter() - started
fix = store.images(split="train")[0]  # the user fixes one label, then retrains
store.set_labels([fix.id], [c.name for c in store.classes() if c.name != fix.label][0])
clock = time.perf_counter()
train(store, TrainConfig())
retrain = time.perf_counter() - clock
store.undo()
for image in store.images(status="ok"):   # the same split, for the Keras side
    if image.label and image.split:
        link = trees / image.split / image.label / image.path.replace("/", "__")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(images / image.path)
m = result.version.metrics
print(json.dumps({"model": result.version.kind, "seconds": seconds, "import_s": imported,
                  "test_accuracy": m["test"]["accuracy"], "val_accuracy": m["val"]["accuracy"],
                  "test_images": m["test"]["images"], "retrain_s": retrain}))
"""

KERAS = """
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras
trees, weights, epochs, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), 160
keras.utils.set_random_seed(0)
started = time.perf_counter()
load = lambda split, shuffle: keras.utils.image_dataset_from_directory(
    os.path.join(trees, split), image_size=(size, size), batch_size=32, shuffle=shuffle, seed=0,
    label_mode="categorical", verbose=False)
train, val, test = load("train", True), load("val", False), load("test", False)
backbone = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=0.5,
                                          include_top=False, weights=None)
backbone.load_weights(weights)
backbone.trainable = False
inputs = keras.Input((size, size, 3))
x = keras.applications.mobilenet_v2.preprocess_input(inputs)
x = backbone(x, training=False)
x = keras.layers.GlobalAveragePooling2D()(x)
x = keras.layers.Dropout(0.2)(x)
outputs = keras.layers.Dense(len(train.class_names), activation="softmax")(x)
model = keras.Model(inputs, outputs)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy",
              metrics=["accuracy"])
best = {"test_accuracy": 0.0, "seconds": 0.0, "epoch": 0}
class TestEachEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        clock = time.perf_counter()
        accuracy = self.model.evaluate(test, verbose=0)[1]
        pause[0] += time.perf_counter() - clock   # testing is not training time
        if accuracy > best["test_accuracy"]:
            best.update(test_accuracy=accuracy, epoch=epoch + 1,
                        seconds=time.perf_counter() - started - pause[0])
pause = [0.0]
stop = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
model.fit(train, validation_data=val, epochs=epochs, callbacks=[TestEachEpoch(), stop], verbose=0)
best["total_s"] = time.perf_counter() - started - pause[0]
print(json.dumps(best))
"""

SETS = {"malaria": SHARED / "data" / "malaria", "potato": SHARED / "data" / "potato"}


def run(code: str, *args: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            env=env, check=False)  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--epochs", type=int, default=15, help="Keras' epoch limit")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores; backbone MobileNetV2 alpha 0.5 at 160 px, same split")
    for name in args.sets:
        work = Path(tempfile.mkdtemp(prefix=f"linnaeus-bench-{name}-"))
        try:
            ours = run(OURS, str(SETS[name]), str(work / "project"), str(work / "trees"))
            keras_side = run(KERAS, str(work / "trees"), str(WEIGHTS), str(args.epochs))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"{name} ({ours['test_images']} test images)")
        minutes = ours["seconds"] / 60
        print(f"  Linnaeus ({ours['model']}): test accuracy {ours['test_accuracy']:.1%} after "
              f"{minutes:.1f} min (import {ours['import_s']:.0f} s included)")  # fmt: skip
        print(f"  plain Keras            : best test accuracy {keras_side['test_accuracy']:.1%} "
              f"after {keras_side['seconds'] / 60:.1f} min (epoch {keras_side['epoch']}; "
              f"{keras_side['total_s'] / 60:.1f} min until early stopping)")  # fmt: skip
        speedup = keras_side["seconds"] / ours["seconds"]
        print(f"  speed-up to best accuracy: {speedup:.1f} x")
        print(f"  Linnaeus retraining after one label fix: {ours['retrain_s']:.0f} s "
              "(the plain Keras script starts over)")  # fmt: skip


if __name__ == "__main__":
    main()
