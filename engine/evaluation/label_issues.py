"""Likely wrong labels, found from out-of-fold predictions by confident learning.

A model that was trained on an image has learnt its label, right or wrong, so
its own loss on that image hides a wrong label. Here every labelled image is
judged by a head that never saw it: the images are cut into K folds (K=5) and
K last layers (multinomial logistic regressions, as the quick model's) are
fitted on the cached backbone features of the other folds, in seconds.

Those held-out probabilities then go through confident learning (Northcutt,
Jiang and Chuang, "Confident learning: estimating uncertainty in dataset
labels", JAIR 2021), implemented here from the paper:

1. per class j, a threshold t_j: the mean held-out probability of j over the
   images labelled j (a class the model is shy about gets a lower bar);
2. the confident joint C[i, j]: images labelled i whose probability of j
   reaches t_j (the most probable such j when several do);
3. C calibrated so that each row sums to the number of images labelled i, and
   normalised into the joint Q of given and true labels;
4. prune by noise rate: for each given i and true j != i, the round(N Q[i, j])
   images labelled i with the largest margin p_j - p_i are flagged (here only
   where the margin is positive).

Every labelled image gets a score (its held-out probability of *not* being its
label) and a suggested class; flagged images come first, most likely wrong
first. No TensorFlow here: features are numpy arrays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from linnaeus.engine.errors import EvaluationError
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.project.image_files import labelled_images
from linnaeus.engine.project.predictions import SplitPredictions
from linnaeus.engine.project.predictions import out_of_fold_predictions
from linnaeus.engine.project.predictions import save_out_of_fold_predictions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion

FOLDS = 5
# Inverse L2 strength of the fold heads, on standardised features: strong enough that a
# head does not learn the wrong labels of its own folds, and fast to fit (on 2,150 potato
# leaves, 5% flipped: 3 s for the five heads, where C=0.3 on raw features took 19 s;
# 0.003 found as many flips as 0.01 on potato, and more on malaria at 10% noise).
HEAD_STRENGTH = 0.003
_MAX_ITER = 1000


@dataclass(frozen=True)
class LabelIssue:
    """One labelled image, judged by a model that never saw it."""

    image_id: int
    label: int  # class index, as the version was trained on it
    suggested: int  # the class the held-out model believes (the label itself if it agrees)
    score: float  # held-out probability that the label is wrong, 0..1
    flagged: bool  # confident learning counts it among the likely wrong labels
    label_probability: float  # held-out probability of the label
    suggested_probability: float


@dataclass(frozen=True)
class ConfidentLearning:
    """The result of confident learning on held-out probabilities."""

    thresholds: np.ndarray  # per class: t_j
    joint: np.ndarray  # K x K: estimated joint of given (rows) and true (columns) labels
    flagged: np.ndarray  # per image: likely wrong
    suggested: np.ndarray  # per image: class index
    score: np.ndarray  # per image: 1 - p(label)


def out_of_fold_probabilities(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    folds: int = FOLDS,
    strength: float = HEAD_STRENGTH,
    seed: int = 0,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Class probabilities (N x n_classes) of every image from a logistic-regression
    head fitted on the other folds' standardised ``features`` (stratified K folds;
    fewer when a class has fewer images than ``folds``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    x = np.asarray(features, dtype=np.float32)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)  # well conditioned: lbfgs converges fast
    y = np.asarray(labels, dtype=np.int64)
    if len(x) != len(y):
        raise EvaluationError(f"{len(x)} feature rows for {len(y)} labels.")
    k = fold_count(y, n_classes, folds)
    probabilities = np.zeros((len(y), n_classes), np.float64)
    head = LogisticRegression(C=strength, max_iter=_MAX_ITER, warm_start=True)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for fitted_on, held_out in splitter.split(x, y):
        check_cancelled(cancel)
        with threadpool_limits(1):  # see quick_head.fit_head: one BLAS thread is faster here
            head.fit(x[fitted_on], y[fitted_on])  # warm: starts from the last fold's fit
        probabilities[np.ix_(held_out, head.classes_)] = head.predict_proba(x[held_out])
    return probabilities


def fold_count(labels: np.ndarray, n_classes: int, folds: int = FOLDS) -> int:
    """How many folds ``labels`` are cut into: ``folds``, or the size of the smallest
    class if smaller (then every training fold holds every class); an error below 2."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2:
        raise EvaluationError(
            "Finding wrong labels needs at least two classes and two images in each."
        )
    return int(min(folds, present.min()))


