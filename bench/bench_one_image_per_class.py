"""Benchmark: one image per class (seed 000's task), accuracy on unseen augmented views.

Prints figures; asserts nothing. Draws N classes of skeletal-formula-like
structures, ONE image each (`tests.training_factory.draw_structure`; the seed's
1,458 real drawings are not available here), imports them into a fresh project
(every image lands in the training split), trains with the default model and
settings (the classes are too small for a validation split, so training
validates on augmented views of the training images), exports the model to
ONNX, and classifies a separate folder of unseen augmented views (the seed's
gentle preset, drawn with another seed than training's and validation's) with
the exported model alone:

    .venv/bin/python bench/bench_one_image_per_class.py [--classes 200] [--views 5]
        [--model auto] [--keep FOLDER]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.*, tests.*

from bench.bench_sets import draw_structures
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.onnx.classify import classify
from linnaeus.engine.onnx.export import export_version
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.train import train


def draw_sets(root: Path, classes: int, views: int) -> tuple[Path, Path]:
    """One drawing per class in ``root/images/<class>/``; ``views`` unseen augmented
    views of each in ``root/unseen/<class>/``."""
    images, unseen = root / "images", root / "unseen"
    draw_structures(images, unseen, classes, views)
    return images, unseen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--views", type=int, default=5, help="unseen views per class")
    parser.add_argument("--model", default="auto")
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp folder)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="linnaeus-one-image-"))
    images, unseen = draw_sets(work, args.classes, args.views)
    started = time.perf_counter()
    store = ProjectStore.create(work / "project", images)
    import_images(store)
    result = train(store, TrainConfig(model=args.model))
    trained = time.perf_counter() - started
    version = result.version
    exported = export_version(store, version, work / "model.onnx")
    classified = classify(exported.path, unseen, work / "unseen.csv", keep_predictions=True)
    right = sum(p.label == p.path.split("/")[0] for p in classified.predictions)
    store.close()
    print(json.dumps({
        "classes": args.classes, "training_images": args.classes, "model": version.kind,
        "backbone": version.config.get("backbone"), "train_s": round(trained, 1),
        "val_on_augmented_views": version.metrics["val"],
        "unseen_views": classified.images, "unseen_right": right,
        "unseen_accuracy": round(right / max(classified.images, 1), 4),
        "work": str(work),
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
