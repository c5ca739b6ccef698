"""Benchmark: importing a large folder, and relabelling one image.

Prints figures; asserts nothing. Each figure is compared, in the same run,
with the plain Keras way of doing the same job:
- import: ``keras.utils.image_dataset_from_directory`` listing the folder and
  decoding every image once (what a notebook does before training; it keeps
  no per-file record, no hash, no error list, and stops at the first bad file);
- relabel: moving the file to another class folder (the only way to relabel
  in that layout, and it changes the user's folder).

    .venv/bin/python bench/bench_import.py [--count 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("round", "square", "cross")

IMPORT_JOB = """
import json, resource, sys, time
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.project.store import ProjectStore
started = time.perf_counter()
store = ProjectStore.create(sys.argv[1], sys.argv[2])
report = import_images(store)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "images": report.found - len(report.unreadable),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

KERAS_JOB = """
import json, os, resource, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import tensorflow as tf
started = time.perf_counter()
dataset = keras.utils.image_dataset_from_directory(
    sys.argv[1], image_size=(32, 32), batch_size=256, shuffle=False, verbose=False)
count = 0
for images, labels in dataset:
    count += int(images.shape[0])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "images": count,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_images(root: Path, count: int, seed: int = 0) -> None:
    """Draw ``count`` small PNGs (32x32, three shapes) in class folders."""
    rng = np.random.default_rng(seed)
    for name in CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        label = CLASSES[i % len(CLASSES)]
        image = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
        centre, size = (
            (int(rng.integers(10, 22)), int(rng.integers(10, 22))),
            int(rng.integers(4, 9)),
        )
        if label == "round":
            cv2.circle(image, centre, size, (220, 200, 90), -1)
        elif label == "square":
            cv2.rectangle(
                image,
                (centre[0] - size, centre[1] - size),
                (centre[0] + size, centre[1] + size),
                (90, 200, 220),
                -1,
            )
        else:
            cv2.line(
                image,
                (centre[0] - size, centre[1]),
                (centre[0] + size, centre[1]),
                (200, 90, 220),
                2,
            )
            cv2.line(
                image,
                (centre[0], centre[1] - size),
                (centre[0], centre[1] + size),
                (200, 90, 220),
                2,
            )
        cv2.imwrite(str(root / label / f"{label}_{i:06}.png"), image)


def run_job(code: str, *args: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1]}  # type: ignore[dict-item]
    return json.loads(result.stdout.strip().splitlines()[-1])


def relabel_latency(project: Path, repeats: int = 200) -> list[float]:
    from linnaeus.engine.project.store import ProjectStore

    with ProjectStore.open(project) as store:
        ids = store.image_ids()[:repeats]
        timings = []
        for n, image_id in enumerate(ids):
            started = time.perf_counter()
            store.set_labels([image_id], CLASSES[n % 2 + 1])
            timings.append(time.perf_counter() - started)
    return timings


def move_latency(root: Path, repeats: int = 200) -> list[float]:
    files = sorted((root / CLASSES[0]).iterdir())[:repeats]
    timings = []
    for path in files:
        started = time.perf_counter()
        os.replace(path, root / CLASSES[1] / path.name)
        timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--skip-keras", action="store_true")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="linnaeus-bench-"))
    images, project = work / "images", work / "project"
    try:
        if not images.exists():
            started = time.perf_counter()
            make_images(images, args.count)
            print(f"generated {args.count} 32x32 PNGs in {time.perf_counter() - started:.0f} s")
        shutil.rmtree(project, ignore_errors=True)
        ours = run_job(IMPORT_JOB, str(project), str(images))
        print(f"cores: {os.cpu_count()}")
        print(
            f"linnaeus import : {ours['seconds']:8.1f} s  {ours['images'] / ours['seconds']:8.0f} "
            f"images/s  peak RSS {ours['peak_rss_mb']:6.0f} MB  (hash + decode + index + split)"
        )
        if not args.skip_keras:
            keras = run_job(KERAS_JOB, str(images))
            if "error" in keras:
                print(f"keras baseline failed: {keras['error']}")
            else:
                print(
                    f"keras listing   : {keras['seconds']:8.1f} s  "
                    f"{keras['images'] / keras['seconds']:8.0f} images/s  peak RSS "
                    f"{keras['peak_rss_mb']:6.0f} MB  (image_dataset_from_directory, one pass)"
                )
        ours_ms = [t * 1000 for t in relabel_latency(project)]
        copy = work / "moved"
        shutil.copytree(images / CLASSES[0], copy / CLASSES[0])
        (copy / CLASSES[1]).mkdir()
        move_ms = [t * 1000 for t in move_latency(copy)]
        print(
            f"relabel one image: linnaeus median {statistics.median(ours_ms):.2f} ms "
            f"(p95 {np.percentile(ours_ms, 95):.2f} ms, with history + undo); "
            f"moving the file between class folders median {statistics.median(move_ms):.3f} ms"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
