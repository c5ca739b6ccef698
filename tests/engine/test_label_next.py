"""Label next: uncertainty with diversity over cached features (engine.evaluation.label_next),
and ``linnaeus labels next``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from linnaeus.engine.cli.main import main
from linnaeus.engine.evaluation.label_next import EMBEDDINGS_FOLDER
from linnaeus.engine.evaluation.label_next import label_next
from linnaeus.engine.evaluation.label_next import margin_uncertainty
from linnaeus.engine.evaluation.label_next import rank_for_labelling
from linnaeus.engine.images.array_cache import ArrayCache
from linnaeus.engine.project import versions
from linnaeus.engine.project.predictions import save_predictions
from linnaeus.engine.project.store import ProjectStore
from tests.engine.conftest import add_images


def _clusters(per_cluster: int, centres: int, dimension: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middles = rng.normal(size=(centres, dimension)) * 5
    return np.concatenate([m + rng.normal(size=(per_cluster, dimension)) * 0.1 for m in middles])


def test_margin_uncertainty_is_one_for_a_coin_toss_and_zero_when_sure() -> None:
    values = margin_uncertainty(np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.6, 0.3, 0.1]]))
    np.testing.assert_allclose(values, [1.0, 0.0, 0.7])


def test_the_order_spreads_over_clusters_before_repeating_one() -> None:
    features = _clusters(10, 4)  # four tight clusters of ten
    uncertainty = np.full(40, 0.5)
    uncertainty[:10] = 0.9  # the model is least sure in cluster 0, ten times over
    order, novelty = rank_for_labelling(features, uncertainty)
    first_four = {int(i) // 10 for i in order[:4]}
    assert first_four == {0, 1, 2, 3}  # uncertainty alone would take cluster 0 four times
    assert order[0] < 10  # ... but the unsure cluster comes first
    assert sorted(order.tolist()) == list(range(40)) and novelty is not None


def test_labelled_clusters_come_last_and_uncertainty_alone_without_features() -> None:
    features = _clusters(5, 3)
    labelled = features[:5] + 0.01  # cluster 0 is labelled already
    order, _ = rank_for_labelling(features, np.full(15, 0.5), labelled)
    assert all(int(i) >= 5 for i in order[:2])
    by_uncertainty, novelty = rank_for_labelling(None, np.array([0.1, 0.9, 0.5]))
    assert by_uncertainty.tolist() == [1, 2, 0] and novelty is None
    assert len(rank_for_labelling(None, None)[0]) == 0


def _project_with_model(store: ProjectStore, features: np.ndarray) -> list[int]:
    """Images 0-1 labelled, the rest not; a trained version's stored predictions; features
    cached by content as the quick model caches them."""
    ids = add_images(store, [f"img_{i:02d}.png" for i in range(len(features))])
    hashes = [f"hash{i}" for i in range(len(ids))]
    with store.transaction():
        store.execute_many("UPDATE images SET content_hash = ? WHERE id = ?",
                           list(zip(hashes, ids, strict=True)))  # fmt: skip
    store.ensure_class("a")
    store.ensure_class("b")
    store.set_labels([ids[0]], "a")
    store.set_labels([ids[1]], "b")
    version = versions.create_version(
        store, kind="quick", config={}, augmentation={}, classes=["a", "b"],
        labels={ids[0]: (0, "train"), ids[1]: (1, "train")},
    )  # fmt: skip
    versions.update_version(store, version.id, status="done")
    sure = np.linspace(0.5, 1.0, len(ids))  # image 2 is the least sure unlabelled one
    save_predictions(store, version.id, ids, np.stack([sure, 1 - sure], axis=1))
    cache = ArrayCache(store.project_dir / EMBEDDINGS_FOLDER / "test-backbone", (4,), "float32")
    cache.put(dict(zip(hashes, features.astype(np.float32), strict=True)))
    return ids


def test_label_next_reads_the_projects_predictions_and_features(store: ProjectStore) -> None:
    features = np.eye(4)[np.arange(12) % 4] + 0.01 * np.arange(12)[:, None]
    ids = _project_with_model(store, features)

    order = label_next(store, limit=5)

    assert order.unlabelled == 10 and len(order.images) == 5 and order.features
    assert order.model == "v1" and "uncertainty" in order.method
    assert [i.rank for i in order.images] == [1, 2, 3, 4, 5]
    assert order.images[0].image_id == ids[2]  # the least sure, in unlabelled space
    assert all(i.image_id not in ids[:2] for i in order.images)
    assert order.images[0].predicted in ("a", "b") and order.images[0].uncertainty > 0.8
    everything = label_next(store)
    assert sorted(i.image_id for i in everything.images) == sorted(ids[2:])


def test_without_a_model_or_features_the_order_is_the_paths(store: ProjectStore) -> None:
    ids = add_images(store, ["b.png", "a.png"])
    with store.transaction():
        store.execute_many("UPDATE images SET content_hash = ? WHERE id = ?",
                           [("h1", ids[0]), ("h2", ids[1])])  # fmt: skip
    order = label_next(store)
    assert [i.path for i in order.images] == ["a.png", "b.png"]
    assert order.method.startswith("path order")
    assert order.model is None and not order.features


def test_labels_next_cli_prints_json_first_to_label_first(store: ProjectStore, capsys) -> None:
    features = np.eye(4)[np.arange(8) % 4]
    _project_with_model(store, features)
    project = store.project_dir
    store.close()

    assert main(["labels", "next", "--project", str(project), "--limit", "3", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [item["rank"] for item in listed] == [1, 2, 3]
    assert {"path", "image_id", "uncertainty", "predicted", "novelty"} <= set(listed[0])

    assert main(["labels", "next", "--project", str(project)]) == 0
    assert "Label these first (6 of 6 unlabelled images" in capsys.readouterr().out


@pytest.mark.parametrize("limit", ["-1", "x"])
def test_labels_next_refuses_a_bad_limit(store: ProjectStore, limit: str) -> None:
    with pytest.raises(SystemExit):
        main(["labels", "next", "--project", str(store.project_dir), "--limit", limit])