def confident_learning(labels: np.ndarray, probabilities: np.ndarray) -> ConfidentLearning:
    """Confident learning (see the module docstring) on held-out ``probabilities``
    (N x K, rows summing to 1) of images with given ``labels``."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    n, k = p.shape
    counts = np.bincount(y, minlength=k)
    thresholds = np.array(
        [p[y == j, j].mean() if counts[j] else 1.0 for j in range(k)], dtype=np.float64
    )
    above = p >= thresholds - 1e-12
    confident = np.where(above, p, -1.0).argmax(axis=1)
    has_confident = above.any(axis=1)
    joint_counts = np.zeros((k, k), np.float64)
    np.add.at(joint_counts, (y[has_confident], confident[has_confident]), 1.0)
    row_sums = joint_counts.sum(axis=1, keepdims=True)
    calibrated = np.divide(
        joint_counts * counts[:, None], row_sums, out=np.zeros_like(joint_counts),
        where=row_sums > 0,
    )  # fmt: skip
    joint = calibrated / max(calibrated.sum(), 1.0)
    flagged = _prune_by_noise_rate(y, p, joint)
    others = p.copy()
    others[np.arange(n), y] = -1.0
    suggested = np.where(flagged, others.argmax(axis=1), p.argmax(axis=1))
    score = 1.0 - p[np.arange(n), y]
    return ConfidentLearning(thresholds, joint, flagged, suggested, score)


def _prune_by_noise_rate(y: np.ndarray, p: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """Per off-diagonal cell (given i, true j) of the joint, flag the round(N Q[i, j])
    images labelled i with the largest margin p_j - p_i, among those where that margin
    is positive (the held-out head prefers j: a label it agrees with is never called
    wrong); each class keeps at least one image."""
    n, k = p.shape
    flagged = np.zeros(n, bool)
    for i in range(k):
        members = np.flatnonzero(y == i)
        if len(members) == 0:
            continue
        budget = max(len(members) - 1, 0)
        for j in np.argsort(-joint[i]):
            wanted = min(round(float(n * joint[i, j])), budget)
            if j == i or wanted <= 0:
                continue
            candidates = members[~flagged[members]]
            margin = p[candidates, j] - p[candidates, i]
            chosen = candidates[np.argsort(-margin, kind="stable")[:wanted]]
            flagged[chosen[p[chosen, j] - p[chosen, i] > 0]] = True
            budget -= wanted
    return flagged


def rank_label_issues(
    image_ids: np.ndarray, labels: np.ndarray, probabilities: np.ndarray
) -> list[LabelIssue]:
    """Every image, most likely wrong first: those confident learning flags, then
    the rest, each by descending score; equal scores by image id."""
    ids = np.asarray(image_ids, dtype=np.int64)
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    if len(ids) == 0:
        return []
    found = confident_learning(y, p)
    order = np.lexsort((ids, -found.score, ~found.flagged))
    return [
        LabelIssue(int(ids[n]), int(y[n]), int(found.suggested[n]), float(found.score[n]),
                   bool(found.flagged[n]), float(p[n, y[n]]), float(p[n, found.suggested[n]]))
        for n in order
    ]  # fmt: skip


@dataclass(frozen=True)
class LabelCheck:
    """How long finding the label issues of a version took, and on how many images."""

    images: int
    folds: int
    seconds: float


def check_labels(
    version: ModelVersion,
    image_ids: np.ndarray,
    labels: np.ndarray,
    features: np.ndarray,
    *,
    strength: float = HEAD_STRENGTH,
    seed: int = 0,
    cancel: CancelToken | None = None,
) -> LabelCheck:
    """Fit the K fold heads on the labelled images' backbone ``features`` and keep
    their held-out probabilities with ``version`` (what `version_label_issues` reads)."""
    started = time.monotonic()
    probabilities = out_of_fold_probabilities(
        features, labels, len(version.classes), strength=strength, seed=seed, cancel=cancel
    )
    save_out_of_fold_predictions(version, image_ids, labels, probabilities)
    folds = fold_count(labels, len(version.classes))
    return LabelCheck(len(image_ids), folds, time.monotonic() - started)


def version_label_issues(store: ProjectStore, version: ModelVersion) -> list[LabelIssue] | None:
    """The labelled images of ``version`` ranked most likely wrong first, or None when
    the version kept no held-out predictions (a model without backbone features).
    Images whose label was changed since the version was trained (checked
    already) or whose class is gone are left out."""
    held_out = out_of_fold_predictions(version)
    if held_out is None:
        return None
    kept = _still_labelled_as_trained(store, version, held_out)
    issues = rank_label_issues(held_out.image_ids, held_out.labels, held_out.probabilities)
    return [issue for issue in issues if issue.image_id in kept]


def _still_labelled_as_trained(
    store: ProjectStore, version: ModelVersion, held_out: SplitPredictions
) -> set[int]:
    current = {row.image_id: row.label for row in labelled_images(store)}
    return {
        int(i)
        for i, label in zip(held_out.image_ids, held_out.labels, strict=True)
        if current.get(int(i)) == version.classes[int(label)]
    }
