"""The exported ONNX model's contract: names and metadata.

Export writes, and inference reads, one ONNX file per model version:

- one input "image": uint8, N x S x S x C (N dynamic), raw pixels as
  `engine.preprocess.prepare_image` makes them; the graph scales them itself;
- outputs, in this order: "probabilities" (N x K, softmax(logits / T) with the
  version's temperature T baked in), "logits" (N x K, before temperature),
  "cam" (N x h x w x K, class activation maps whose mean over h, w equals the
  logits) and "features_1" ... "features_m" (each convolutional block's
  feature map, input to output), then, from format 2 on, "ood_score" (N: how
  unlike the training images each image is, `engine.onnx.unfamiliar`) when the
  metadata's ``unfamiliar`` says how it is computed and where it is cut;
- the metadata property "linnaeus": `OnnxMetadata` as JSON.

This module must never import TensorFlow or Keras: machines that only classify
have neither. onnx is imported only when needed; `engine.sessions` says how
onnxruntime runs the model.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from linnaeus.engine.atomic import atomic_write_bytes
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.evaluation.decision import DecisionRule
from linnaeus.engine.images.preprocess import InputFormat

if TYPE_CHECKING:
    import onnx

FORMAT_VERSION = 2  # 2: the optional "ood_score" output and "unfamiliar" metadata
METADATA_KEY = "linnaeus"
INPUT_NAME = "image"
PROBABILITIES = "probabilities"
LOGITS = "logits"
CAM = "cam"
OOD_SCORE = "ood_score"
_FEATURES_PREFIX = "features_"
_UINT8 = 2  # onnx.TensorProto.UINT8, without importing onnx


def feature_output_name(i: int) -> str:
    """The name of the ``i``-th feature map output, counting from 1: ``features_1``."""
    if i < 1:
        raise ValueError(f"feature outputs count from 1, not {i}")
    return f"{_FEATURES_PREFIX}{i}"


def output_names(feature_count: int) -> list[str]:
    """Every output of a model with ``feature_count`` feature maps, in contract order."""
    features = [feature_output_name(i) for i in range(1, feature_count + 1)]
    return [PROBABILITIES, LOGITS, CAM, *features]


class ModelFileError(LinnaeusError):
    """The file is not a Linnaeus ONNX model this version can use; the message says why."""


@dataclass(frozen=True)
class OnnxMetadata:
    """What an exported model is: its classes, input format, decision rule and origin.

    ``threshold`` (binary models only) is the decision threshold on the
    probability of ``positive_class``; ``temperature`` is already applied to
    the "probabilities" output.
    """

    format_version: int
    classes: list[str]
    input_format: dict[str, Any]  # InputFormat.to_dict(): size, channels, resize, binarize
    feature_outputs: list[str]
    feature_layers: list[str]  # the Keras layers the feature outputs come from, for display
    threshold: float | None
    positive_class: str | None
    temperature: float
    model_version: str  # "v3"
    model_kind: str  # "quick", "seed-cnn", ...
    project_id: str | None
    trained_at: str | None
    metrics: dict[str, Any]
    linnaeus_version: str
    int8: bool
    # For an int8 model: how it compared with the float model at export (`Int8Check` as a
    # dict). Optional, so files written before it existed still load.
    int8_check: dict[str, Any] | None = None
    # With an "ood_score" output: how it is computed and the cut above which an image is
    # unfamiliar (`engine.onnx.unfamiliar.Familiarity` as a dict). Optional: format 1 lacks it.
    unfamiliar: dict[str, Any] | None = None

    def decision_rule(self) -> DecisionRule:
        """How the model decides each image's class (the threshold, for two classes)."""
        return DecisionRule(tuple(self.classes), self.threshold, self.positive_class)

    def to_json(self) -> str:
        """The metadata as one JSON object."""
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> OnnxMetadata:
        """The metadata in ``text``; ModelFileError if it is not valid Linnaeus metadata.

        Fields a later Linnaeus of the same format version added are ignored.
        """
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"its Linnaeus metadata is not readable JSON ({error}).") from None
        if not isinstance(data, dict):
            raise ModelFileError("its Linnaeus metadata is not a JSON object.")
        version = data.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ModelFileError(
                f"its Linnaeus metadata has no valid format version ({version!r})."
            )
        if version > FORMAT_VERSION:
            raise ModelFileError(
                f"it was made by a newer Linnaeus (model format {version}; this Linnaeus reads "
                f"format {FORMAT_VERSION} and older). Update Linnaeus to use it."
            )
        fields = dataclasses.fields(cls)
        names = [f.name for f in fields if f.name in data or _required(f)]
        missing = [f.name for f in fields if f.name not in data and _required(f)]
        if missing:
            raise ModelFileError(f"its Linnaeus metadata lacks {', '.join(missing)}.")
        metadata = cls(**{name: data[name] for name in names})
        _check_fields(metadata)
        return metadata


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


