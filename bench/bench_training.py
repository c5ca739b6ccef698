"""Benchmark: training throughput of the seed CNN, ours against plain Keras.

Prints figures; asserts nothing. Both runs train the same seed-cnn net (seed
000: conv 32-32-64, ELU, max-pooling, 64-wide dense, dropout) at 128 px with
the "gentle" augmentation, on the same folder, on this machine, one after the
other:
- plain Keras: ``keras.utils.image_dataset_from_directory`` + augmentation
  layers (RandomRotation, RandomTranslation, RandomZoom) + the net, ``fit``;
- Linnaeus: ``linnaeus.engine.training.train.train`` (decoded-image cache,
  OpenCV augmentation in a tf.data pipeline).
Epoch 1 includes decoding for both; later epochs decode again only in Keras.

    .venv/bin/python bench/bench_training.py [--folder ../shared/data/wbc/train]
        [--limit 1200] [--epochs 3]
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

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wbc" / "train"

KERAS_JOB = """
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras
folder, epochs, size = sys.argv[1], int(sys.argv[2]), 128
keras.utils.set_random_seed(0)
train = keras.utils.image_dataset_from_directory(
    folder, image_size=(size, size), batch_size=32, label_mode="categorical", seed=0,
    verbose=False)
classes = len(train.class_names)
layers = keras.layers
model = keras.Sequential([
    keras.Input((size, size, 3)),
    layers.RandomRotation(10 / 360, fill_mode="nearest"),
    layers.RandomTranslation(0.1, 0.1, fill_mode="nearest"),
    layers.RandomZoom(0.1, fill_mode="nearest"),
    layers.Rescaling(1 / 255),
    layers.Conv2D(32, 3, padding="same", activation="elu"),
    layers.Conv2D(32, 3, padding="same", activation="elu"),
    layers.MaxPooling2D(),
    layers.Conv2D(64, 3, padding="same", activation="elu"),
    layers.MaxPooling2D(),
    layers.Conv2D(64, 1, activation="elu"),
    layers.GlobalAveragePooling2D(),
    layers.Dropout(0.1),
    layers.Dense(classes, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy",
              metrics=["accuracy"], jit_compile=False)
times = []
class Clock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None):
        times.append(time.perf_counter() - self.start)
count = len(train.file_paths)
model.fit(train, epochs=epochs, callbacks=[Clock()], verbose=0)
print(json.dumps({"images": count, "epoch_seconds": times}))
"""

LINNAEUS_JOB = """
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
from pathlib import Path
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.dataset.importer import ImportOptions, import_images
from linnaeus.engine.dataset.splits import SplitFractions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.train import train
folder, epochs, project = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
store = ProjectStore.create(project, folder)
import_images(store, ImportOptions(fractions=SplitFractions(0.98, 0.01, 0.01)))
marks = {}
def on_progress(p):
    if getattr(p, "phase", "") == "train" and p.batch == p.batches:
        marks.setdefault(p.epoch, time.perf_counter())
started = time.perf_counter()
config = TrainConfig(model="seed-cnn", image_size=128, epochs=epochs, batch_size=32,
                     augmentation=PRESETS["gentle"], patience=99, dropout=0.1)
result = train(store, config, on_progress=on_progress)
ends = [marks[e] for e in sorted(marks)]
epoch_seconds = [ends[0] - started] + [b - a for a, b in zip(ends, ends[1:])]
images = len(store.images(split="train"))
print(json.dumps({"images": images, "epoch_seconds": epoch_seconds}))
"""


MODEL_ONLY_JOB = """
import json, os, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np
from linnaeus.engine.training.models import ModelSpec, build_classifier
model = build_classifier(ModelSpec("seed-cnn", 4, image_size=128), mean=[128] * 3, std=[50] * 3)
model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile=False)
x = np.random.default_rng(0).integers(0, 255, (320, 128, 128, 3), dtype=np.uint8)
y = np.eye(4, dtype=np.float32)[np.arange(320) % 4]
model.fit(x, y, batch_size=32, epochs=1, verbose=0)
started = time.perf_counter()
model.fit(x, y, batch_size=32, epochs=2, verbose=0)
print(json.dumps({"images_per_s": 640 / (time.perf_counter() - started)}))
"""


def subset(folder: Path, limit: int, work: Path) -> Path:
    """A folder of symlinks to the first ``limit`` images, spread over the classes."""
    target = work / "images"
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    per_class = max(1, limit // len(classes))
    for class_dir in classes:
        (target / class_dir.name).mkdir(parents=True)
        for path in sorted(class_dir.iterdir())[:per_class]:
            (target / class_dir.name / path.name).symlink_to(path.resolve())
    return target


def run(code: str, *args: str) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            env=env, check=False)  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def rates(job: dict) -> tuple[float, float]:
    seconds = job["epoch_seconds"]
    later = seconds[1:] or seconds
    return job["images"] / seconds[0], job["images"] * len(later) / sum(later)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--limit", type=int, default=1200, help="images used (0: all)")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="linnaeus-bench-train-"))
    try:
        folder = subset(args.folder, args.limit, work) if args.limit else args.folder
        keras_job = run(KERAS_JOB, str(folder), str(args.epochs))
        ours = run(LINNAEUS_JOB, str(folder), str(args.epochs), str(work / "project"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bound = run(MODEL_ONLY_JOB)["images_per_s"]
    k1, k2 = rates(keras_job)
    o1, o2 = rates(ours)
    print(f"folder {args.folder} ({keras_job['images']} images), seed-cnn at 128 px, "
          f"gentle augmentation, {args.epochs} epochs, {os.cpu_count()} CPU cores")  # fmt: skip
    print(f"plain Keras : epoch 1 {k1:7.1f} images/s   later epochs {k2:7.1f} images/s")
    print(f"Linnaeus    : epoch 1 {o1:7.1f} images/s   later epochs {o2:7.1f} images/s")
    print(f"ratio       : epoch 1 {o1 / k1:7.2f} x          later epochs {o2 / k2:7.2f} x")
    print(f"the net alone on in-memory tensors (no input pipeline): {bound:7.1f} images/s, "
          "the ceiling for any pipeline with this net on this machine")  # fmt: skip


if __name__ == "__main__":
    main()
