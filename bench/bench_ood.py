"""Benchmark: how well ``linnaeus predict`` tells unfamiliar images (another domain)
from images like the training ones: AUROC of its ood_score against the usual
baseline, max-softmax confidence (Hendrycks & Gimpel 2017: 1 - the top
probability), on the same predictions of the same exported model.

For each training set: a project of up to ``--per-class`` images per class of
it, the default model trained (quick: ImageNet MobileNetV2 features and a new
last layer), exported with ``export_version`` (the k-NN bank and the cut ride
in the .onnx), then ``classify`` (the one path predict, the GUI and the demo
take) on up to ``--images`` held-out images of the same set (in-domain) and of
each other shared set (out of domain). Prints per pair: AUROC ours and
baseline, and at the model's own cut (chosen on its validation split) the share
of in-domain images flagged unfamiliar and of other-domain images flagged.
wbc's in-domain images are its test set's originals, while it trains (and
validates) on augmented copies: a harder in-domain set than its validation.

    nice -n 5 .venv/bin/python bench/bench_ood.py [--train malaria wbc]
        [--per-class 150] [--images 150]
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
from sklearn.metrics import roc_auc_score

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# Training folders (class sub-folders) and held-out folders of each shared set.
TRAIN = {
    "malaria": SHARED / "malaria" / "train",
    "wbc": SHARED / "wbc" / "train",
    "potato": SHARED / "potato",
    "brain_mri": SHARED / "brain_mri",
}
HELD_OUT = {
    "malaria": SHARED / "malaria" / "test",
    "wbc": SHARED / "wbc" / "test",
    "potato": SHARED / "potato",
    "brain_mri": SHARED / "brain_mri",
}


def link_subset(source: Path, target: Path, per_class: int, *, skip: int = 0) -> int:
    """Links to ``per_class`` files of each class folder of ``source`` (after ``skip``),
    spread along each folder's sorted list. Returns how many."""
    count = 0
    for class_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        files = sorted(p for p in class_dir.iterdir() if p.is_file())[skip:]
        step = max(1, len(files) // max(per_class, 1))
        for path in files[::step][:per_class]:
            link = target / class_dir.name / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
            count += 1
    return count


def train_and_export(name: str, per_class: int, work: Path) -> tuple[Path, set[str], float]:
    """Train the default model on ``name`` and export it; the .onnx, the names of the
    files it was trained on (kept out of the in-domain test) and seconds."""
    from linnaeus.engine.dataset.importer import import_images
    from linnaeus.engine.onnx.export import export_version
    from linnaeus.engine.project.store import ProjectStore
    from linnaeus.engine.training.config import TrainConfig
    from linnaeus.engine.training.train import train

    started = time.perf_counter()
    images = work / f"{name}-images"
    link_subset(TRAIN[name], images, per_class)
    store = ProjectStore.create(work / f"{name}-project", images)
    import_images(store)
    version = train(store, TrainConfig()).version
    report = export_version(store, version, work / f"{name}.onnx")
    used = {p.name for p in images.rglob("*") if p.is_file() or p.is_symlink()}
    store.close()
    return report.path, used, time.perf_counter() - started


def scores(model: Path, folder: Path, work: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ood_score, 1 - max probability, unfamiliar) of every readable image in ``folder``."""
    from linnaeus.engine.onnx.classify import classify

    result = classify(model, folder, work / f"{folder.name}.csv", keep_predictions=True)
    kept = [p for p in result.predictions if p.error is None]
    ood = np.array([p.ood_score for p in kept], np.float64)
    msp = np.array([1.0 - (p.confidence or 0.0) for p in kept], np.float64)
    flagged = np.array([bool(p.unfamiliar) for p in kept])
    return ood, msp, flagged


def held_out_folder(name: str, images: int, used: set[str], work: Path, tag: str) -> Path:
    """Links to up to ``images`` held-out files of ``name`` (none it was trained on)."""
    source = HELD_OUT[name]
    target = work / f"{tag}-{name}"
    classes = sorted(p for p in source.iterdir() if p.is_dir())
    per_class = max(1, images // len(classes))
    count = 0
    for class_dir in classes:
        files = [p for p in sorted(class_dir.iterdir()) if p.is_file() and p.name not in used]
        step = max(1, len(files) // per_class)
        for path in files[::step][:per_class]:
            link = target / class_dir.name / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
            count += 1
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", nargs="+", default=["malaria", "wbc"], choices=list(TRAIN))
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--images", type=int, default=150)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ood-") as tmp:
        work = Path(tmp)
        for name in args.train:
            model, used, seconds = train_and_export(name, args.per_class, work)
            from linnaeus.engine.onnx.format import read_metadata

            cut = read_metadata(model).unfamiliar or {}
            print(
                f"\n{name}: trained and exported in {seconds:.0f} s; cut {cut.get('cut', 0):.4f} "
                f"= {cut.get('cut_quantile', 0):.0%} quantile + {cut.get('tail_allowance')} x "
                f"its distance from the median ({cut.get('median_score') or 0:.4f}) of "
                f"{cut.get('cut_images')} {cut.get('chosen_on')} images; bank "
                f"{cut.get('bank_images')} training images"
            )
            inside = held_out_folder(name, args.images, used, work, f"in-{name}")
            ood_in, msp_in, flag_in = scores(model, inside, work)
            print(f"  in-domain ood_score median {np.median(ood_in):.3f}, "
                  f"95th percentile {np.quantile(ood_in, 0.95):.3f}")  # fmt: skip
            for other in (o for o in TRAIN if o != name):
                outside = held_out_folder(other, args.images, set(), work, f"out-{name}")
                ood_out, msp_out, flag_out = scores(model, outside, work)
                print(f"  {other}: ood_score lowest {ood_out.min():.3f}, "
                      f"median {np.median(ood_out):.3f}")  # fmt: skip
                truth = np.r_[np.zeros(len(ood_in)), np.ones(len(ood_out))]
                ours = roc_auc_score(truth, np.r_[ood_in, ood_out])
                baseline = roc_auc_score(truth, np.r_[msp_in, msp_out])
                rows.append((name, other, len(ood_in), len(ood_out), ours, baseline,
                             flag_in.mean(), flag_out.mean()))  # fmt: skip
    print("\nOOD AUROC: in-domain = held-out images of the training set; out = another set")
    header = (f"{'trained on':<10} {'other':<10} {'n in':>5} {'n out':>6} {'AUROC ours':>11} "
              f"{'AUROC max-softmax':>18} {'flagged in':>11} {'flagged out':>12}")  # fmt: skip
    print(header)
    for name, other, n_in, n_out, ours, baseline, f_in, f_out in rows:
        print(f"{name:<10} {other:<10} {n_in:>5} {n_out:>6} {ours:>11.3f} {baseline:>18.3f} "
              f"{f_in:>11.1%} {f_out:>12.1%}")  # fmt: skip
    worst = min(r[4] for r in rows)
    print(f"\nlowest AUROC ours {worst:.3f}; max-softmax lowest {min(r[5] for r in rows):.3f}")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
