"""Benchmark: the "accurate" recipe's candidates on shifted data, each measured.

Prints one line per candidate (and per way of deciding: plain, test-time flip,
averaged with the quick model) with the test accuracy at the model's own
decisions (temperature and, for two classes, the 95%-sensitivity threshold,
both fitted on validation as the product does), the recall of the set's
positive class where it has one, and the minutes. Asserts nothing.

One project per set: it is imported once, the quick model is trained first
(its features are cached, so the later runs reuse them), then each candidate
trains an ``accurate`` version in the same project:

    .venv/bin/python bench/bench_recipe.py --set malaria-patients --per-class 400 \\
        --size 96 --candidates baseline smooth mixup full
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.*, tests.*

from bench.bench_sets import SETS
from bench.bench_sets import BenchSet
from bench.bench_sets import lay_out
from linnaeus.engine.dataset.importer import ImportOptions
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.evaluation.decision import DecisionRule
from linnaeus.engine.evaluation.decision import choose_threshold
from linnaeus.engine.evaluation.decision import positive_class
from linnaeus.engine.evaluation.metrics import fit_temperature
from linnaeus.engine.evaluation.metrics import logits_from_probabilities
from linnaeus.engine.evaluation.metrics import softmax
from linnaeus.engine.evaluation.version import TARGET_SENSITIVITY
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.project.predictions import split_predictions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.engine.training import runs
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.train import train

# What each candidate changes from the product's recipe (``full``): the
# fine-tuned fraction of the backbone, runs' FINE_TUNE_* constants (smoothing,
# warmup, mixup), the fine-tuning's augmentation and its input size.
_TOP30 = {"fraction": 0.3, "warmup": 0.0}
CANDIDATES: dict[str, dict] = {
    "baseline": _TOP30,
    "smooth": _TOP30 | {"smoothing": 0.1},
    "warmup": _TOP30 | {"warmup": 1.0},
    "mixup": _TOP30 | {"mixup": 0.2},
    "full": {},
    "half": {"fraction": 0.6},
    "full-smooth-mixup": {"smoothing": 0.1, "mixup": 0.2},
    "full-light": {"augmentation": replace(PRESETS["gentle"], brightness_range=(0.75, 1.25))},
    "full-strong": {"augmentation": PRESETS["strong"]},
    "full-224": {"size": 224},
}
_PRODUCT = {"fraction": 1.0, "smoothing": 0.0, "warmup": 1.0, "mixup": 0.0,
            "augmentation": PRESETS["gentle"], "size": None}  # fmt: skip


@dataclass(frozen=True)
class Split:
    ids: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray


def splits(store: ProjectStore, version: ModelVersion) -> tuple[Split, Split]:
    val, test = (split_predictions(store, version, s) for s in ("val", "test"))
    return (Split(val.image_ids, val.labels, val.probabilities),
            Split(test.image_ids, test.labels, test.probabilities))  # fmt: skip


def decided(val: Split, test: Split, classes: list[str], positive: str | None) -> dict:
    """Test figures at decisions fitted on validation, the product's way."""
    temperature = fit_temperature(logits_from_probabilities(val.probabilities), val.labels)

    def scaled(p: np.ndarray) -> np.ndarray:
        return softmax(logits_from_probabilities(p), temperature)

    rule = DecisionRule(tuple(classes))
    if len(classes) == 2:
        find = positive_class(classes)
        threshold = choose_threshold(val.labels == find, scaled(val.probabilities)[:, find],
                                     TARGET_SENSITIVITY)  # fmt: skip
        rule = DecisionRule(tuple(classes), threshold, classes[find])
    picked = rule.decide(scaled(test.probabilities))
    figures = {"accuracy": float(np.mean(picked == test.labels)), "images": len(test.labels),
               "argmax": float(np.mean(test.probabilities.argmax(1) == test.labels))}  # fmt: skip
    if positive is not None:
        index = classes.index(positive)
        figures["recall"] = float(np.mean(picked[test.labels == index] == index))
        figures["auc"] = float(roc_auc_score(test.labels == index, test.probabilities[:, index]))
    return figures


