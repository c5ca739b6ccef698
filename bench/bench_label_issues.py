"""Benchmark: planted wrong labels found by ``linnaeus labels issues``.

Prints figures; asserts nothing. For each image folder (folder per class): import it
into a new project, then for each noise level flip that share of the labels (every
split; each flipped image gets another class at random), train the default quick
model on the noisy labels, and count how many of the N flips each ranking puts in
its first 2N:
- ours: `evaluation.label_issues` (K=5 fold heads on the cached backbone
  features, confident learning), as stored by the training;
- in-sample: the queue the window showed before, the trained model's own
  disagreements then loss (`evaluation.version.version_relabel_queue`);
- cleanlab: ``cleanlab.filter.find_label_issues`` (ranked by self-confidence) on
  the same out-of-fold probabilities (only if cleanlab is installed; AGPL, so a
  reference here, never a dependency).
Seconds: the whole training (features computed once per folder: the first level
pays them), the label check inside it (fold heads + storing), and each ranking.
Also: how often ours suggests the true class of a flip it found, and the model's
test accuracy at its decisions (on noisy test labels).

    .venv/bin/python bench/bench_label_issues.py [--folders ../shared/data/potato
        ../shared/data/malaria/train] [--noise 0.05 0.10] [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.evaluation.label_issues import rank_label_issues
from linnaeus.engine.evaluation.label_issues import version_label_issues
from linnaeus.engine.evaluation.version import version_relabel_queue
from linnaeus.engine.project.predictions import out_of_fold_predictions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.train import train

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FOLDERS = [SHARED / "data" / "potato", SHARED / "data" / "malaria" / "train"]


def plant(store: ProjectStore, truth: dict[int, str], share: float, seed: int) -> set[int]:
    """Give every image its true label back, then flip ``share`` of them."""
    rng = np.random.default_rng(seed)
    classes = sorted(set(truth.values()))
    for name in classes:
        store.set_labels([i for i, label in truth.items() if label == name], name)
    ids = np.array(sorted(truth))
    flipped = rng.choice(ids, round(share * len(ids)), replace=False)
    for image_id in flipped:
        others = [c for c in classes if c != truth[int(image_id)]]
        store.set_labels([int(image_id)], str(rng.choice(others)))
    return {int(i) for i in flipped}


def cleanlab_ranking(version) -> tuple[list[int] | None, float]:
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        return None, 0.0
    held_out = out_of_fold_predictions(version)
    started = time.perf_counter()
    ranked = find_label_issues(
        held_out.labels, held_out.probabilities, return_indices_ranked_by="self_confidence"
    )
    return [int(held_out.image_ids[n]) for n in ranked], time.perf_counter() - started


def measure(store: ProjectStore, truth: dict[int, str], share: float, seed: int) -> dict:
    flipped = plant(store, truth, share, seed)
    started = time.perf_counter()
    version = train(store, TrainConfig(seed=seed)).version
    trained_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = version_label_issues(store, version) or []
    ours_s = time.perf_counter() - started
    held_out = out_of_fold_predictions(version)
    started = time.perf_counter()
    rank_label_issues(held_out.image_ids, held_out.labels, held_out.probabilities)
    rank_s = time.perf_counter() - started
    started = time.perf_counter()
    in_sample = [item.image_id for item in version_relabel_queue(store, version)]
    in_sample_s = time.perf_counter() - started
    theirs, theirs_s = cleanlab_ranking(version)
    first = 2 * len(flipped)
    found = [issue for issue in ours[:first] if issue.image_id in flipped]
    right = sum(version.classes[issue.suggested] == truth[issue.image_id] for issue in found)
    test = version.metrics["test"]  # accuracy at the model's decisions
    return {
        "noise": share,
        "flips": len(flipped),
        "images": len(truth),
        "ours": len(found) / len(flipped),
        "flagged": sum(issue.flagged for issue in ours),
        "flagged_found": sum(issue.flagged and issue.image_id in flipped for issue in ours),
        "suggested_right": right / max(len(found), 1),
        "in_sample": len(flipped & set(in_sample[:first])) / len(flipped),
        "cleanlab": None if theirs is None else len(flipped & set(theirs[:first])) / len(flipped),
        "cleanlab_flagged": None if theirs is None else len(theirs),
        "cleanlab_found": None if theirs is None else len(flipped & set(theirs)),
        "train_s": trained_s,
        "check_s": version.metrics["label_check"]["seconds"],
        "rank_s": rank_s,
        "read_s": ours_s,
        "in_sample_s": in_sample_s,
        "cleanlab_s": theirs_s,
        "test": f"{test['accuracy']:.1%} of {test['images']} test images",
    }


def _name(folder: Path) -> str:
    """potato, malaria/train: the set's name, with its part when it is one."""
    return (
        folder.name
        if folder.name not in ("train", "test")
        else f"{folder.parent.name}/{folder.name}"
    )


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def report(name: str, r: dict) -> None:
    """One block of figures for one set and noise level."""
    flagged = f"{r['flagged']} flagged ({r['flagged_found']} of them flips)"
    if r["cleanlab"] is not None:
        flagged += f"; cleanlab {r['cleanlab_flagged']} ({r['cleanlab_found']} flips)"
    print(
        f"{name}, {r['noise']:.0%} flipped ({r['flips']} of {r['images']} images): flips in "
        f"the first 2N = {2 * r['flips']}: ours {_share(r['ours'])}, in-sample loss "
        f"{_share(r['in_sample'])}, cleanlab {_share(r['cleanlab'])}\n"
        f"    {flagged}; ours suggests the true class for {_share(r['suggested_right'])} of "
        f"the flips it found\n"
        f"    seconds: training {r['train_s']:.1f} (of which the label check "
        f"{r['check_s']:.2f}), ranking ours {r['rank_s']:.3f}, cleanlab {r['cleanlab_s']:.3f}, "
        f"in-sample {r['in_sample_s']:.3f}; model on noisy labels: {r['test']}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", nargs="+", type=Path, default=FOLDERS)
    parser.add_argument("--noise", nargs="+", type=float, default=[0.05, 0.10])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for folder in args.folders:
        with tempfile.TemporaryDirectory() as tmp:
            store = ProjectStore.create(Path(tmp) / "project", folder)
            import_images(store)
            truth = {i.id: i.label for i in store.images() if i.label}
            for share in args.noise:
                report(_name(folder), measure(store, truth, share, args.seed))
            store.close()


if __name__ == "__main__":
    main()
