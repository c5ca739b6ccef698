"""Class activation maps apply to every Linnaeus model; anything else is refused clearly."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import onnx
import pytest

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.onnx.format import ModelFileError
from linnaeus.engine.onnx.inference import Classifier
from linnaeus.engine.training.keras_explanation import class_activation_maps
from linnaeus.engine.training.models import MODEL_KINDS
from linnaeus.engine.training.models import ModelSpec
from linnaeus.engine.training.models import build_classifier
from tests.onnx_factory import make_model


@pytest.mark.parametrize("kind", [k for k in MODEL_KINDS if k != "transfer"])
def test_cam_of_every_from_scratch_kind_averages_to_its_probabilities(kind: str) -> None:
    model = build_classifier(ModelSpec(kind, 3, image_size=32))
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)

    cams, probabilities = class_activation_maps(model, pixels)

    logits = cams.mean(axis=(1, 2))  # CAM identity: the mean of a class map is its logit
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        softmax / softmax.sum(axis=1, keepdims=True), probabilities, atol=1e-5
    )


def test_a_keras_model_without_the_linnaeus_head_is_refused_with_a_reason() -> None:
    image = keras.Input((32, 32, 3), dtype="uint8")
    x = keras.layers.Conv2D(4, 3, name="block1")(keras.layers.Rescaling(1 / 255)(image))
    x = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(image, x, name="flat")

    with pytest.raises(LinnaeusError, match="class activation maps need a model that ends in gap"):
        class_activation_maps(model, np.zeros((1, 32, 32, 3), np.uint8))


def test_an_onnx_file_without_the_cam_output_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = make_model(tmp_path / "m.onnx")
    model = onnx.load(path)
    kept = [output for output in model.graph.output if output.name != "cam"]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    onnx.save(model, path)

    with pytest.raises(ModelFileError, match="a Linnaeus model has probabilities, logits, cam"):
        Classifier(path)