def flipped(store: ProjectStore, version: ModelVersion, split: Split) -> Split:
    """``split``'s probabilities averaged with those of its left-right mirror images."""
    import keras

    from linnaeus.engine.training.data import collect_examples
    from linnaeus.engine.training.data import load_pixels

    config = TrainConfig.from_dict(version.config)
    examples = collect_examples(store, version.classes)
    loaded = load_pixels(store, examples, config.input_format)
    where = {int(i): n for n, i in enumerate(loaded.examples.image_ids)}
    model = keras.models.load_model(version.model_file)
    rows = loaded.rows[[where[int(i)] for i in split.ids]]
    mirrored = np.asarray(loaded.images[np.sort(rows)])[:, :, ::-1]
    order = np.argsort(np.argsort(rows))
    mirror_p = runs.predict_padded(model, np.ascontiguousarray(mirrored), 64)[order]
    return Split(split.ids, split.labels, (split.probabilities + mirror_p) / 2)


def averaged(a: Split, b: Split) -> Split:
    return Split(a.ids, a.labels, (a.probabilities + b.probabilities) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="malaria-patients", choices=list(SETS))
    parser.add_argument("--per-class", type=int, help="at most this many images per class folder")
    parser.add_argument("--classes", type=int, default=50, help="drawn classes (one-image)")
    parser.add_argument("--size", type=int, help="input size (default: the model's)")
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs (default: the model's)")
    parser.add_argument("--candidates", nargs="+", default=["baseline"], choices=list(CANDIDATES))
    args = parser.parse_args()
    bench: BenchSet = SETS[args.set]
    work = Path(tempfile.mkdtemp(prefix=f"linnaeus-recipe-{bench.name}-"))
    images = lay_out(bench, work, args.per_class, args.classes, seed=0)
    store = ProjectStore.create(work / "project", images)
    import_images(store, ImportOptions(group_regex=bench.group_regex))
    clock = time.perf_counter()
    quick = train(store, TrainConfig(model="quick", image_size=args.size)).version
    quick_s = time.perf_counter() - clock
    classes = quick.classes
    quick_val, quick_test = splits(store, quick)
    figures = decided(quick_val, quick_test, classes, bench.positive)
    report(bench, "quick", "plain", figures, quick_s)
    for name in args.candidates:
        recipe = _PRODUCT | CANDIDATES[name]
        runs.FINE_TUNE_SMOOTHING = recipe["smoothing"]
        runs.FINE_TUNE_WARMUP_EPOCHS = recipe["warmup"]
        runs.FINE_TUNE_MIXUP = recipe["mixup"]
        clock = time.perf_counter()
        config = TrainConfig(model="accurate", image_size=recipe["size"] or args.size,
                             epochs=args.epochs, fine_tune_fraction=recipe["fraction"],
                             augmentation=recipe["augmentation"])  # fmt: skip
        version = train(store, config).version
        seconds = time.perf_counter() - clock
        val, test = splits(store, version)
        flip_val, flip_test = flipped(store, version, val), flipped(store, version, test)
        ways = {
            "plain": (val, test),
            "flip": (flip_val, flip_test),
            "+quick": (averaged(val, quick_val), averaged(test, quick_test)),
            "flip+quick": (averaged(flip_val, quick_val), averaged(flip_test, quick_test)),
        }
        for way, (v, t) in ways.items():
            report(bench, name, way, decided(v, t, classes, bench.positive), seconds)
        epochs = len(version.curves.get("fine-tune_val_loss", []))
        product = version.metrics["test"]["accuracy"]
        print(f"  (product figure, plain: {product:.4f}; epochs run {epochs})", flush=True)
    store.close()


def report(bench: BenchSet, candidate: str, way: str, figures: dict, seconds: float) -> None:
    print(json.dumps({"set": bench.name, "candidate": candidate, "decide": way, **figures,
                      "minutes": round(seconds / 60, 2)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
