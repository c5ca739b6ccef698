"""Unfamiliar images: how unlike the training images an image is (its "ood_score"),
computed by the exported model itself.

A confident model is confidently wrong on an image unlike anything it saw, so
confidence cannot say "I have never seen this". Distance in the model's own
feature space can: the score of an image is one minus the mean cosine
similarity of its pooled last feature map (what the classifier's "gap" layer
sees) to its `NEIGHBOURS` nearest training images (k-nearest-neighbour
distance on normalised features, Sun et al., ICML 2022). Higher is less
familiar.

The export keeps up to `BANK_SIZE` training images' normalised features in
the ONNX graph (float16, `add_ood_output`), so the file stays self-contained:
the graph's "ood_score" output is the score, for onnxruntime or any other
runtime, and `knn_scores` computes the same in numpy.

The cut above which an image is "unfamiliar" is chosen on the validation
images' scores (or, with too few of them, on the training images', each left
out of the bank in turn): their `CUT_QUANTILE` plus `TAIL_ALLOWANCE` times its
distance from their median; for a bell-shaped spread about 6.6 standard
deviations past the median. A plain percentile would flag a fixed share of
images like the training ones, and far more when validation is easier than
the images met later: the wbc set's validation images are augmented copies of
training images, its test images originals, and the 95th percentile flagged
80% of those (bench/bench_ood.py). The 95th rather than the 99th percentile:
validation splits of 50 images have no stable 99th. It rides in the model's
metadata (`Familiarity`).

onnx, onnxruntime and NumPy only: no TensorFlow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto
from onnx import helper
from onnx import numpy_helper

from linnaeus.engine.errors import ExportError
from linnaeus.engine.onnx.format import INPUT_NAME
from linnaeus.engine.onnx.format import OOD_SCORE
from linnaeus.engine.sessions import run_output

METHOD = "knn-cosine"
BANK_SIZE = 1024  # training images whose features the model keeps (1280 x 1024 x 2 bytes)
NEIGHBOURS = 5
CUT_QUANTILE = 0.95  # of validation scores ...
TAIL_ALLOWANCE = 3.0  # ... plus this many times its distance from their median
MIN_CUT_IMAGES = 20  # fewer validation images: cut on the training images, each left out
CHOSEN_ON_VALIDATION = "validation"
CHOSEN_LEAVING_OUT = "training images, each left out"
_BANK = "ood_bank"  # the initialiser: D x B, float16
_EPSILON = 1e-12


@dataclass(frozen=True)
class Familiarity:
    """How an exported model scores unfamiliar images, and where it cuts."""

    method: str  # METHOD
    neighbours: int
    bank_images: int  # training images whose features the model keeps
    cut: float  # an image whose ood_score is above this is unfamiliar
    cut_quantile: float
    cut_images: int  # images the cut was chosen on
    chosen_on: str  # CHOSEN_ON_VALIDATION or CHOSEN_LEAVING_OUT
    tail_allowance: float = 0.0  # cut = quantile + allowance x (quantile - median)
    median_score: float | None = None  # of the images the cut was chosen on

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Familiarity:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    def is_unfamiliar(self, scores: np.ndarray) -> np.ndarray:
        """Whether each score is above the cut."""
        return np.asarray(scores) > self.cut


# --- the score, in numpy -------------------------------------------------------------------


def normalise(features: np.ndarray) -> np.ndarray:
    """Rows of ``features`` scaled to unit length (float32), as the graph does."""
    features = np.asarray(features, np.float32)
    norms = np.sqrt(np.sum(features * features, axis=1, keepdims=True))
    return features / np.maximum(norms, np.float32(_EPSILON))


def make_bank(features: np.ndarray, size: int = BANK_SIZE, seed: int = 0) -> np.ndarray:
    """The kept training features: up to ``size`` rows of ``features`` (a random
    choice when there are more), normalised and rounded to float16 as stored."""
    features = np.asarray(features, np.float32)
    if len(features) == 0:
        raise ExportError("Unfamiliar images are judged against training images; there are none.")
    if len(features) > size:
        rows = np.sort(np.random.default_rng(seed).choice(len(features), size, replace=False))
        features = features[rows]
    return normalise(features).astype(np.float16)


def knn_scores(
    features: np.ndarray, bank: np.ndarray, neighbours: int = NEIGHBOURS, *, leave_out: bool = False
) -> np.ndarray:
    """The ood_score of each row of ``features`` (pooled feature vectors, N x D)
    against ``bank`` (B x D, as `make_bank` keeps it): one minus the mean cosine
    similarity to its ``neighbours`` nearest rows. ``leave_out`` scores the bank's
    own rows (``features`` is then the bank) without each one's own row."""
    bank32 = np.asarray(bank, np.float32)
    similarities = normalise(features) @ bank32.T
    if leave_out:
        np.fill_diagonal(similarities, -np.inf)
    k = min(neighbours, bank32.shape[0] - int(leave_out))
    if k < 1:
        return np.zeros(len(similarities), np.float32)
    nearest = -np.partition(-similarities, k - 1, axis=1)[:, :k]
    return (np.float32(1.0) - nearest.mean(axis=1, dtype=np.float32)).astype(np.float32)


