"""One image per class (seed 000): training validates on augmented views of the
training images instead of refusing, says so everywhere, exports and predicts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from linnaeus.engine.cli.train import print_training
from linnaeus.engine.cli.train import training_summary
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.evaluation.metrics import AUGMENTED_VIEWS_NOTE
from linnaeus.engine.evaluation.version import evaluate_version
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.augment import augment_image
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.onnx.classify import classify
from linnaeus.engine.onnx.export import export_version
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.report.model_card import write_report
from linnaeus.engine.training.augmented_views import add_augmented_views
from linnaeus.engine.training.augmented_views import is_view
from linnaeus.engine.training.augmented_views import lacks_validation
from linnaeus.engine.training.augmented_views import validation_views_per_image
from linnaeus.engine.training.augmented_views import view_augmentation
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.data import Examples
from linnaeus.engine.training.data import collect_examples
from linnaeus.engine.training.data import load_pixels
from linnaeus.engine.training.train import train
from tests.training_factory import draw_structure
from tests.training_factory import make_structures_project

CLASSES = 20


def _unseen_views(folder: Path, classes: int, per_class: int) -> Path:
    """Augmented views of each class's drawing that neither training nor validation saw."""
    for index in range(classes):
        name = f"structure_{index:02}"
        (folder / name).mkdir(parents=True)
        for view in range(per_class):
            rng = np.random.default_rng([3, index, view])
            pixels = augment_image(draw_structure(index, 48), PRESETS["gentle"], rng)
            cv2.imwrite(str(folder / name / f"{name}_{view}.png"), pixels)
    return folder


def test_one_image_per_class_trains_on_augmented_views_exports_and_predicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = make_structures_project(tmp_path, CLASSES)
    assert {image.split for image in store.images()} == {"train"}
    reports: list[Progress] = []
    result = train(store, TrainConfig(image_size=64), on_progress=reports.append)  # auto: quick

    version = result.version
    assert version.kind == "quick" and len(version.classes) == CLASSES
    val = version.metrics["val"]
    assert val["images"] == val["augmented_views"] == CLASSES * 10
    assert val["training_images"] == CLASSES
    assert val["accuracy"] >= 0.9
    assert version.metrics["train"]["images"] == CLASSES  # the drawings, not their views
    assert "test" not in version.metrics
    assert any(r.stage == "augment" and r.total for r in reports)

    evaluation = evaluate_version(store, version, "val", bootstrap=0)
    assert evaluation.augmented_views and evaluation.images == CLASSES * 10
    assert evaluation.notes()[0] == AUGMENTED_VIEWS_NOTE
    with pytest.raises(ProjectError, match="too few images for a test split"):
        evaluate_version(store, version, "test")

    print_training(training_summary(result))
    out = capsys.readouterr().out
    assert f"({CLASSES * 10} augmented views of {CLASSES} training images)" in out
    assert AUGMENTED_VIEWS_NOTE in out

    exported = export_version(store, version, tmp_path / "structures.onnx")
    unseen = _unseen_views(tmp_path / "unseen", CLASSES, per_class=3)
    classified = classify(exported.path, unseen, tmp_path / "unseen.csv", keep_predictions=True)
    right = sum(p.label == p.path.split("/")[0] for p in classified.predictions)
    assert classified.images == CLASSES * 3 and right >= 0.85 * classified.images

    card = write_report(store, version, tmp_path / "card.html").read_text()
    assert "Validation: augmented views of the training images" in card
    assert card.count(AUGMENTED_VIEWS_NOTE) == 2  # beside the splits and the figures
    store.close()


def test_a_from_scratch_model_validates_each_epoch_on_views_made_once(tmp_path: Path) -> None:
    store = make_structures_project(tmp_path, 4)
    config = TrainConfig(model="seed-cnn", epochs=2, image_size=32, batch_size=8,
                         augmentation=PRESETS["none"])  # fmt: skip
    reports: list[Progress] = []
    first = train(store, config, on_progress=reports.append)
    epochs = [r for r in reports if isinstance(r, TrainingProgress) and r.phase == "train"]
    assert epochs[-1].epoch == 2 and epochs[-1].val_accuracy is not None
    # Four training images: 400 / 4 views each wanted, 10 at most; no training views.
    assert first.version.metrics["val"]["augmented_views"] == 4 * validation_views_per_image(4)
    assert validation_views_per_image(4) == 10

    again: list[Progress] = []
    second = train(store, config, on_progress=again.append)
    assert second.decoded == 0
    assert not [r for r in again if r.stage == "augment" and r.total]  # the views are cached
    store.close()


def test_views_replace_validation_are_drawn_apart_from_training_and_reproducible(
    tmp_path: Path,
) -> None:
    store = make_structures_project(tmp_path, 3)
    config = TrainConfig(model="quick", image_size=32, augmentation=PRESETS["none"]).resolved()
    loaded = load_pixels(store, collect_examples(store), InputFormat(32))
    with_views, counts = add_augmented_views(store, loaded, config)
    examples = with_views.examples
    views = [i for i, key in enumerate(examples.hashes) if is_view(key)]
    assert counts.training_images == 3 and counts.validation_views == 30
    assert counts.training_views == 3 * 8  # the quick head learns from augmented views too
    assert set(examples.splits[views]) == {"train", "val"}
    assert not [i for i in examples.split("val") if i not in views]
    pixels = with_views.images[with_views.rows]
    sources = {int(i): pixels[n] for n, i in enumerate(examples.image_ids) if n not in views}
    assert all(not np.array_equal(pixels[n], sources[int(examples.image_ids[n])]) for n in views)
    assert view_augmentation(config) == PRESETS["gentle"]  # "none" would validate nothing

    again, _ = add_augmented_views(store, loaded, config)
    assert again.examples.hashes == examples.hashes
    np.testing.assert_array_equal(again.images[again.rows], pixels)
    store.close()


@pytest.mark.parametrize(
    ("splits", "expected"),
    [
        (["train", "train", "train"], True),  # one image per class: no validation at all
        (["train", "val", "train", "train"], True),  # one class of three has a validation image
        (["train", "val", "train", "val", "train"], False),  # two of three do
    ],
)
def test_validation_is_lacking_when_most_classes_have_none(
    splits: list[str], expected: bool
) -> None:
    labels = {3: [0, 1, 2], 4: [0, 0, 1, 2], 5: [0, 0, 1, 1, 2]}[len(splits)]
    examples = Examples(
        classes=["a", "b", "c"],
        image_ids=np.arange(len(splits)),
        paths=[f"{i}.png" for i in range(len(splits))],
        hashes=[str(i) for i in range(len(splits))],
        labels=np.array(labels),
        splits=np.array(splits),
    )
    assert lacks_validation(examples) is expected
