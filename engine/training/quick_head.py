"""The quick model's training: a new last layer fitted on cached backbone features.

The quick model is the transfer classifier (`models.build_classifier`) with its
backbone left as ImageNet trained it; only its "logits" layer is learned, as a
multinomial logistic regression (scikit-learn) on the examples' backbone
features (`engine.training.features`): seconds, not minutes. The L2 strength is
chosen by validation loss among `HEAD_STRENGTHS` (or fixed by the config's
``l2``), and the fitted weights become the Keras layer's, so the result is one
ordinary Keras model (and later one ONNX file). The same layer in numpy,
`head_probabilities`, gives the quick model's predictions from the cached
features without a pass through the network.

`runs` builds the model and computes the features; this module fits and applies
the layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras
import numpy as np
from threadpoolctl import threadpool_limits

from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import curve_key
from linnaeus.engine.training.data import batch_plan

if TYPE_CHECKING:
    from linnaeus.engine.training.runs import _Context

HEAD_STRENGTHS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # inverse L2 strengths tried


def fit_head(
    context: _Context, model: keras.Model, embeddings: np.ndarray
) -> dict[str, list[float]]:
    """Fit ``model``'s last layer, as a multinomial logistic regression on the
    examples' backbone features ``embeddings``; returns its curves.

    The regularisation strength is chosen by validation loss; the fitted
    weights become the model's "logits" layer.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    config = context.config
    n = context.num_classes
    labels = context.loaded.examples.labels
    train, val = context.positions("train"), context.positions("val")
    if context.balance != "none":
        train = train[np.concatenate(_plan(labels[train], context))]
    class_weight = "balanced" if config.imbalance == "class-weights" else None
    strengths = [1.0 / (config.l2 * len(train))] if config.l2 else list(HEAD_STRENGTHS)
    head = LogisticRegression(max_iter=3000, class_weight=class_weight, warm_start=True)
    metrics = ("C", "val_loss", "val_accuracy")
    curves: dict[str, list[float]] = {curve_key("head", metric): [] for metric in metrics}
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for step, strength in enumerate(strengths, start=1):
        check_cancelled(context.cancel)
        head.set_params(C=strength)
        # One BLAS thread: with two, each iteration took ~5x longer on a 2-core machine
        # where anything else ran (OpenBLAS threads spin waiting for each other).
        with threadpool_limits(1):
            head.fit(embeddings[train], labels[train])
        probabilities = head.predict_proba(embeddings[val])
        loss = float(log_loss(labels[val], probabilities, labels=list(range(n))))
        accuracy = float(np.mean(head.classes_[probabilities.argmax(1)] == labels[val]))
        for metric, value in zip(metrics, (strength, loss, accuracy), strict=True):
            curves[curve_key("head", metric)].append(value)
        if best is None or loss < best[0]:
            best = (loss, head.coef_.copy(), head.intercept_.copy())
        context.on_progress(TrainingProgress(
            stage="head", done=step, total=len(strengths), phase="head", epoch=step,
            epochs=len(strengths), val_loss=loss, val_accuracy=accuracy,
            message=f"Fitting the new last layer ({step} of {len(strengths)})",
        ))  # fmt: skip
    assert best is not None
    kernel, bias = _dense_weights(best[1], best[2], head.classes_, n)
    model.get_layer("logits").set_weights([kernel, bias])
    return curves


def _dense_weights(
    coef: np.ndarray, intercept: np.ndarray, fitted: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """A softmax Dense layer's (kernel, bias) equal to a fitted logistic regression."""
    if coef.shape[0] == 1:  # binary: sigmoid(w.x + b) == softmax([0, w.x + b])
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    kernel = np.zeros((coef.shape[1], n), np.float32)
    bias = np.full(n, -1e4, np.float32)  # a class absent from training is never predicted
    kernel[:, fitted] = coef.T
    bias[fitted] = intercept
    return kernel, bias


def _plan(labels: np.ndarray, context: _Context) -> list[np.ndarray]:
    return batch_plan(
        labels, batch_size=len(labels), epoch=0, seed=context.config.seed, balance=context.balance
    )


def head_probabilities(model: keras.Model, embeddings: np.ndarray) -> np.ndarray:
    """The model's class probabilities from its backbone features: its last layer
    (all the quick model trained), in float64."""
    kernel, bias = model.get_layer("logits").get_weights()
    logits = embeddings.astype(np.float64) @ kernel + bias
    logits -= logits.max(axis=1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
