"""ONNX classification with onnxruntime only: no TensorFlow anywhere in this file."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from linnaeus.engine.dataset.layout import walk_files
from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.images.imageio import content_hash
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.onnx.classify import classify
from linnaeus.engine.onnx.format import ModelFileError
from linnaeus.engine.onnx.format import read_metadata
from linnaeus.engine.onnx.format import write_decision_rule
from linnaeus.engine.onnx.inference import Classifier
from linnaeus.engine.onnx.results import Prediction
from linnaeus.engine.onnx.results import sort_into
from linnaeus.engine.onnx.results import write_predictions_csv
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.sessions import choose_providers
from tests.engine.conftest import COLOURS
from tests.engine.conftest import EXPECTED
from tests.engine.conftest import RGB
from tests.engine.conftest import read_csv
from tests.engine.conftest import write_solid
from tests.onnx_factory import make_model
from tests.onnx_factory import reference_outputs

# -- the classifier -------------------------------------------------------------


def test_probabilities_match_a_numpy_reimplementation(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(0, 3, (3, 4)).astype(np.float32)
    bias = rng.normal(0, 1, 4).astype(np.float32)
    path = make_model(
        tmp_path / "m.onnx", ("a", "b", "c", "d"), weights=weights, bias=bias, temperature=2.0
    )
    classifier = Classifier(path)
    images = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)

    probabilities = classifier.predict_pixels(images)

    expected = reference_outputs(images, weights, bias, temperature=2.0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, expected["probabilities"], atol=1e-5)
    assert classifier.provider == "CPUExecutionProvider"
    assert classifier.classes == ["a", "b", "c", "d"]
    assert classifier.input_format == InputFormat(size=16, channels=3, resize="stretch")
    assert classifier.predict_pixels(images[:0]).shape == (0, 4)


def test_classifying_never_runs_the_explanation_outputs(tmp_path: Path) -> None:
    # onnxruntime runs a whole graph whatever outputs are asked for.
    classifier = Classifier(make_model(tmp_path / "m.onnx", RGB, failing_cam=True))
    images = np.zeros((2, 16, 16, 3), np.uint8)

    assert classifier.predict_pixels(images).shape == (2, 3)
    with pytest.raises(Exception, match="Reshape"):
        classifier.explain_pixels(images)


def test_predict_pixels_refuses_wrongly_prepared_images(model: Path) -> None:
    classifier = Classifier(model)
    with pytest.raises(ValueError, match="uint8 images shaped N x 16 x 16 x 3"):
        classifier.predict_pixels(np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(ValueError):
        classifier.predict_pixels(np.zeros((1, 32, 32, 3), np.uint8))


def test_decide_uses_the_binary_threshold_on_the_positive_class(tmp_path: Path) -> None:
    classes = ("normal", "pneumonia")
    with_threshold = Classifier(
        make_model(tmp_path / "t.onnx", classes, threshold=0.3, positive_class="pneumonia")
    )
    plain = Classifier(make_model(tmp_path / "p.onnx", classes))
    probabilities = np.array([[0.75, 0.25], [0.7, 0.3], [0.2, 0.8]], np.float32)

    assert with_threshold.decide(probabilities).tolist() == [0, 1, 1]
    assert plain.decide(probabilities).tolist() == [0, 0, 1]


def test_predict_file_reports_the_threshold_decision_and_its_confidence(tmp_path: Path) -> None:
    # Every image gets p(pneumonia) = 1 / (1 + e^0.6), about 0.35: over the 0.3 threshold.
    weights = np.zeros((3, 2), np.float32)
    bias = np.array([0.0, -0.6], np.float32)
    model = make_model(
        tmp_path / "t.onnx",
        ("normal", "pneumonia"),
        weights=weights,
        bias=bias,
        threshold=0.3,
        positive_class="pneumonia",
    )
    image = write_solid(tmp_path / "x.png", COLOURS["red"])

    prediction = Classifier(model).predict_file(image)

    assert prediction.label == "pneumonia"
    assert prediction.confidence == pytest.approx(1 / (1 + np.exp(0.6)), abs=1e-5)
    assert prediction.path == str(image) and prediction.error is None
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)


def test_a_new_threshold_written_into_the_file_changes_its_decisions(tmp_path: Path) -> None:
    """What "Use this threshold" does to an exported model: only its metadata changes."""
    weights = np.zeros((3, 2), np.float32)
    bias = np.array([0.0, -0.6], np.float32)  # p(pneumonia) about 0.35 for every image
    path = make_model(tmp_path / "t.onnx", ("normal", "pneumonia"), weights=weights, bias=bias,
                      threshold=0.3, positive_class="pneumonia", model_version="v2")  # fmt: skip
    image = write_solid(tmp_path / "x.png", COLOURS["red"])
    graph = onnx_graph_bytes(path)
    assert Classifier(path).predict_file(image).label == "pneumonia"

    assert write_decision_rule(path, 0.4, "pneumonia", model_version="v2")
    assert read_metadata(path).threshold == 0.4
    assert Classifier(path).predict_file(image).label == "normal"
    assert onnx_graph_bytes(path) == graph
    assert not write_decision_rule(path, 0.2, "pneumonia", model_version="v3")  # not v3's
    assert read_metadata(path).threshold == 0.4
    with pytest.raises(ModelFileError, match="between 0 and 1"):
        write_decision_rule(path, 1.0, "pneumonia", model_version="v2")
    assert read_metadata(path).threshold == 0.4


def onnx_graph_bytes(path: Path) -> bytes:
    import onnx

    return onnx.load(str(path)).graph.SerializeToString()


def test_predict_file_of_an_unreadable_file_gives_an_error(model: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_text("hello")

    prediction = Classifier(model).predict_file(broken)

    assert prediction.label is None and prediction.confidence is None
    assert "not an image" in prediction.error


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        (["CPUExecutionProvider"], ["CPUExecutionProvider"]),
        (["AzureExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]),
        (
            ["CPUExecutionProvider", "CUDAExecutionProvider"],
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
        (
            ["CUDAExecutionProvider", "TensorrtExecutionProvider", "CPUExecutionProvider"],
            ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
        (
            ["CoreMLExecutionProvider", "CPUExecutionProvider"],
            ["CoreMLExecutionProvider", "CPUExecutionProvider"],
        ),
        (
            ["DmlExecutionProvider", "CPUExecutionProvider"],
            ["DmlExecutionProvider", "CPUExecutionProvider"],
        ),
    ],
)
def test_choose_providers_prefers_accelerators(available: list[str], expected: list[str]) -> None:
    assert choose_providers(available) == expected


def test_choose_providers_refuses_an_unavailable_request() -> None:
    with pytest.raises(LinnaeusError, match="available: CPUExecutionProvider"):
        choose_providers(["CPUExecutionProvider"], ["CUDAExecutionProvider"])


def _no_metadata(tmp_path: Path) -> Path:
    return make_model(tmp_path / "foreign.onnx", RGB, with_metadata=False)


def _truncated(tmp_path: Path) -> Path:
    good = make_model(tmp_path / "good.onnx", RGB).read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(good[: len(good) // 2])
    return path


def _random_bytes(tmp_path: Path) -> Path:
    path = tmp_path / "random.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.onnx"


@pytest.mark.parametrize("make_file", [_no_metadata, _truncated, _random_bytes, _missing])
def test_unusable_model_files_raise_model_file_error(tmp_path: Path, make_file) -> None:
    path = make_file(tmp_path)

    with pytest.raises(ModelFileError) as caught:
        Classifier(path)

    message = str(caught.value)
    assert path.name in message
    assert "\n" not in message and len(message) < 400


# -- classifying a folder ----------------------------------------------------------


def test_classify_folder_gives_every_file_a_row_in_a_stable_order(
    model: Path, folder: Path
) -> None:
    classifier = Classifier(model)
    progress: list[Progress] = []

    predictions = list(
        classifier.classify_folder(folder, batch_size=3, on_progress=progress.append)
    )

    assert [p.path for p in predictions] == list(EXPECTED)
    assert {p.path: p.label for p in predictions} == EXPECTED
    errors = {p.path: p.error for p in predictions if p.error}
    assert set(errors) == {"e_truncated.jpg", "f_text.png", "g_empty.jpg"}
    assert "truncated" in errors["e_truncated.jpg"].lower()
    assert "not an image" in errors["f_text.png"]
    assert "empty" in errors["g_empty.jpg"]
    assert progress[-1] == Progress("classify", 8, 8)
    one_by_one = list(classifier.classify_folder(folder, batch_size=1, workers=1))
    assert [(p.path, p.label, p.error) for p in one_by_one] == [
        (p.path, p.label, p.error) for p in predictions
    ]
    for single, batched in zip(one_by_one, predictions, strict=True):
        assert single.probabilities == pytest.approx(batched.probabilities, abs=1e-6)


def test_classify_folder_matches_single_file_predictions(model: Path, folder: Path) -> None:
    classifier = Classifier(model)
    for prediction in classifier.classify_folder(folder):
        single = classifier.predict_file(folder / prediction.path)
        assert single.label == prediction.label
        assert single.confidence == pytest.approx(prediction.confidence)


def test_classify_folder_stops_when_cancelled(model: Path, folder: Path) -> None:
    cancel = CancelToken()

    def cancel_after_first_batch(progress: Progress) -> None:
        if progress.done:
            cancel.cancel()

    stream = Classifier(model).classify_folder(
        folder, batch_size=2, cancel=cancel, on_progress=cancel_after_first_batch
    )
    with pytest.raises(Cancelled):
        list(stream)


def test_csv_has_the_contract_columns_and_unknown_below(
    model: Path, folder: Path, tmp_path: Path
) -> None:
    classifier = Classifier(model)
    out = tmp_path / "results.csv"

    rows = write_predictions_csv(classifier.classify_folder(folder), RGB, out, unknown_below=0.5)

    with out.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == [
        "path", "label", "confidence", "red", "green", "blue", "error", "exact_path"
    ]  # fmt: skip
    table = {row["path"]: row for row in read_csv(out)}
    assert rows == len(table) == 8
    assert table["a_red.png"]["label"] == "red"
    assert float(table["a_red.png"]["red"]) == pytest.approx(
        float(table["a_red.png"]["confidence"])
    )
    assert table["h_grey.png"]["label"] == "unknown"  # 1/3 each: below 0.5
    assert table["h_grey.png"]["confidence"] == "0.333333"
    assert table["f_text.png"]["label"] == "" and "not an image" in table["f_text.png"]["error"]
    assert table["a_red.png"]["error"] == ""


# -- sorting into class folders ------------------------------------------------------


def _hashes(root: Path) -> dict[str, str]:
    return {p: content_hash((root / p).read_bytes()) for p in walk_files(root)}


def test_sort_into_copies_into_safe_class_folders(tmp_path: Path, folder: Path) -> None:
    classes = ("../x", "CON", "a/b")
    model = make_model(tmp_path / "hostile.onnx", classes)
    before = _hashes(folder)
    outside_before = sorted(os.listdir(tmp_path))
    destination = tmp_path / "sorted"
    predictions = list(Classifier(model).classify_folder(folder))

    report = sort_into(predictions, folder, destination, classes, unknown_below=0.5)

    assert _hashes(folder) == before  # nothing moved or changed
    assert sorted(os.listdir(tmp_path)) == sorted([*outside_before, "sorted"])
    copies = list(walk_files(destination))
    for relative in copies:
        assert (destination / relative).resolve().is_relative_to(destination.resolve())
    folders = {relative.split("/")[0] for relative in copies}
    assert folders == {"_x", "_CON", "a_b", "unknown"}  # the grey image is unknown
    assert report.copied == len(copies) == 5
    assert sorted(path for path, _ in report.skipped) == [
        "e_truncated.jpg",
        "f_text.png",
        "g_empty.jpg",
    ]
    copied_hashes = sorted(content_hash((destination / r).read_bytes()) for r in copies)
    readable = [h for p, h in before.items() if p not in dict(report.skipped) and p != "notes.txt"]
    assert copied_hashes == sorted(readable)


def test_sort_into_never_overwrites_and_numbers_name_clashes(model: Path, tmp_path: Path) -> None:
    source = tmp_path / "images"
    write_solid(source / "x.png", COLOURS["red"])
    write_solid(source / "sub" / "x.png", COLOURS["red"])
    destination = tmp_path / "sorted"
    predictions = list(Classifier(model).classify_folder(source))

    sort_into(predictions, source, destination, RGB)
    sort_into(predictions, source, destination, RGB)  # again: nothing overwritten

    assert sorted(os.listdir(destination / "red")) == ["x.png", "x_2.png", "x_3.png", "x_4.png"]
    assert (source / "x.png").exists() and (source / "sub" / "x.png").exists()


def test_sort_into_refuses_a_destination_inside_the_source(model: Path, folder: Path) -> None:
    predictions = list(Classifier(model).classify_folder(folder))
    with pytest.raises(LinnaeusError, match="inside the folder being classified"):
        sort_into(predictions, folder, folder / "sorted", RGB)
    # A class folder that would be the source itself is refused too.
    with pytest.raises(LinnaeusError, match="inside the folder being classified"):
        sort_into(predictions, folder, folder.parent, [folder.name, "green", "blue"])
    assert not (folder / "sorted").exists()


def test_sort_into_says_how_many_were_copied_when_the_disk_is_full(
    model: Path, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    real_copyfile = shutil.copyfile
    calls = []

    def copy_until_full(source: Path, target: Path) -> object:
        calls.append(source)
        if len(calls) > 2:
            raise OSError(28, "No space left on device")
        return real_copyfile(source, target)

    monkeypatch.setattr(shutil, "copyfile", copy_until_full)
    predictions = list(Classifier(model).classify_folder(folder))

    with pytest.raises(LinnaeusError, match="disk is full: 2 images were copied"):
        sort_into(predictions, folder, tmp_path / "sorted", RGB)
    assert len(list(walk_files(tmp_path / "sorted"))) == 2  # no half-written third copy


# -- classifying a folder end to end ------------------------------------------------------


def test_classify_writes_the_csv_sorts_copies_and_tallies(
    model: Path, folder: Path, tmp_path: Path
) -> None:
    out, destination = tmp_path / "results.csv", tmp_path / "sorted"
    stages: list[str] = []

    result = classify(
        model, folder, out, sort_into=destination, unknown_below=0.5, keep_predictions=True,
        on_progress=lambda progress: stages.append(progress.stage),
    )  # fmt: skip

    assert result.images == len(read_csv(out)) == 8 and result.csv == out
    assert result.counts == {"red": 2, "green": 1, "blue": 1, "unknown": 1}
    assert result.classified == 5 and len(result.errors) == 3
    assert [p.path for p in result.predictions] == list(EXPECTED)
    assert result.sorted_copies is not None and result.sorted_copies.copied == 5
    assert (destination / "unknown" / "h_grey.png").is_file()
    assert stages[0] == "classify" and stages[-1] == "sort"
    assert result.suggestions is None and result.provider == "CPUExecutionProvider"


def test_classify_keeps_no_predictions_unless_asked(model: Path, folder: Path, tmp_path: Path):
    result = classify(Classifier(model), folder, tmp_path / "r.csv")

    assert result.predictions == [] and result.sorted_copies is None
    assert result.counts == {"red": 3, "green": 1, "blue": 1}


def _link_in_the_folder(folder: Path, tmp_path: Path) -> Path:
    """A CSV path inside the folder that links to a file outside it: writing it
    would still put a temporary file in the folder."""
    link = folder / "r.csv"
    link.symlink_to(tmp_path / "elsewhere.csv")
    return link


@pytest.mark.parametrize(
    ("csv_at", "sort_at", "message"),
    [
        (lambda f, t: f / "r.csv", None, "inside the folder being classified"),
        (lambda f, t: f / "sub" / "r.csv", None, "inside the folder being classified"),
        (_link_in_the_folder, None, "inside the folder being classified"),
        (lambda f, t: t, None, "choose a file in an existing folder"),
        (lambda f, t: t / "nowhere" / "r.csv", None, "choose a file in an existing folder"),
        (lambda f, t: t / "r.csv", lambda f, t: f / "sorted", "inside the folder being"),
        (lambda f, t: t / "r.csv", lambda f, t: f, "inside the folder being classified"),
        (lambda f, t: t / "r.csv", lambda f, t: t / "a file", "it is a file"),
    ],
)
def test_classify_refuses_a_destination_before_writing_anything(
    model: Path, folder: Path, tmp_path: Path, csv_at, sort_at, message: str
) -> None:
    (tmp_path / "a file").write_text("")
    csv_path = csv_at(folder, tmp_path)
    sort_into = sort_at(folder, tmp_path) if sort_at else None
    before = sorted(walk_files(tmp_path))

    with pytest.raises(LinnaeusError, match=message):
        classify(model, folder, csv_path, sort_into=sort_into)

    assert sorted(walk_files(tmp_path)) == before


def test_classify_refuses_an_empty_folder_and_writes_no_csv(model: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    with pytest.raises(LinnaeusError, match="There are no image files"):
        classify(model, tmp_path / "empty", tmp_path / "r.csv")

    assert not (tmp_path / "r.csv").exists()


def test_a_cancelled_classification_leaves_no_csv(model: Path, folder: Path, tmp_path: Path):
    cancel = CancelToken()

    def cancel_after_first_batch(progress: Progress) -> None:
        if progress.done:
            cancel.cancel()

    with pytest.raises(Cancelled):
        classify(model, folder, tmp_path / "r.csv", batch_size=2, cancel=cancel,
                 on_progress=cancel_after_first_batch)  # fmt: skip

    assert sorted(os.listdir(tmp_path)) == sorted(["colours.onnx", "new images"])


def test_prediction_is_a_frozen_record() -> None:
    prediction = Prediction("a.png", "red", 0.9, {"red": 0.9}, None)
    with pytest.raises(AttributeError):
        prediction.label = "blue"  # type: ignore[misc]
