"""Benchmark: ``--ray`` with 1 and 2 Ray workers on this machine against the
single-process path, for classifying a folder and for backbone features.

Prints figures; asserts nothing. The model is the quick model as users get it
(MobileNetV2 alpha 0.5 with its shipped ImageNet weights, 160 px, a random
4-class head: speed does not depend on the head), exported to ONNX once. On
the same folder of real JPEGs (default: 300 of ../shared/data/wbc/train):
- predict: `engine.onnx.classify.classify` with the plain `Classifier` (one
  process, one worker thread per core: what ``linnaeus predict`` does), then
  with `RayClassifier` on a local Ray runtime with 1 and 2 actors (what
  ``linnaeus predict --ray``) does; the CSVs are compared row for row;
- features: the converted backbone over the decoded images in the training's
  batches of 16, through `engine.training.features.onnx_run` (one process), then
  through `engine.cluster.features.features_on_ray` with 1 and 2 actors; the
  features are compared.
Ray's start-up (runtime and actors) is timed apart from the work. Then what the
per-worker rate implies for N machines. Best of ``--repeats`` runs each.

    .venv/bin/python bench/bench_scale_out.py [--folder ../shared/data/wbc/train]
        [--limit 300] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from bench_training import subset

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wbc" / "train"
BACKBONE = "mobilenet_v2_0.5"
SIZE = 160
CLASSES = ["EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"]


def export_quick_model(work: Path) -> tuple[Path, object]:
    """The quick model (random head) exported to ONNX, and its embedder."""
    import keras

    from linnaeus.engine import __version__
    from linnaeus.engine.images.preprocess import InputFormat
    from linnaeus.engine.onnx.export import export_model
    from linnaeus.engine.onnx.format import FORMAT_VERSION
    from linnaeus.engine.onnx.format import OnnxMetadata
    from linnaeus.engine.training.models import ModelSpec
    from linnaeus.engine.training.models import build_classifier
    from linnaeus.engine.training.models import embedding_model

    keras.utils.set_random_seed(0)
    model = build_classifier(
        ModelSpec("transfer", len(CLASSES), image_size=SIZE, backbone=BACKBONE)
    )
    metadata = OnnxMetadata(
        format_version=FORMAT_VERSION, classes=CLASSES,
        input_format=InputFormat(size=SIZE).to_dict(), feature_outputs=[], feature_layers=[],
        threshold=None, positive_class=None, temperature=1.0, model_version="bench",
        model_kind="quick", project_id=None, trained_at=None, metrics={},
        linnaeus_version=__version__, int8=False,
    )  # fmt: skip
    path = export_model(model, work / "quick.onnx", metadata).path
    return path, embedding_model(model)


def best_of(repeats: int, work: Callable[[], object]) -> tuple[float, object]:
    """The fastest of ``repeats`` runs of ``work``: (seconds, its result)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def bench_predict(model: Path, folder: Path, work: Path, repeats: int) -> dict[str, float]:
    from linnaeus.engine.cluster.predict import RayClassifier
    from linnaeus.engine.cluster.predict import start_pool
    from linnaeus.engine.cluster.runtime import ray_runtime
    from linnaeus.engine.onnx.classify import classify
    from linnaeus.engine.onnx.inference import Classifier

    classifier = Classifier(model)
    out = work / "here.csv"
    seconds, result = best_of(repeats, lambda: classify(classifier, folder, out))
    images = result.images
    rates = {"one process": images / seconds}
    print(f"predict, {images} images:")
    print(f"  one process ({classifier.threads} threads)      {rates['one process']:7.1f} images/s")
    started = time.perf_counter()
    with ray_runtime("local", local_cpus=2):
        print(f"  (local Ray runtime started in {time.perf_counter() - started:.1f} s)")
        for workers in (1, 2):
            started = time.perf_counter()
            with start_pool(model, workers) as pool:
                ray_classifier = RayClassifier(model, pool)
                ready = time.perf_counter() - started
                csv = work / f"ray{workers}.csv"
                seconds, _ = best_of(
                    repeats, lambda c=ray_classifier, p=csv: classify(c, folder, p)
                )
            same = csv.read_bytes() == out.read_bytes()
            rates[f"{workers} Ray"] = images / seconds
            print(
                f"  Ray, {workers} worker(s)                {images / seconds:7.1f} images/s  "
                f"(actors ready in {ready:.1f} s; CSV {'identical' if same else 'DIFFERS'})"
            )
    return rates


