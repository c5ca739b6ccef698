"""ONNX classification with onnxruntime only: no TensorFlow anywhere in this file."""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from linnaeus.engine.cli import predict as cli_predict
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.dataset.layout import walk_files
from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.images.heatmaps import cam_to_square
from linnaeus.engine.images.heatmaps import heatmap_to_image
from linnaeus.engine.images.heatmaps import square_to_original
from linnaeus.engine.images.imageio import content_hash
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.images.preprocess import pad_box
from linnaeus.engine.images.preprocess import prepare_image
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
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.sessions import choose_providers
from tests.image_factory import encode_image
from tests.onnx_factory import colour_weights
from tests.onnx_factory import make_model
from tests.onnx_factory import reference_outputs

REPO = Path(__file__).resolve().parents[2]
RGB = ("red", "green", "blue")
COLOURS = {"red": (220, 20, 20), "green": (20, 220, 20), "blue": (20, 20, 220)}


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (24, 18)) -> np.ndarray:
    width, height = size
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()


def write_solid(path: Path, colour: tuple[int, int, int], kind: str = "png") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_image(solid(colour), kind))
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "colours.onnx", RGB)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Good images, corrupt files and a sub-folder; expected labels in EXPECTED."""
    root = tmp_path / "new images"
    write_solid(root / "a_red.png", COLOURS["red"])
    write_solid(root / "b_green.jpg", COLOURS["green"], "jpeg")
    write_solid(root / "sub" / "c_blue.png", COLOURS["blue"])
    write_solid(root / "sub" / "d_red.bmp", COLOURS["red"], "bmp")
    jpeg = encode_image(solid(COLOURS["red"], (64, 64)), "jpeg")
    (root / "e_truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "f_text.png").write_text("this is not an image")
    (root / "g_empty.jpg").write_bytes(b"")
    write_solid(root / "h_grey.png", (128, 128, 128))
    (root / "notes.txt").write_text("not an image file name: ignored")
    return root


EXPECTED = {
    "a_red.png": "red",
    "b_green.jpg": "green",
    "e_truncated.jpg": None,
    "f_text.png": None,
    "g_empty.jpg": None,
    "h_grey.png": "red",  # a tie: argmax takes the first class
    "sub/c_blue.png": "blue",
    "sub/d_red.bmp": "red",
}


def predict_cli(argv: Sequence[str]) -> int:
    """Run ``linnaeus predict ...`` as the CLI does (cli.main once it knows predict)."""
    from linnaeus.engine.cli import main as cli

    if "predict" in _subcommands(cli.build_parser()):
        return cli.main(["predict", *argv])
    parser = argparse.ArgumentParser(prog="linnaeus")
    cli_predict.add_commands(parser.add_subparsers(), None)
    args = parser.parse_args(["predict", *argv])
    try:
        return args.run(args)
    except LinnaeusError as error:
        print(f"linnaeus: error: {error}", file=sys.stderr)
        return 1


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices) if actions else set()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


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


def test_explain_pixels_gives_cam_and_feature_maps(model: Path) -> None:
    classifier = Classifier(model)
    images = np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)

    outputs = classifier.explain_pixels(images)

    expected = reference_outputs(images, colour_weights(3, 3))
    assert set(outputs) == {"probabilities", "cam", "features_1"}
    assert outputs["cam"].shape == (2, 8, 8, 3)
    np.testing.assert_allclose(outputs["cam"], expected["cam"], atol=1e-5)
    np.testing.assert_allclose(outputs["features_1"], expected["features_1"], atol=1e-6)


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


# -- heatmaps -----------------------------------------------------------------------


def test_pad_box_is_where_prepare_image_puts_the_image() -> None:
    for height, width in [(30, 60), (60, 30), (17, 40), (40, 40), (5, 100)]:
        white = np.full((height, width, 3), 255, np.uint8)
        prepared = prepare_image(white, InputFormat(size=32, resize="pad"))[:, :, 0]
        top, left, new_h, new_w = pad_box(height, width, 32)
        rows, cols = np.nonzero(prepared)
        assert (rows.min(), cols.min()) == (top, left)
        assert (rows.max() + 1, cols.max() + 1) == (top + new_h, left + new_w)


def test_pad_heatmap_lit_over_the_image_area_covers_the_whole_original() -> None:
    top, left, new_h, new_w = pad_box(30, 60, 16)
    square = np.zeros((16, 16), np.float32)
    square[top : top + new_h, left : left + new_w] = 1.0

    original = square_to_original(square, 30, 60, "pad")

    assert original.shape == (30, 60)
    np.testing.assert_allclose(original, 1.0, atol=1e-6)  # bicubic sums to 1 within float
    stretched = square_to_original(square, 30, 60, "stretch")
    assert stretched.min() == 0.0  # stretch maps the padding rows too


def test_stretch_heatmap_resizes_directly() -> None:
    square = np.zeros((16, 16), np.float32)
    square[:, :8] = 1.0

    original = square_to_original(square, 20, 64, "stretch")

    assert original.shape == (20, 64)
    assert original[:, :28].min() == 1.0 and original[:, 36:].max() == 0.0


def test_cam_to_square_keeps_positive_evidence_normalised() -> None:
    cam = np.array([[-3.0, 0.0], [1.0, 2.0]], np.float32)
    square = cam_to_square(cam, 16)
    assert square.shape == (16, 16) and square.dtype == np.float32
    assert square.max() == pytest.approx(1.0) and square.min() == 0.0
    assert not cam_to_square(-np.ones((4, 4), np.float32), 16).any()


def test_heatmap_lights_the_red_half_at_the_original_size(tmp_path: Path) -> None:
    classifier = Classifier(make_model(tmp_path / "pad.onnx", RGB, resize="pad"))
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20, 0] = 255

    heatmap = classifier.heatmap(image)

    assert heatmap.shape == (20, 40) and heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0
    # the red half lit, the rest dark; the smoothing (engine.images.heatmaps) softens the edge
    assert heatmap[:, :16].mean() > 0.75 and heatmap[:, 24:].mean() < 0.1
    assert not classifier.heatmap(image, class_index=1).any()  # no green anywhere
    cam = classifier.explain_pixels(prepare_image(image, classifier.input_format)[None])["cam"]
    same = heatmap_to_image(cam[0, :, :, 0], image.shape, classifier.input_format)
    np.testing.assert_allclose(same, heatmap)  # the helper the model card report uses


# -- the command line ------------------------------------------------------------------


def test_predict_command_writes_csv_and_json_summary(
    model: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.csv"

    status = predict_cli(
        [
            str(model),
            str(folder),
            "--out",
            str(out),
            "--json",
            "--unknown-below",
            "0.5",
            "--sort-into",
            str(tmp_path / "sorted"),
        ]
    )

    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["csv"] == str(out) and len(read_csv(out)) == 8
    assert summary["counts"] == {"red": 2, "green": 1, "blue": 1, "unknown": 1}
    assert summary["unreadable"] == 3 and summary["provider"] == "CPUExecutionProvider"
    assert {e["path"] for e in summary["errors"]} == {
        "e_truncated.jpg",
        "f_text.png",
        "g_empty.jpg",
    }
    assert summary["sorted"]["copied"] == 5
    assert (tmp_path / "sorted" / "unknown" / "h_grey.png").is_file()


def test_predict_command_prints_a_human_summary(
    model: Path, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)

    assert predict_cli([str(model), str(folder)]) == 0

    out = capsys.readouterr().out
    assert "CPUExecutionProvider" in out and "Classified 8 image files" in out
    assert "3 files could not be read" in out
    assert (tmp_path / "new images_predictions.csv").is_file()  # in the current folder


def test_predict_command_summarises_a_folder_of_only_unreadable_files(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_text("not an image")

    assert predict_cli([str(model), str(broken), "--out", str(tmp_path / "r.csv")]) == 0

    assert "1 files could not be read" in capsys.readouterr().out
    assert read_csv(tmp_path / "r.csv")[0]["error"].startswith("not an image")


def test_predict_command_refuses_user_mistakes_in_one_line(
    model: Path, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    files_before = list(walk_files(folder))
    (tmp_path / "empty").mkdir()
    m, f, out = str(model), str(folder), ["--out", str(tmp_path / "x.csv")]
    mistakes = [
        ([m, f], "inside the folder being classified"),  # the default CSV: cwd is the folder
        ([m, f, *out, "--sort-into", str(folder / "sorted")], "inside the folder being classified"),
        ([m, str(tmp_path / "nowhere"), *out], "is not a folder"),
        ([str(tmp_path / "nothing.onnx"), f, *out], "There is no model file"),
        ([m, str(tmp_path / "empty"), *out], "There are no image files"),
        ([m, f, *out, "--write-suggestions"], "go together"),
    ]
    monkeypatch.chdir(folder)
    for argv, expected in mistakes:
        assert predict_cli(argv) == 1
        error = capsys.readouterr().err
        assert error.startswith("linnaeus: error: ") and error.count("\n") == 1
        assert expected in error
    assert list(walk_files(folder)) == files_before
    assert not (tmp_path / "x.csv").exists()


def test_predict_works_when_tensorflow_cannot_be_imported(
    model: Path, folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results.csv"
    script = textwrap.dedent(
        """
        import sys
        from importlib.abc import MetaPathFinder

        class NoTensorFlow(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"tensorflow", "keras", "tf2onnx", "tf_keras"}:
                    raise ImportError(f"{name} is not installed here (blocked by the test)")
                return None

        sys.meta_path.insert(0, NoTensorFlow())
        from tests.engine.test_inference import predict_cli
        status = predict_cli(sys.argv[1:])
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"tensorflow", "keras"})
        assert not loaded, loaded
        sys.exit(status)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(model), str(folder), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "blocked by the test" not in result.stderr
    assert len(read_csv(out)) == 8


