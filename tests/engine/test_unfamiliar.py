"""Unfamiliar images: the k-NN score in numpy and in the exported graph, its cut,
and how predict's CSV and sorted copies use it (engine.onnx.unfamiliar)."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import helper

from linnaeus.engine.dataset.layout import walk_files
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.images.imageio import content_hash
from linnaeus.engine.onnx import unfamiliar
from linnaeus.engine.onnx.classify import classify
from linnaeus.engine.onnx.format import OOD_SCORE
from linnaeus.engine.onnx.format import read_metadata
from linnaeus.engine.onnx.inference import Classifier
from linnaeus.engine.onnx.results import Prediction
from linnaeus.engine.onnx.results import sort_into
from tests.engine.conftest import read_csv
from tests.onnx_factory import make_metadata
from tests.onnx_factory import make_model

SIZE = 16


def _images(colours: list[tuple[int, int, int]], seed: int) -> np.ndarray:
    """One SIZE x SIZE RGB image per colour, with a little noise."""
    rng = np.random.default_rng(seed)
    base = np.array(colours, np.float64)[:, None, None, :]
    noisy = base + rng.normal(0, 6, (len(colours), SIZE, SIZE, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _familiar_colours(n: int, seed: int) -> list[tuple[int, int, int]]:
    """Reds and greens: what the model was trained on."""
    rng = np.random.default_rng(seed)
    return [
        (int(rng.integers(180, 255)), int(rng.integers(0, 40)), 0)
        if i % 2
        else (0, int(rng.integers(180, 255)), int(rng.integers(0, 40)))
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def ood_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, unfamiliar.Familiarity]:
    """The factory's colour model, given its ood_score output as an export does."""
    path = make_model(tmp_path_factory.mktemp("ood") / "colours.onnx", ("red", "green", "blue"))
    model = onnx.load(path)
    training = _images(_familiar_colours(60, 1), 1)
    held_out = _images(_familiar_colours(40, 2), 2)
    familiarity = unfamiliar.familiarise(model, "features_1", training, held_out)
    # The chosen cut flags ~5% of images like the training ones by design; these tests
    # want exact answers, so they cut far between the familiar colours and blue.
    familiarity = dataclasses.replace(familiarity, cut=0.05)
    info = make_metadata(("red", "green", "blue"), unfamiliar=familiarity.to_dict())
    del model.metadata_props[:]
    helper.set_model_props(model, {"linnaeus": info.to_json()})
    onnx.save(model, path)
    return path, familiarity


# -- the score --------------------------------------------------------------------------


def test_knn_score_is_zero_on_the_bank_and_grows_with_the_angle() -> None:
    features = np.array([[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0]], np.float32)
    bank = unfamiliar.make_bank(features)
    assert bank.dtype == np.float16 and bank.shape == (3, 3)
    scores = unfamiliar.knn_scores(np.array([[2, 0, 0], [0, 0, 1]], np.float32), bank, 1)
    assert scores[0] == pytest.approx(0.0, abs=1e-3)
    assert scores[1] == pytest.approx(1.0, abs=1e-3)  # orthogonal to every kept image
    left_out = unfamiliar.knn_scores(bank, bank, 1, leave_out=True)
    assert left_out[1] > left_out[0] > 0  # each without itself: the green one is alone


def test_the_bank_keeps_at_most_its_size_and_the_cut_falls_back_without_validation() -> None:
    rng = np.random.default_rng(0)
    bank = unfamiliar.make_bank(rng.normal(size=(50, 8)), size=20)
    assert bank.shape == (20, 8)
    held_out = rng.normal(size=(30, 8))
    on_validation = unfamiliar.choose_cut(bank, held_out)
    scores = unfamiliar.knn_scores(held_out, bank)
    high, median = np.quantile(scores, 0.95), np.median(scores)
    assert on_validation.cut == pytest.approx(high + 3 * (high - median))  # past every score
    assert on_validation.median_score == pytest.approx(median) and on_validation.cut > scores.max()
    assert on_validation.chosen_on == unfamiliar.CHOSEN_ON_VALIDATION
    assert on_validation.cut_images == 30 and on_validation.neighbours == 5
    few = unfamiliar.choose_cut(bank, rng.normal(size=(3, 8)))
    assert few.chosen_on == unfamiliar.CHOSEN_LEAVING_OUT and few.cut_images == 20
    with pytest.raises(LinnaeusError, match="no"):
        unfamiliar.make_bank(np.zeros((0, 8)))


