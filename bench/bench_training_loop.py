"""Benchmark: Linnaeus' epoch loop (a custom step under the strategy,
engine/training/loop.py) against plain Keras ``model.fit`` on one device.

Prints figures; asserts nothing. The same compiled model (seed-cnn, or the
accurate recipe's transfer model with its top third trainable), the same
tf.data pipeline of random images, the same epochs; each side starts from the
same initial weights. Images/s of the epochs after the first (the first
includes tracing) and the last epoch's loss of each (they should be close: the
same batches, the same optimizer).

    .venv/bin/python bench/bench_training_loop.py [--model seed-cnn|transfer]
        [--images 256] [--size 96] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from linnaeus.engine.training.loop import fit
from linnaeus.engine.training.models import ModelSpec
from linnaeus.engine.training.models import build_classifier
from linnaeus.engine.training.models import set_backbone_trainable


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.ends: list[float] = []
        self.losses: list[float] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.ends = [time.perf_counter()]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.ends.append(time.perf_counter())
        self.losses.append(float((logs or {}).get("loss", float("nan"))))


def make_model(kind: str, size: int, classes: int) -> keras.Model:
    backbone = "mobilenet_v2_0.5" if kind == "transfer" else None
    model = build_classifier(ModelSpec(kind, classes, image_size=size, backbone=backbone))
    if kind == "transfer":
        set_backbone_trainable(model, 0.3)
    loss = keras.losses.CategoricalCrossentropy()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="seed-cnn", choices=["seed-cnn", "transfer"])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    classes = 4
    x = rng.integers(0, 256, (args.images, args.size, args.size, 3), np.uint8)
    labels = rng.integers(0, classes, args.images)
    y = np.eye(classes, dtype=np.float32)[labels]
    w = np.ones(args.images, np.float32)
    steps = -(-args.images // args.batch_size)
    data = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(args.batch_size)
    train = data.repeat()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (a busy machine is noisy)")
    print(f"{args.model}, {args.images} images of {args.size} px, {args.epochs} epochs:")
    keras.utils.set_random_seed(0)
    initial = make_model(args.model, args.size, classes).get_weights()
    for name in ("plain Keras model.fit", "Linnaeus loop.fit"):
        keras.utils.set_random_seed(0)
        model = make_model(args.model, args.size, classes)
        model.set_weights(initial)
        timer = EpochTimer()
        if name.startswith("plain"):
            model.fit(train, validation_data=data, epochs=args.epochs, steps_per_epoch=steps,
                      verbose=0, callbacks=[timer])  # fmt: skip
        else:
            fit(model, train, validation_data=data, epochs=args.epochs, initial_epoch=0,
                steps_per_epoch=steps, callbacks=[timer])  # fmt: skip
        later = timer.ends[-1] - timer.ends[1]
        rate = (args.epochs - 1) * args.images / later if later > 0 else float("nan")
        first = timer.ends[1] - timer.ends[0]
        print(f"  {name:24} {rate:7.1f} images/s after the first epoch ({first:.1f} s with "
              f"tracing); last epoch's loss {timer.losses[-1]:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
