"""Label next: the order of unlabelled images that teaches the model most.

An image teaches the model much when the model is unsure of it (a small
margin between its two most probable classes) and it is unlike what is
labelled already (far in the backbone's feature space from every labelled
image and from every image picked before it). `rank_for_labelling` orders
images greedily by uncertainty times that distance: margin sampling weighted
by k-center coverage, so twenty images from one unsure corner are not all
asked first (Sener & Savarese 2018, core-sets; Ash et al. 2020, BADGE,
combine the two the same way).

`label_next` reads what it needs from the project, never runs a model: the
probabilities stored by the last training of the active version (or the
newest finished one) and the backbone features the quick model cached per
image content (`engine.training.features`). Without features it orders by
uncertainty alone; without a trained model, by distance alone (spread over
the feature space); with neither, by path. NumPy and scikit-learn only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from linnaeus.engine.images.array_cache import ArrayCache
from linnaeus.engine.project import predictions as stored
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion

# The quick model's feature caches (`engine.training.features.feature_cache`): one folder
# per backbone and input format under this one, each an `ArrayCache` of float32 rows.
EMBEDDINGS_FOLDER = Path("cache") / "embeddings"
GREEDY_LIMIT = 2000  # images picked one by one; the rest follow by their last priority
_PROJECTED = 64  # feature dimensions kept for the distances (PCA)
_CHUNK = 2048


@dataclass(frozen=True)
class NextImage:
    """One unlabelled image in label-next order."""

    rank: int  # 1 = label first
    image_id: int
    path: str
    uncertainty: float | None  # 1 - margin of the stored prediction; None: no model yet
    predicted: str | None  # the model's guess, None without one
    novelty: float | None  # distance to the nearest labelled or earlier image; None: no features


@dataclass(frozen=True)
class LabelNextOrder:
    """The order and what it was made from."""

    images: list[NextImage]
    unlabelled: int  # unlabelled readable images in the project
    model: str | None  # the version whose predictions gave the uncertainty
    features: bool  # whether cached backbone features gave the distances
    method: str  # in words, for people


# --- the order, from arrays --------------------------------------------------------------


def margin_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """1 - (highest - second highest probability) of each row: 1 is a coin toss."""
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.shape[1] < 2:
        return np.zeros(len(probabilities))
    top = -np.partition(-probabilities, 1, axis=1)[:, :2]
    return 1.0 - (top[:, 0] - top[:, 1])


def rank_for_labelling(
    features: np.ndarray | None,
    uncertainty: np.ndarray | None,
    labelled_features: np.ndarray | None = None,
    *,
    limit: int | None = None,
    greedy_limit: int = GREEDY_LIMIT,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The order (indices into the N unlabelled images) to label them in, and each
    one's novelty when it was picked (None without ``features``).

    ``features`` (N x D) and ``labelled_features`` (M x D) are backbone features;
    ``uncertainty`` (N, in [0, 1]) comes from the current model. The first
    ``min(limit, greedy_limit)`` images are picked one at a time by uncertainty
    times distance to everything labelled or picked; the others follow by that
    priority at the last pick.
    """
    # One BLAS thread: the products are small, and with two threads on a busy 2-core
    # machine they waited for each other (7 s instead of 0.2 s for 600 images).
    with threadpool_limits(1):
        return _rank(features, uncertainty, labelled_features, limit, greedy_limit)


