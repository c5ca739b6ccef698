"""Benchmark: accuracy against the number of labels when images are labelled in
"label next" order (engine.evaluation.label_next) against random order, and
margin sampling alone (uncertainty without diversity), on shared sets.

Labelling is simulated on the backbone features: a project of up to
``--per-class`` images per class is imported and the default (quick) model
trained once, which caches every image's MobileNetV2 features; then, from
``--start`` random labels per class, each round labels ``--batch`` more images
of the project's train + validation pool, chosen by each order, fits the quick
model's last layer (a logistic regression on the features, C = 1) on the labels
so far and measures accuracy at its decisions (the most probable class) on the
project's test split. ``label next`` ranks with the labels and predictions of
that round, as after a training in the app. Mean over ``--seeds`` runs.

    nice -n 5 .venv/bin/python bench/bench_label_next.py [--sets malaria potato]
        [--per-class 300] [--batch 10] [--budget 150] [--seeds 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ood import TRAIN
from bench_ood import link_subset

ORDERS = ("random", "margin only", "label next")


def project_features(name: str, per_class: int, work: Path) -> dict[str, np.ndarray]:
    """Features, labels and splits of a freshly trained project of ``name``."""
    from linnaeus.engine.dataset.importer import import_images
    from linnaeus.engine.evaluation.label_next import _feature_cache
    from linnaeus.engine.project.store import ProjectStore
    from linnaeus.engine.training.config import TrainConfig
    from linnaeus.engine.training.train import train

    images = work / f"{name}-images"
    link_subset(TRAIN[name], images, per_class)
    store = ProjectStore.create(work / f"{name}-project", images)
    import_images(store)
    train(store, TrainConfig())
    rows = [i for i in store.images(status="ok") if i.label and i.content_hash]
    hashes = [str(i.content_hash) for i in rows]
    cache = _feature_cache(store, hashes)
    assert cache is not None, "training cached no features"
    classes = sorted({str(i.label) for i in rows})
    result = {
        "features": cache.get(hashes),
        "labels": np.array([classes.index(str(i.label)) for i in rows]),
        "test": np.array([i.split == "test" for i in rows]),
    }
    store.close()
    return result


def fit_and_score(
    features: np.ndarray, labels: np.ndarray, chosen: np.ndarray, test: np.ndarray, classes: int
) -> tuple[float, np.ndarray | None]:
    """Test accuracy of a last layer fitted on ``chosen``, and its probabilities for all."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(labels[chosen])) < 2:
        return float(np.mean(labels[test] == labels[chosen][0])), None
    head = LogisticRegression(C=1.0, max_iter=2000)
    head.fit(features[chosen], labels[chosen])
    probabilities = np.zeros((len(features), classes))
    probabilities[:, head.classes_] = head.predict_proba(features)
    accuracy = float(np.mean(probabilities[test].argmax(1) == labels[test]))
    return accuracy, probabilities


def simulate(data: dict[str, np.ndarray], order: str, args: argparse.Namespace, seed: int
             ) -> list[float]:  # fmt: skip
    """Accuracy after each round of labelling in ``order``."""
    from linnaeus.engine.evaluation.label_next import margin_uncertainty
    from linnaeus.engine.evaluation.label_next import rank_for_labelling

    features, labels, test = data["features"], data["labels"], data["test"]
    classes = int(labels.max()) + 1
    pool = np.flatnonzero(~test)
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([
        rng.choice(pool[labels[pool] == k], args.start, replace=False) for k in range(classes)
    ])  # fmt: skip
    accuracies = []
    while True:
        accuracy, probabilities = fit_and_score(features, labels, chosen, test, classes)
        accuracies.append(accuracy)
        if len(chosen) >= args.budget:
            return accuracies
        left = np.setdiff1d(pool, chosen)
        if order == "random" or probabilities is None:
            picked = rng.choice(left, args.batch, replace=False)
        elif order == "margin only":
            uncertainty = margin_uncertainty(probabilities[left])
            picked = left[np.argsort(-uncertainty, kind="stable")[: args.batch]]
        else:
            uncertainty = margin_uncertainty(probabilities[left])
            ranked, _ = rank_for_labelling(features[left], uncertainty, features[chosen],
                                           limit=args.batch)  # fmt: skip
            picked = left[ranked[: args.batch]]
        chosen = np.concatenate([chosen, picked])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["malaria", "potato"], choices=list(TRAIN))
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--start", type=int, default=2, help="random labels per class first")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-label-next-") as tmp:
        for name in args.sets:
            started = time.perf_counter()
            data = project_features(name, args.per_class, Path(tmp))
            prepared = time.perf_counter() - started
            n_test, n_pool = int(data["test"].sum()), int((~data["test"]).sum())
            classes = int(data["labels"].max()) + 1
            print(f"\n{name}: {n_pool} images to label from, {n_test} test images, "
                  f"{classes} classes (features in {prepared:.0f} s)")  # fmt: skip
            curves = {}
            for order in ORDERS:
                started = time.perf_counter()
                runs = [simulate(data, order, args, seed) for seed in range(args.seeds)]
                curves[order] = np.mean(runs, axis=0), np.std(runs, axis=0)
                print(f"  {order}: {time.perf_counter() - started:.1f} s for {args.seeds} runs")
            first = args.start * classes
            counts = [first + args.batch * i for i in range(len(curves["random"][0]))]
            print(f"  {'labels':>6} " + " ".join(f"{o:>16}" for o in ORDERS))
            for i, count in enumerate(counts):
                cells = " ".join(
                    f"{curves[o][0][i]:>9.1%} ±{curves[o][1][i]:>5.1%}" for o in ORDERS
                )
                print(f"  {count:>6} {cells}")
            area = {o: float(np.mean(curves[o][0])) for o in ORDERS}
            print("  mean accuracy over the curve: "
                  + ", ".join(f"{o} {a:.1%}" for o, a in area.items()))  # fmt: skip
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
