"""Which model file classified the images: float or int8, and what int8 cost; threads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from linnaeus.engine.onnx.format import Int8Check
from linnaeus.engine.onnx.format import ModelFileError
from linnaeus.engine.onnx.format import read_metadata
from linnaeus.engine.onnx.inference import Classifier
from tests.engine.conftest import RGB
from tests.engine.conftest import predict_cli
from tests.engine.conftest import write_solid
from tests.onnx_factory import make_model
from tests.onnx_factory import metadata_json

CHECK = Int8Check(
    images=500, agreement=0.994, max_abs_difference=0.02, accuracy_float=0.91, accuracy_int8=0.906
)


def _with_metadata(path: Path, data: dict) -> Path:
    model = onnx.load(path)
    del model.metadata_props[:]
    helper.set_model_props(model, {"linnaeus": json.dumps(data)})
    onnx.save(model, path)
    return path


def test_a_float_model_says_so(tmp_path: Path) -> None:
    classifier = Classifier(make_model(tmp_path / "m.onnx", RGB))
    assert classifier.precision == "float32" and classifier.int8_check is None


def test_an_int8_model_carries_its_comparison_with_the_float_model(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m.onnx", RGB, int8=True, int8_check=CHECK.to_dict())

    classifier = Classifier(path)

    assert classifier.precision == "int8" and classifier.int8_check == CHECK
    assert CHECK.accuracy_change == pytest.approx(-0.004)
    text = CHECK.describe()
    assert "99.4% of 500 images" in text and "-0.4 points" in text and "float 91.0%" in text


def test_a_model_exported_before_the_int8_check_still_loads(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m.onnx", RGB, int8=True)
    data = metadata_json(path)
    del data["int8_check"]
    _with_metadata(path, data)

    classifier = Classifier(path)

    assert classifier.precision == "int8" and classifier.int8_check is None


@pytest.mark.parametrize(
    ("int8", "check", "message"),
    [
        (False, CHECK.to_dict(), "belongs to an int8 model"),
        (True, {"images": 3}, "incomplete"),
        (True, {**CHECK.to_dict(), "agreement": "high"}, "not numbers"),
    ],
)
def test_a_malformed_int8_check_is_refused(
    tmp_path: Path, int8: bool, check: dict, message: str
) -> None:
    path = make_model(tmp_path / "m.onnx", RGB, int8=int8)
    _with_metadata(path, {**metadata_json(path), "int8_check": check})
    with pytest.raises(ModelFileError, match=message):
        read_metadata(path)


@pytest.mark.parametrize("int8_check", [CHECK.to_dict(), None])
def test_predict_says_which_precision_classified_the_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], int8_check: dict | None
) -> None:
    model = make_model(tmp_path / "m.onnx", RGB, int8=True, int8_check=int8_check)
    write_solid(tmp_path / "images" / "a.png", (220, 20, 20))
    out = tmp_path / "out.csv"

    assert predict_cli([str(model), str(tmp_path / "images"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert predict_cli([str(model), str(tmp_path / "images"), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)

    assert "int8" in text.splitlines()[0]
    assert summary["precision"] == "int8" and summary["int8_check"] == int8_check
    if int8_check:
        assert "same class as the float model on 99.4% of 500 images" in text
    else:
        assert "not recorded" in text


def test_predict_pixels_on_several_threads_equals_one_thread(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m.onnx", RGB)
    images = np.random.default_rng(0).integers(0, 256, (9, 16, 16, 3), dtype=np.uint8)

    together = Classifier(path, threads=3).predict_pixels(images)
    alone = Classifier(path, threads=1).predict_pixels(images)

    np.testing.assert_allclose(together, alone, atol=1e-6)
    assert together.shape == (9, 3)


def test_classify_folder_keeps_the_order_with_many_workers(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    colours = [(220, 20, 20), (20, 220, 20), (20, 20, 220)]
    for i in range(23):
        write_solid(folder / f"{i:02d}.png", colours[i % 3])
    classifier = Classifier(make_model(tmp_path / "m.onnx", RGB), threads=4)

    predictions = list(classifier.classify_folder(folder, batch_size=2))

    assert [p.path for p in predictions] == [f"{i:02d}.png" for i in range(23)]
    assert [p.label for p in predictions] == [RGB[i % 3] for i in range(23)]