@dataclass(frozen=True)
class Int8Check:
    """How an int8 model compared with its float model on held-out project images."""

    images: int
    agreement: float  # fraction of the images both models give the same class
    max_abs_difference: float  # largest |probability difference|
    accuracy_float: float | None  # None without labels
    accuracy_int8: float | None

    @property
    def accuracy_change(self) -> float | None:
        """accuracy(int8) - accuracy(float), or None without labels."""
        if self.accuracy_float is None or self.accuracy_int8 is None:
            return None
        return self.accuracy_int8 - self.accuracy_float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Int8Check:
        """The check in ``data`` (as `to_dict` writes it); ModelFileError if malformed."""
        try:
            check = cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})
        except (KeyError, TypeError):
            raise ModelFileError("its int8 check is incomplete.") from None
        numbers = (check.agreement, check.max_abs_difference, check.accuracy_float,
                   check.accuracy_int8)  # fmt: skip
        if not isinstance(check.images, int) or not all(
            n is None or (isinstance(n, int | float) and not isinstance(n, bool)) for n in numbers
        ):
            raise ModelFileError("its int8 check holds values that are not numbers.")
        return check

    def describe(self) -> str:
        """One line for people: agreement and accuracy change against the float model."""
        text = f"same class as the float model on {self.agreement:.1%} of {self.images} images"
        change = self.accuracy_change
        if change is not None:
            text += (
                f"; accuracy {self.accuracy_int8:.1%} (float {self.accuracy_float:.1%}, "
                f"{100 * change:+.1f} points)"
            )
        return text


def _check_fields(metadata: OnnxMetadata) -> None:
    def fail(what: str) -> None:
        raise ModelFileError(f"its Linnaeus metadata is inconsistent: {what}.")

    classes = metadata.classes
    if not isinstance(classes, list) or len(classes) < 2:
        fail("it needs a list of at least two classes")
    if not all(isinstance(c, str) for c in classes) or len(set(classes)) != len(classes):
        fail("the class names must be distinct strings")
    if not isinstance(metadata.input_format, dict):
        fail("the input format is not a mapping")
    try:
        InputFormat.from_dict(metadata.input_format)
    except (LinnaeusError, TypeError) as error:
        fail(f"bad input format ({error})")
    outputs = metadata.feature_outputs
    if not isinstance(outputs, list) or outputs != output_names(len(outputs))[3:]:
        fail("feature outputs must be named features_1, features_2, ...")
    layers = metadata.feature_layers
    if not isinstance(layers, list) or len(layers) != len(outputs):
        fail("there must be one feature layer name per feature output")
    if metadata.positive_class is not None and metadata.positive_class not in classes:
        fail(f"the positive class {metadata.positive_class!r} is not one of the classes")
    try:
        metadata.decision_rule()
    except LinnaeusError as error:
        fail(f"bad decision rule ({error})")
    temperature = metadata.temperature
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        fail("the temperature must be a number")
    if not isinstance(metadata.metrics, dict):
        fail("the metrics must be a mapping")
    if metadata.int8_check is not None:
        if not isinstance(metadata.int8_check, dict) or not metadata.int8:
            fail("an int8 check belongs to an int8 model, as a mapping")
        Int8Check.from_dict(metadata.int8_check)
    if metadata.unfamiliar is not None:
        cut = metadata.unfamiliar.get("cut") if isinstance(metadata.unfamiliar, dict) else None
        if isinstance(cut, bool) or not isinstance(cut, int | float):
            fail("the unfamiliar-image cut must be a number")