def test_the_onnx_graph_gives_the_engine_score(ood_model) -> None:
    path, familiarity = ood_model
    metadata = read_metadata(path)  # the contract holds with the extra output
    assert metadata.unfamiliar == familiarity.to_dict()
    assert familiarity.chosen_on == unfamiliar.CHOSEN_ON_VALIDATION and familiarity.cut_images == 40
    images = np.concatenate([_images(_familiar_colours(6, 3), 3), _images([(40, 40, 230)] * 4, 4)])
    classifier = Classifier(path)
    from_graph = classifier.ood_scores(images)
    pooled = images.astype(np.float32) / 255.0  # the factory's features_1, averaged
    bank = unfamiliar.kept_bank(onnx.load(path))
    from_engine = unfamiliar.knn_scores(pooled.mean(axis=(1, 2)), bank, familiarity.neighbours)
    np.testing.assert_allclose(from_graph, from_engine, atol=1e-5)
    flagged = familiarity.is_unfamiliar(from_graph)
    assert not flagged[:6].any() and flagged[6:].all()  # the blue ones were never seen


def test_the_scores_and_features_of_a_serialised_model_come_batch_after_batch(ood_model) -> None:
    path, _ = ood_model
    model = Path(path).read_bytes()
    images = _images(_familiar_colours(20, 4), 4)  # more than one batch
    np.testing.assert_allclose(
        unfamiliar.score_images(model, images), Classifier(path).ood_scores(images), atol=1e-6
    )
    pooled = unfamiliar.pooled_features(model, "features_1", images)
    np.testing.assert_allclose(pooled, images.mean(axis=(1, 2)) / 255.0, atol=1e-5)
    assert unfamiliar.score_images(model, images[:0]).shape == (0,)
    assert unfamiliar.pooled_features(model, "features_1", images[:0]).shape == (0, 3)


def test_a_model_without_the_score_reads_as_before(tmp_path: Path) -> None:
    classifier = Classifier(make_model(tmp_path / "old.onnx"))
    assert classifier.familiarity is None
    assert classifier.ood_scores(np.zeros((1, SIZE, SIZE, 3), np.uint8)) is None
    prediction = classifier.predict_file(tmp_path / "missing.png")
    assert prediction.ood_score is None and prediction.unfamiliar is None


# -- predict: the CSV and the sorted copies -----------------------------------------------


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    images = _images([*_familiar_colours(4, 5), (30, 30, 240), (35, 25, 235)], 5)
    for i, pixels in enumerate(images):
        cv2.imwrite(str(folder / f"img_{i}.png"), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    (folder / "notes.png").write_text("not an image")
    return folder


def _hashes(root: Path) -> dict[str, str]:
    return {p: content_hash((root / p).read_bytes()) for p in walk_files(root)}


def test_predict_writes_ood_columns_and_sorts_unfamiliar_images_apart(
    ood_model, photos: Path, tmp_path: Path
) -> None:
    path, _ = ood_model
    before = _hashes(photos)
    out, copies = tmp_path / "results.csv", tmp_path / "sorted"

    result = classify(path, photos, out, sort_into=copies)

    with out.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert header[-4:] == ["ood_score", "unfamiliar", "error", "exact_path"]
    table = {row["path"]: row for row in read_csv(out)}
    assert [table[f"img_{i}.png"]["unfamiliar"] for i in range(6)] == ["no"] * 4 + ["yes"] * 2
    assert float(table["img_5.png"]["ood_score"]) > float(table["img_0.png"]["ood_score"])
    assert table["notes.png"]["ood_score"] == table["notes.png"]["unfamiliar"] == ""
    assert result.unfamiliar == 2
    assert result.sorted_copies is not None
    assert result.sorted_copies.per_folder["unfamiliar"] == 2
    assert sorted(p.name for p in (copies / "unfamiliar").iterdir()) == ["img_4.png", "img_5.png"]
    assert _hashes(photos) == before  # the image folder is never written


def test_sorting_never_writes_into_the_image_folder(ood_model, photos: Path) -> None:
    path, _ = ood_model
    before = _hashes(photos)
    with pytest.raises(LinnaeusError, match="never writes into your image folder"):
        classify(path, photos, photos.parent / "r.csv", sort_into=photos / "sorted")
    with pytest.raises(LinnaeusError, match="never writes into your image folder"):
        sort_into([], photos, photos / "unfamiliar", ["red"])
    assert _hashes(photos) == before


def test_a_class_named_unfamiliar_keeps_its_own_folder(photos: Path, tmp_path: Path) -> None:
    predictions = [
        Prediction("img_0.png", "unfamiliar", 0.9, {"unfamiliar": 0.9}, None, 0.01, False),
        Prediction("img_1.png", "unfamiliar", 0.9, {"unfamiliar": 0.9}, None, 0.9, True),
    ]
    report = sort_into(predictions, photos, tmp_path / "out", ["unfamiliar", "other"])
    assert report.per_folder == {"unfamiliar": 1, "unfamiliar_2": 1}
    assert (tmp_path / "out" / "unfamiliar_2" / "img_1.png").is_file()


def test_the_ood_output_is_added_once(ood_model) -> None:
    path, _ = ood_model
    model = onnx.load(path)
    assert model.graph.output[-1].name == OOD_SCORE
    with pytest.raises(LinnaeusError, match="already"):
        unfamiliar.add_ood_output(model, "features_1", np.ones((2, 3), np.float16), 1)