def bench_features(embedder: object, folder: Path, repeats: int) -> dict[str, float]:
    from linnaeus.engine.cluster.features import features_on_ray
    from linnaeus.engine.cluster.runtime import ray_runtime
    from linnaeus.engine.images.imageio import read_image
    from linnaeus.engine.images.preprocess import InputFormat
    from linnaeus.engine.images.preprocess import prepare_image
    from linnaeus.engine.onnx.inference import find_images
    from linnaeus.engine.sessions import in_order
    from linnaeus.engine.sessions import remote_runner
    from linnaeus.engine.training.features import ONNX_BATCH
    from linnaeus.engine.training.features import converted_backbone
    from linnaeus.engine.training.features import onnx_run

    fmt = InputFormat(size=SIZE)
    paths = find_images(folder)
    pixels = np.stack([prepare_image(read_image(folder / p).pixels, fmt) for p in paths])
    batches = [pixels[i : i + ONNX_BATCH] for i in range(0, len(pixels), ONNX_BATCH)]

    def compute_all(compute: Callable, workers: int) -> np.ndarray:
        return np.concatenate(list(in_order(compute, batches, workers=workers)))

    run = onnx_run(embedder, BACKBONE)
    seconds, here = best_of(repeats, lambda: compute_all(run.compute, run.workers))
    rates = {"one process": len(pixels) / seconds}
    print(f"features, {len(pixels)} images of {SIZE} px ({pixels[0].nbytes // 1024} KB each):")
    print(f"  one process ({run.workers} threads)      {rates['one process']:7.1f} images/s")
    model = converted_backbone(embedder, BACKBONE)
    with ray_runtime("local", local_cpus=2):
        for workers in (1, 2):
            with features_on_ray(workers):
                started = time.perf_counter()
                compute, _, threads = remote_runner.get()(model)  # type: ignore[misc]
                ready = time.perf_counter() - started
                seconds, there = best_of(repeats, lambda c=compute, t=threads: compute_all(c, t))
            difference = float(np.abs(there - here).max())
            rates[f"{workers} Ray"] = len(pixels) / seconds
            print(
                f"  Ray, {workers} worker(s)                {len(pixels) / seconds:7.1f} images/s  "
                f"(actors ready in {ready:.1f} s; largest difference {difference:.1e})"
            )
    return rates


def implications(what: str, rates: dict[str, float], bytes_per_image: int | None) -> None:
    one, two = rates["1 Ray"], rates["2 Ray"]
    efficiency = two / (2 * one)
    print(
        f"  {what}: one Ray worker does {one:.0f} images/s ({one / rates['one process']:.0%} of "
        f"the one-process rate on {os.cpu_count()} cores); two do {efficiency:.0%} of twice that."
    )
    lines = []
    for machines, cores in ((4, 16), (16, 16)):
        estimate = machines * cores * one * efficiency
        lines.append(f"{machines} machines x {cores} cores ~ {estimate:,.0f} images/s")
    limit = ""
    if bytes_per_image:  # the driver sends every image's pixels
        limit = f"; the driver sends {bytes_per_image // 1024} KB per image, so 1 Gbit/s caps it "
        limit += f"near {125e6 / bytes_per_image:,.0f} images/s"
    print(f"    if that per-worker rate held: {'; '.join(lines)}{limit}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} CPUs, load average {load:.1f} at the start (a shared machine is noisy)"
    )
    with tempfile.TemporaryDirectory(prefix="linnaeus-scale-out-") as scratch:
        work = Path(scratch)
        folder = subset(args.folder, args.limit, work)
        for path in folder.rglob("*"):  # every side reads the files from the page cache
            if path.is_file():
                path.read_bytes()
        model, embedder = export_quick_model(work)
        predict = bench_predict(model, folder, work, args.repeats)
        features = bench_features(embedder, folder, args.repeats)
    print(f"What it implies (load average {os.getloadavg()[0]:.1f} at the end):")
    implications("predict", predict, None)
    implications("features", features, SIZE * SIZE * 3)
    print(
        "  predict sends only paths: each node reads the images from the shared folder, so "
        "the folder's storage, not the driver, bounds it."
    )


if __name__ == "__main__":
    main()