def _rank(
    features: np.ndarray | None,
    uncertainty: np.ndarray | None,
    labelled_features: np.ndarray | None,
    limit: int | None,
    greedy_limit: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    n = len(features) if features is not None else (0 if uncertainty is None else len(uncertainty))
    if n == 0:
        return np.zeros(0, np.int64), None
    weight = np.ones(n) if uncertainty is None else np.clip(np.asarray(uncertainty, float), 0, 1)
    if features is None:
        return np.argsort(-weight, kind="stable"), None
    points, known = _project(np.asarray(features, np.float32), labelled_features)
    distance = _nearest_distance(points, known) if len(known) else np.full(n, np.inf)
    picks = min(n, greedy_limit if limit is None else min(limit, greedy_limit))
    order = np.empty(n, np.int64)
    novelty = np.zeros(n)
    taken = np.zeros(n, bool)
    # Small weights still break ties by distance, and never-labelled space comes first.
    weight = 0.05 + 0.95 * weight
    for step in range(picks):
        finite = np.where(np.isinf(distance), 1e6, distance)
        priority = np.where(taken, -np.inf, weight * finite)
        chosen = int(np.argmax(priority))
        order[step], novelty[chosen], taken[chosen] = chosen, distance[chosen], True
        distance = np.minimum(distance, _distance_to(points, points[chosen]))
    rest = np.flatnonzero(~taken)
    if len(rest):
        finite = np.where(np.isinf(distance[rest]), 1e6, distance[rest])
        order[picks:] = rest[np.argsort(-(weight[rest] * finite), kind="stable")]
        novelty[rest] = distance[rest]
    return order, novelty


def _project(features: np.ndarray, labelled: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length features, reduced to `_PROJECTED` dimensions by a PCA fitted on all."""
    from sklearn.decomposition import PCA

    labelled = np.zeros((0, features.shape[1]), np.float32) if labelled is None else labelled
    everything = _unit(np.concatenate([features, np.asarray(labelled, np.float32)]))
    dimensions = min(_PROJECTED, everything.shape[1], len(everything))
    if dimensions < everything.shape[1]:
        pca = PCA(dimensions, svd_solver="randomized", random_state=0)
        everything = pca.fit_transform(everything).astype(np.float32)
    return everything[: len(features)], everything[len(features) :]


def _unit(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def _distance_to(points: np.ndarray, point: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(np.sum((points - point) ** 2, axis=1), 0.0))


def _nearest_distance(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Each point's distance to its nearest row of ``others``, in chunks."""
    squared = np.sum(others * others, axis=1)
    nearest = np.empty(len(points))
    for start in range(0, len(points), _CHUNK):
        block = points[start : start + _CHUNK]
        d2 = np.sum(block * block, axis=1)[:, None] - 2 * block @ others.T + squared[None, :]
        nearest[start : start + _CHUNK] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return nearest


# --- the order, from a project -----------------------------------------------------------


def label_next(store: ProjectStore, *, limit: int | None = None) -> LabelNextOrder:
    """The project's unlabelled readable images in the order to label them (the first
    ``limit``, or all), from its stored predictions and cached features. Images
    added since the last training (no prediction or features yet) come last."""
    images = [i for i in store.images(status="ok", unlabelled=True) if i.content_hash]
    labelled = [i for i in store.images(status="ok") if i.label is not None and i.content_hash]
    version = _model_version(store)
    probabilities = _stored_probabilities(store, version)
    cache = _feature_cache(store, [str(i.content_hash) for i in images])
    scored = [
        position for position, image in enumerate(images)
        if (probabilities is None or image.id in probabilities)
        and (cache is None or image.content_hash in cache)
    ]  # fmt: skip
    uncertainty = guesses = features = labelled_features = None
    if probabilities is not None and version is not None:
        picked = np.stack([probabilities[images[p].id] for p in scored]) if scored else None
        if picked is not None:
            uncertainty = margin_uncertainty(picked)
            guesses = [version.classes[int(k)] for k in picked.argmax(axis=1)]
    if cache is not None and scored:
        features = cache.get([str(images[p].content_hash) for p in scored])
        hashes = [str(i.content_hash) for i in labelled if i.content_hash in cache]
        labelled_features = cache.get(hashes) if hashes else None
    novelty = None
    if features is None and uncertainty is None:
        order = np.arange(len(scored))
    else:
        order, novelty = rank_for_labelling(features, uncertainty, labelled_features, limit=limit)
    unscored = sorted(set(range(len(images))) - set(scored))
    positions = [scored[i] for i in order.tolist()] + unscored
    detail = {scored[i]: i for i in range(len(scored))}
    listed = []
    for rank, position in enumerate(positions[:limit], start=1):
        at = detail.get(position)
        listed.append(NextImage(
            rank=rank, image_id=images[position].id, path=images[position].path,
            uncertainty=None if uncertainty is None or at is None else float(uncertainty[at]),
            predicted=None if guesses is None or at is None else guesses[at],
            novelty=None if novelty is None or at is None else float(novelty[at]),
        ))  # fmt: skip
    return LabelNextOrder(
        listed, len(images), version.name if uncertainty is not None and version else None,
        features is not None, _method(uncertainty is not None, features is not None),
    )  # fmt: skip


def _method(uncertain: bool, features: bool) -> str:
    if uncertain and features:
        return "the model's uncertainty times distance to what is labelled (features)"
    if uncertain:
        return "the model's uncertainty (no cached features: train the quick model to add them)"
    if features:
        return "spread over the features (no model yet: train one to add its uncertainty)"
    return "path order (train a model first: label next uses its predictions and features)"


def _model_version(store: ProjectStore) -> ModelVersion | None:
    active = versions.active_version(store)
    if active is not None and active.status == "done":
        return active
    done = [v for v in versions.list_versions(store) if v.status == "done"]  # newest first
    return done[0] if done else None


def _stored_probabilities(
    store: ProjectStore, version: ModelVersion | None
) -> dict[int, np.ndarray] | None:
    """The version's stored probabilities by image id (None without a version)."""
    if version is None:
        return None
    ids, probabilities = stored.load_predictions(store, version.id)
    if len(ids) == 0:
        return None
    return dict(zip(ids.tolist(), probabilities, strict=True))


def _feature_cache(store: ProjectStore, hashes: list[str]) -> ArrayCache | None:
    """The feature cache holding most of ``hashes`` (at least one), if any."""
    best, covered = None, 0
    for index in sorted((store.project_dir / EMBEDDINGS_FOLDER).glob("*/index.json")):
        try:
            saved = json.loads(index.read_text())
            cache = ArrayCache(index.parent, saved["shape"], "float32")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found = sum(h in cache for h in hashes)
        if found > covered:
            best, covered = cache, found
    return best
