"""Wrong labels found from out-of-fold predictions (confident learning), and
``linnaeus labels issues``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from linnaeus.engine.cli.main import main
from linnaeus.engine.errors import EvaluationError
from linnaeus.engine.evaluation.label_issues import check_labels
from linnaeus.engine.evaluation.label_issues import confident_learning
from linnaeus.engine.evaluation.label_issues import out_of_fold_probabilities
from linnaeus.engine.evaluation.label_issues import rank_label_issues
from linnaeus.engine.evaluation.label_issues import version_label_issues
from linnaeus.engine.project import versions
from linnaeus.engine.project.image_files import labelled_images
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion
from tests.training_factory import make_shapes_project


def clusters(
    per_class: int, classes: int, *, noise: float, seed: int = 0, dimension: int = 32
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features of ``classes`` overlapping Gaussian clusters, their true classes, the
    labels with a share ``noise`` flipped to another class, and the flipped positions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, (classes, dimension)) * 1.6
    truth = np.repeat(np.arange(classes), per_class)
    features = centres[truth] + rng.normal(0.0, 1.0, (len(truth), dimension))
    flipped = rng.choice(len(truth), round(noise * len(truth)), replace=False)
    labels = truth.copy()
    labels[flipped] = (truth[flipped] + rng.integers(1, classes, len(flipped))) % classes
    return features.astype(np.float32), truth, labels, np.sort(flipped)


@pytest.mark.parametrize(("classes", "noise"), [(2, 0.05), (3, 0.05), (4, 0.10)])
def test_planted_flips_rank_first(classes: int, noise: float) -> None:
    features, truth, labels, flipped = clusters(150, classes, noise=noise)
    probabilities = out_of_fold_probabilities(features, labels, classes)
    issues = rank_label_issues(np.arange(len(labels)), labels, probabilities)
    first = {issue.image_id for issue in issues[: 2 * len(flipped)]}
    assert len(first & set(flipped.tolist())) >= 0.9 * len(flipped)
    suggested = {issue.image_id: issue.suggested for issue in issues}
    right = np.mean([suggested[i] == truth[i] for i in flipped])
    assert right >= 0.9  # the suggestion names the true class
    assert [i.image_id for i in issues if i.flagged] == [i.image_id for i in issues][
        : sum(i.flagged for i in issues)
    ]  # flagged first


def test_out_of_fold_beats_in_sample_loss() -> None:
    """A head that saw the image has learnt its wrong label; held-out ones have not."""
    from sklearn.linear_model import LogisticRegression

    features, _, labels, flipped = clusters(100, 2, noise=0.05, dimension=256, seed=3)
    head = LogisticRegression(C=100.0, max_iter=2000).fit(features, labels)
    in_sample = head.predict_proba(features)[np.arange(len(labels)), labels]
    held_out = out_of_fold_probabilities(features, labels, 2)
    planted = set(flipped.tolist())
    found_in_sample = planted & set(np.argsort(in_sample)[: 2 * len(flipped)].tolist())
    ranked = rank_label_issues(np.arange(len(labels)), labels, held_out)
    found_held_out = planted & {i.image_id for i in ranked[: 2 * len(flipped)]}
    assert len(found_held_out) > len(found_in_sample)


def test_confident_learning_thresholds_and_joint() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.3, 0.7], [0.2, 0.8], [0.4, 0.6]])
    found = confident_learning(labels, p)
    assert found.thresholds == pytest.approx([0.6, 0.7])
    assert found.joint.sum() == pytest.approx(1.0)
    assert found.flagged.tolist() == [False, False, True, False, False, False]
    assert found.suggested[2] == 1 and found.score[2] == pytest.approx(0.9)


def test_too_few_images_is_a_clear_error() -> None:
    with pytest.raises(EvaluationError, match="two images in each"):
        out_of_fold_probabilities(np.zeros((3, 4)), np.array([0, 0, 1]), 2)


def _judged_version(store: ProjectStore) -> tuple[ModelVersion, list[int]]:
    """A finished version of the project's labels, judged on features that make the
    first two squares look like disks (their labels are the likely wrong ones)."""
    rows = sorted(labelled_images(store), key=lambda r: r.image_id)
    classes = ["disk", "square"]
    labels = np.array([classes.index(r.label) for r in rows])
    ids = np.array([r.image_id for r in rows])
    version = versions.create_version(
        store, kind="quick", config={}, augmentation={}, classes=classes,
        labels={int(i): (int(c), "train") for i, c in zip(ids, labels, strict=True)},
    )  # fmt: skip
    versions.update_version(store, version.id, status="done")
    versions.set_active(store, version.id)
    rng = np.random.default_rng(0)
    looks = labels.copy()
    wrong = [int(ids[n]) for n in np.flatnonzero(labels == 1)[:2]]
    looks[np.isin(ids, wrong)] = 0
    features = np.eye(2)[looks] * 3 + rng.normal(0, 0.5, (len(ids), 2))
    check_labels(version, ids, labels, features.astype(np.float32))
    return versions.get_version(store, version.id), wrong


def test_labels_issues_json_lists_the_planted_wrong_labels_first(tmp_path, capsys) -> None:
    store = make_shapes_project(tmp_path, {"disk": 20, "square": 20})
    _, wrong = _judged_version(store)
    project = store.project_dir
    store.close()
    code = main(["labels", "issues", "--project", str(project), "--limit", "5", "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and len(rows) == 5
    assert {"path", "label", "suggested", "score"} <= set(rows[0])
    assert {rows[0]["image_id"], rows[1]["image_id"]} == set(wrong)
    assert rows[0]["label"] == "square" and rows[0]["suggested"] == "disk"
    assert rows[0]["path"].startswith("square/")
    assert [r["score"] for r in rows[:2]] == sorted((r["score"] for r in rows[:2]), reverse=True)


def test_a_changed_label_leaves_the_list(tmp_path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 20, "square": 20})
    version, wrong = _judged_version(store)
    store.set_labels([wrong[0]], "disk")
    ids = [issue.image_id for issue in version_label_issues(store, version) or []]
    assert wrong[0] not in ids and ids[0] == wrong[1]
    store.undo()
    assert wrong[0] in [i.image_id for i in (version_label_issues(store, version) or [])[:2]]
    store.close()


def test_without_held_out_predictions_the_command_says_what_to_do(tmp_path, capsys) -> None:
    store = make_shapes_project(tmp_path, {"disk": 5, "square": 5})
    version = versions.create_version(
        store, kind="seed-cnn", config={}, augmentation={}, classes=["disk", "square"], labels={}
    )
    versions.update_version(store, version.id, status="done")
    versions.set_active(store, version.id)
    project = store.project_dir
    store.close()
    assert main(["labels", "issues", "--project", str(project)]) == 1
    assert "train the quick model" in capsys.readouterr().err
