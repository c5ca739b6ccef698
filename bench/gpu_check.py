"""GPU check: does this machine train and classify on its GPU, and how fast? (minutes)

Prints figures; asserts nothing. On generated demo images (no data needed) in a
temporary folder:
1. whether TensorFlow sees a GPU (and was built with CUDA), and whether
   training runs with mixed precision (`engine.training.device`);
2. training images/s of the quick recipe (backbone features, then the last
   layer) and of the accurate recipe (fine-tuning, a few epochs), from the
   training's own progress reports, and each run's wall time;
3. onnxruntime's execution providers (CUDA or not) and predict images/s of the
   exported accurate model, against plain ``keras.Model.predict`` on the same
   prepared images in the same run.

    .venv/bin/python bench/gpu_check.py [--per-class 200] [--image-size 160]
        [--epochs 2]

On a machine without a GPU it runs all the same (on the CPU) and says so.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tensorflow_report() -> bool:
    """Print what TensorFlow sees; whether it has a GPU."""
    import tensorflow as tf

    from linnaeus.engine.training.device import configure_devices

    gpus = tf.config.list_physical_devices("GPU")
    print(f"TensorFlow {tf.__version__}, built with CUDA: {tf.test.is_built_with_cuda()}")
    print(f"GPUs TensorFlow sees: {len(gpus)} {[gpu.name for gpu in gpus]}")
    device = configure_devices()
    print(f"Training would run on: {device.description}")
    print(f"Mixed precision: {'on' if device.mixed_precision else 'off'}")
    return bool(gpus)


def make_project(work: Path, per_class: int) -> object:
    from linnaeus.engine.dataset.importer import import_images
    from linnaeus.engine.demo.images import make_demo_images
    from linnaeus.engine.project.store import ProjectStore

    make_demo_images(work / "images", per_class=per_class, wrong_fraction=0.0)
    store = ProjectStore.create(work / "project", work / "images")
    import_images(store)
    return store


def train_and_time(store: object, model: str, image_size: int, epochs: int) -> object:
    """Train one version; print its phases' images/s and its wall time."""
    from linnaeus.engine.progress import TrainingProgress
    from linnaeus.engine.training.config import TrainConfig
    from linnaeus.engine.training.train import train

    rates: dict[str, list[float]] = {}

    def on_progress(progress: object) -> None:
        if isinstance(progress, TrainingProgress) and progress.images_per_s:
            rates.setdefault(progress.phase, []).append(progress.images_per_s)

    config = TrainConfig(model=model, image_size=image_size, epochs=epochs)
    started = time.perf_counter()
    version = train(store, config, on_progress=on_progress).version
    seconds = time.perf_counter() - started
    phases = ", ".join(
        f"{phase} {statistics.median(values[len(values) // 2 :]):.1f} images/s"
        for phase, values in rates.items()
    )
    accuracy = version.metrics.get("val", {}).get("accuracy")
    print(
        f"  {model:8} {seconds:6.1f} s wall  ({phases or 'no rate reported'}); "
        f"val accuracy at its decisions {accuracy:.1%} on {version.device}"
    )
    return version


def predict_and_time(store: object, version: object, work: Path, repeats: int) -> None:
    """Export ``version``; print onnxruntime's provider and images/s, and Keras' on
    the same prepared images."""
    import keras
    import numpy as np
    import onnxruntime

    from linnaeus.engine.onnx.export import export_version
    from linnaeus.engine.onnx.inference import Classifier
    from linnaeus.engine.onnx.inference import find_images
    from linnaeus.engine.training.runs import predict_padded

    print(
        f"onnxruntime {onnxruntime.__version__}, providers: {onnxruntime.get_available_providers()}"
    )
    path = export_version(store, version, work / "model.onnx").path
    classifier = Classifier(path)
    folder = work / "images"
    count = len(find_images(folder))
    best = min(_seconds(lambda: list(classifier.classify_folder(folder))) for _ in range(repeats))
    print(f"  predict (decode + model, {classifier.provider}): {count / best:.1f} images/s")
    pixels = np.stack([classifier.prepare_file(folder / p) for p in find_images(folder)])
    best = min(_seconds(lambda: classifier.predict_pixels(pixels)) for _ in range(repeats))
    print(f"  model alone, onnxruntime: {count / best:.1f} images/s")
    model = keras.models.load_model(version.model_file)
    predict_padded(model, pixels[:32], 32)  # traced once before timing
    best = min(_seconds(lambda: predict_padded(model, pixels, 32)) for _ in range(repeats))
    print(f"  model alone, plain Keras predict (batch 32): {count / best:.1f} images/s")


def _seconds(work: object) -> float:
    started = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=200, help="demo images per class")
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=2, help="the accurate recipe's epochs")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    started = time.perf_counter()
    has_gpu = tensorflow_report()
    with tempfile.TemporaryDirectory(prefix="linnaeus-gpu-check-") as scratch:
        work = Path(scratch)
        store = make_project(work, args.per_class)
        print(f"Training on {store.image_count()} demo images at {args.image_size} px:")
        train_and_time(store, "quick", args.image_size, epochs=200)
        version = train_and_time(store, "accurate", args.image_size, epochs=args.epochs)
        predict_and_time(store, version, work, args.repeats)
        store.close()
    where = "on a GPU" if has_gpu else "WITHOUT a GPU (CPU only): not a GPU figure"
    print(f"GPU check done in {time.perf_counter() - started:.0f} s, {where}.")


if __name__ == "__main__":
    main()