# -- label suggestions ------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose images are the fixture colours: one labelled, three not."""
    images = tmp_path / "project images"
    write_solid(images / "red" / "r1.png", COLOURS["red"])
    write_solid(images / "p_green.png", COLOURS["green"])
    write_solid(images / "p_blue.png", COLOURS["blue"])
    write_solid(images / "p_other.png", (90, 10, 60))  # not in the classified folder
    with ProjectStore.create(tmp_path / "project", images) as store:
        import_images(store)
        for name in RGB:
            store.ensure_class(name)
        store.set_labels([store.image_by_path("p_blue.png").id], "green")  # a user's label
    return tmp_path / "project"


def test_write_suggestions_labels_only_unlabelled_images(
    project: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ProjectStore.open(project) as store:
        project_id = store.project_id
        label_before = {i.path: i.label for i in store.images()}
    model = make_model(tmp_path / "m.onnx", RGB, project_id=project_id)
    write_solid(folder / "sub" / "copy of p_green.png", COLOURS["green"])  # unlabelled there

    status = predict_cli(
        [
            str(model),
            str(folder),
            "--out",
            str(tmp_path / "r.csv"),
            "--json",
            "--project",
            str(project),
            "--write-suggestions",
        ]
    )

    assert status == 0
    assert json.loads(capsys.readouterr().out)["suggestions"]["written"] == 1
    with ProjectStore.open(project) as store:
        labels = {i.path: i.label for i in store.images()}
        history = store.history(store.image_by_path("p_green.png").id)
    assert labels == {**label_before, "p_green.png": "green"}
    assert (history[0].new_label, history[0].source) == ("green", "model-suggestion")
    assert label_before["p_blue.png"] == "green" and label_before["red/r1.png"] == "red"


@pytest.mark.parametrize(
    ("classes", "project_id"),
    [(RGB, "another-project"), (("red", "green", "purple"), None)],
)
def test_write_suggestions_refuses_a_model_of_another_project(
    project: Path, folder: Path, tmp_path: Path, capsys, classes, project_id
) -> None:
    with ProjectStore.open(project) as store:
        store.project_id  # noqa: B018 - give the project its id
        history_before = store.history()
    model = make_model(tmp_path / "m.onnx", classes, project_id=project_id)

    status = predict_cli(
        [
            str(model),
            str(folder),
            "--out",
            str(tmp_path / "r.csv"),
            "--project",
            str(project),
            "--write-suggestions",
        ]
    )

    assert status == 1
    assert "trained for another project" in capsys.readouterr().err
    with ProjectStore.open(project) as store:
        assert store.history() == history_before
    assert not (tmp_path / "r.csv").exists()


def test_prediction_is_a_frozen_record() -> None:
    prediction = Prediction("a.png", "red", 0.9, {"red": 0.9}, None)
    with pytest.raises(AttributeError):
        prediction.label = "blue"  # type: ignore[misc]