def choose_cut(
    bank: np.ndarray,
    held_out: np.ndarray | None,
    neighbours: int = NEIGHBOURS,
    quantile: float = CUT_QUANTILE,
    allowance: float = TAIL_ALLOWANCE,
) -> Familiarity:
    """The cut at ``quantile`` of the held-out images' scores (``held_out``: their
    pooled features) plus ``allowance`` times its distance from their median; on
    the bank's own images left out in turn when there are fewer than
    `MIN_CUT_IMAGES` held-out images."""
    k = min(neighbours, len(bank))
    if held_out is not None and len(held_out) >= MIN_CUT_IMAGES:
        scores, chosen_on = knn_scores(held_out, bank, k), CHOSEN_ON_VALIDATION
    else:
        scores, chosen_on = knn_scores(bank, bank, k, leave_out=True), CHOSEN_LEAVING_OUT
    if len(scores) == 0:  # a single training image: nothing to compare with
        return Familiarity(METHOD, k, len(bank), 1.0, quantile, 0, chosen_on, allowance, None)
    high, median = float(np.quantile(scores, quantile)), float(np.median(scores))
    cut = high + allowance * max(high - median, 0.0)
    return Familiarity(METHOD, k, len(bank), cut, quantile, len(scores), chosen_on, allowance,
                       median)  # fmt: skip


# --- the score, in the exported graph ------------------------------------------------------


def pooled_features(model: bytes, feature_output: str, images: np.ndarray) -> np.ndarray:
    """The serialised contract model's ``feature_output`` (its last feature map)
    averaged over the map, for ``images``: what "gap" sees (N x D float32)."""
    features = run_output(model, feature_output, images, input_name=INPUT_NAME)
    return features.astype(np.float32).mean(axis=(1, 2))


def add_ood_output(
    model: onnx.ModelProto, feature_output: str, bank: np.ndarray, neighbours: int
) -> None:
    """Append the "ood_score" output to ``model`` (in place): `knn_scores` of the
    average of ``feature_output`` over its map against ``bank``."""
    graph = model.graph
    if any(output.name == OOD_SCORE for output in graph.output):
        raise ExportError("The model already has an ood_score output.")
    k = min(neighbours, len(bank))
    graph.initializer.extend([
        numpy_helper.from_array(np.ascontiguousarray(np.asarray(bank, np.float16).T), _BANK),
        numpy_helper.from_array(np.array([k], np.int64), "ood_k"),
        numpy_helper.from_array(np.array(_EPSILON, np.float32), "ood_epsilon"),
        numpy_helper.from_array(np.array(1.0, np.float32), "ood_one"),
    ])  # fmt: skip
    graph.node.extend([
        helper.make_node("ReduceMean", [feature_output], ["ood_pooled"], axes=[1, 2], keepdims=0),
        helper.make_node("ReduceL2", ["ood_pooled"], ["ood_norm"], axes=[1], keepdims=1),
        helper.make_node("Max", ["ood_norm", "ood_epsilon"], ["ood_safe_norm"]),
        helper.make_node("Div", ["ood_pooled", "ood_safe_norm"], ["ood_unit"]),
        helper.make_node("Cast", [_BANK], ["ood_bank_float"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["ood_unit", "ood_bank_float"], ["ood_similarity"]),
        helper.make_node("TopK", ["ood_similarity", "ood_k"], ["ood_nearest", "ood_nearest_at"],
                         axis=1, largest=1),
        helper.make_node("ReduceMean", ["ood_nearest"], ["ood_mean"], axes=[1], keepdims=0),
        helper.make_node("Sub", ["ood_one", "ood_mean"], [OOD_SCORE]),
    ])  # fmt: skip
    graph.output.append(helper.make_tensor_value_info(OOD_SCORE, TensorProto.FLOAT, ["N"]))
    onnx.checker.check_model(model)


def kept_bank(model: onnx.ModelProto) -> np.ndarray:
    """The training features an exported model keeps (B x D float16), for
    `knn_scores`; ExportError if it keeps none."""
    for initialiser in model.graph.initializer:
        if initialiser.name == _BANK:
            return numpy_helper.to_array(initialiser).T
    raise ExportError("This model keeps no training features (export it again).")


def score_images(model: bytes, images: np.ndarray) -> np.ndarray:
    """The serialised model's "ood_score" output for ``images``, on the CPU."""
    return run_output(model, OOD_SCORE, images, input_name=INPUT_NAME)


def familiarise(
    model: onnx.ModelProto,
    feature_output: str,
    training_images: np.ndarray,
    held_out_images: np.ndarray | None,
) -> Familiarity:
    """Give the float contract ``model`` its "ood_score" output (in place), from the
    features of up to `BANK_SIZE` of ``training_images``, and choose the cut on
    ``held_out_images`` (prepared uint8 images; None or few: leave-one-out)."""
    data = model.SerializeToString()
    if len(training_images) > BANK_SIZE:
        rows = np.random.default_rng(0).choice(len(training_images), BANK_SIZE, replace=False)
        training_images = training_images[np.sort(rows)]
    bank = make_bank(pooled_features(data, feature_output, training_images))
    held_out = None
    if held_out_images is not None and len(held_out_images) >= MIN_CUT_IMAGES:
        held_out = pooled_features(data, feature_output, held_out_images)
    familiarity = choose_cut(bank, held_out)
    add_ood_output(model, feature_output, bank, familiarity.neighbours)
    return familiarity