def read_metadata(path: Path) -> OnnxMetadata:
    """The Linnaeus metadata of the model file at ``path``, after checking that the file
    is a whole ONNX model with the contract's input and outputs.

    Raises ModelFileError saying what is wrong: no such file, damaged or
    truncated, made by another tool, made by a newer Linnaeus, inconsistent.
    """
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"There is no model file {path}.")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except DecodeError:
        raise ModelFileError(
            f"{path} is damaged or truncated (it cannot be read as an ONNX model); "
            "copy or export it again."
        ) from None
    except OSError as error:
        raise ModelFileError(f"{path} cannot be read: {error.strerror or error}.") from None
    if not model.ir_version or not model.graph.node:
        raise ModelFileError(
            f"{path} is not an ONNX model, or it is damaged or truncated; copy or export it again."
        )
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        if _looks_like_linnaeus(model):
            raise ModelFileError(
                f"{path} is damaged or truncated: its Linnaeus metadata is missing; "
                "copy or export it again."
            )
        raise ModelFileError(
            f"{path} is not a Linnaeus model (it has no Linnaeus metadata); was it made by "
            "another tool? Export the model from Linnaeus."
        )
    try:
        metadata = OnnxMetadata.from_json(props[METADATA_KEY])
        check_signature(model, metadata)
    except ModelFileError as error:
        raise ModelFileError(f"{path} cannot be used: {error}") from None
    return metadata


def write_decision_rule(
    path: Path, threshold: float | None, positive_class: str | None, *, model_version: str
) -> bool:
    """Write a new decision threshold and positive class into the metadata of the
    exported model at ``path`` (atomically; the graph is unchanged) if it is
    ``model_version``'s; returns whether it was."""
    import onnx

    metadata = read_metadata(path)
    if metadata.model_version != model_version:
        return False
    changed = dataclasses.replace(metadata, threshold=threshold, positive_class=positive_class)
    _check_fields(changed)
    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props} | {METADATA_KEY: changed.to_json()}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    try:
        atomic_write_bytes(path, model.SerializeToString())
    except OSError as error:
        raise ModelFileError(f"{path} cannot be written: {error.strerror or error}.") from None
    return True


def _looks_like_linnaeus(model: onnx.ModelProto) -> bool:
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    return INPUT_NAME in inputs and outputs[:3] == output_names(0)


def check_signature(model: onnx.ModelProto, metadata: OnnxMetadata) -> None:
    """ModelFileError unless ``model``'s input and outputs are those of the contract
    for ``metadata`` (names, order, input type and static sizes)."""
    initialisers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initialisers]
    if [i.name for i in inputs] != [INPUT_NAME]:
        names = ", ".join(i.name for i in inputs) or "none"
        raise ModelFileError(
            f"a Linnaeus model has exactly one input {INPUT_NAME!r}; this one has {names}."
        )
    tensor = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    fmt = InputFormat.from_dict(metadata.input_format)
    if tensor.elem_type != _UINT8 or len(dims) != 4:
        raise ModelFileError(f"its input {INPUT_NAME!r} is not a uint8 N x S x S x C tensor.")
    if any(d is not None and d != e for d, e in zip(dims[1:], fmt.shape, strict=True)):
        shape = " x ".join("?" if d is None else str(d) for d in dims[1:])
        expected = " x ".join(map(str, fmt.shape))
        raise ModelFileError(f"its input takes {shape} images but its metadata says {expected}.")
    expected_outputs = output_names(len(metadata.feature_outputs))
    if metadata.unfamiliar is not None:
        expected_outputs.append(OOD_SCORE)
    outputs = [o.name for o in model.graph.output]
    if outputs != expected_outputs:
        raise ModelFileError(
            f"its outputs are {', '.join(outputs)}; a Linnaeus model has "
            f"{', '.join(expected_outputs)}, in this order."
        )
