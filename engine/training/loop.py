"""Epoch training as a custom step under the training's distribution strategy:
one code path for one device, several GPUs (MirroredStrategy) and several
machines (MultiWorkerMirroredStrategy).

``model.fit`` fails under MultiWorkerMirroredStrategy with Keras 3.15 and
TensorFlow 2.21 ("Attempt to convert a value (PerReplica...) to a Tensor",
keras-team/keras#20585); a step run by ``strategy.run``, with the loss averaged
over the global batch (``tf.nn.compute_average_loss``) and the compiled model's
optimizer (built in ``strategy.scope()``, which sums the replicas' gradients)
does not. `fit` keeps ``model.fit``'s contract for Linnaeus' callbacks
(`engine.training.callbacks`): epoch and batch hooks, ``loss``, ``accuracy``,
``val_loss`` and ``val_accuracy`` in the logs, ``model.stop_training``.

Every replica sees the same batches as one device would (the pipeline's batch
plan is seeded, so every worker makes the same one) and takes its slice of
each: the global batch, and so the learning, is the same whatever the number of
replicas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from linnaeus.engine.training.schedule import WarmupCosine


def fit(
    model: keras.Model,
    train_data: tf.data.Dataset,
    *,
    validation_data: tf.data.Dataset,
    epochs: int,
    initial_epoch: int,
    steps_per_epoch: int,
    callbacks: Sequence[keras.callbacks.Callback],
    schedule: WarmupCosine | None = None,
) -> None:
    """``model.fit`` for a compiled ``model`` whose batches are (images, one-hot
    labels, sample weights), under the strategy the model was built in. With a
    ``schedule``, the optimizer's rate is set from it before every step; the
    callbacks find it in their ``params["schedule"]`` (a deadline fits it to the budget)."""
    strategy = tf.distribute.get_strategy()
    train_step = _train_step(model, strategy)
    eval_step = _eval_step(model, strategy)
    batches = iter(_distribute(strategy, train_data))
    params = {"verbose": 0, "epochs": epochs, "steps": steps_per_epoch, "schedule": schedule}
    for callback in callbacks:
        callback.set_model(model)
        callback.set_params(params)
        callback.on_train_begin()
    iteration = int(model.optimizer.iterations.numpy())
    model.stop_training = False
    for epoch in range(initial_epoch, epochs):
        for callback in callbacks:
            callback.on_epoch_begin(epoch)
        totals = tf.zeros(4)
        for step in range(steps_per_epoch):
            if schedule is not None:
                model.optimizer.learning_rate = schedule.rate(iteration)
            totals += train_step(batches)
            iteration += 1
            logs = _logs(totals)
            for callback in callbacks:
                callback.on_train_batch_end(step, logs)
            if model.stop_training:  # as fit: the epoch ends here, validated
                break
        logs |= _validate(strategy, eval_step, validation_data, callbacks)
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for callback in callbacks:
        callback.on_train_end()


def _validate(
    strategy: tf.distribute.Strategy,
    eval_step: Any,
    data: tf.data.Dataset,
    callbacks: Sequence[keras.callbacks.Callback],
) -> dict[str, float]:
    """The ``val_`` figures of ``data`` (none without validation images, as fit)."""
    for callback in callbacks:
        callback.on_test_begin()
    totals = tf.zeros(4)
    for batch in _distribute(strategy, data):
        totals += eval_step(batch)
    logs = {f"val_{k}": v for k, v in _logs(totals).items()} if float(totals[3]) > 0 else {}
    for callback in callbacks:
        callback.on_test_end(logs)
    return logs


def _logs(totals: tf.Tensor) -> dict[str, float]:
    """`_summed`'s totals -> the mean loss and the (weighted) accuracy."""
    loss, correct, weights, images = (float(value) for value in totals.numpy())
    return {"loss": loss / max(images, 1.0), "accuracy": correct / max(weights, 1e-12)}


def _distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset) -> Any:
    """Each replica's slice of every batch of ``dataset``, with the batch's size."""

    def per_replica(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = context.num_replicas_in_sync // context.num_input_pipelines
        first = context.input_pipeline_id * local
        replicas = context.num_replicas_in_sync

        def slices(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor) -> tf.data.Dataset:
            size = tf.shape(x)[0]
            parts = [
                tf.data.Dataset.from_tensors((x[r::replicas], y[r::replicas], w[r::replicas], size))
                for r in range(first, first + local)
            ]
            for part in parts[1:]:  # the local replicas take their slices in turn
                parts[0] = parts[0].concatenate(part)
            return parts[0]

        if local == 1 and replicas == 1:
            return dataset.map(lambda x, y, w: (x, y, w, tf.shape(x)[0]))
        return dataset.flat_map(slices)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(per_replica, options)


def _summed(
    model: keras.Model, x: tf.Tensor, y: tf.Tensor, w: tf.Tensor, training: bool
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One slice's weighted per-example losses, its layers' penalty (L1/L2), and
    its totals as ``model.fit`` logs them: (loss sum with the penalty once per
    image, weighted correct predictions, summed weights, images)."""
    predicted = tf.cast(model(x, training=training), tf.float32)
    losses = model.loss.call(y, predicted) * w
    penalty = tf.add_n(model.losses) if model.losses else tf.constant(0.0)
    right = tf.cast(tf.argmax(predicted, -1) == tf.argmax(y, -1), tf.float32)
    count = tf.cast(tf.shape(x)[0], tf.float32)
    totals = tf.stack(
        [tf.reduce_sum(losses) + penalty * count, tf.reduce_sum(right * w), tf.reduce_sum(w), count]
    )
    return losses, penalty, totals


def _train_step(model: keras.Model, strategy: tf.distribute.Strategy) -> Any:
    optimizer = model.optimizer
    if not optimizer.built:  # its variables made here, in the strategy's scope, not in a replica
        optimizer.build(model.trainable_variables)

    def step(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            losses, penalty, totals = _summed(model, x, y, w, training=True)
            loss = tf.nn.compute_average_loss(losses, global_batch_size=size)
            loss += tf.nn.scale_regularization_loss(penalty)  # once over all replicas
            scaled = optimizer.scale_loss(loss)
        variables = model.trainable_variables
        gradients = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return totals

    return _summed_over_replicas(strategy, step, from_iterator=True)


def _eval_step(model: keras.Model, strategy: tf.distribute.Strategy) -> Any:
    def step(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
        return _summed(model, x, y, w, training=False)[2]

    return _summed_over_replicas(strategy, step)


def _summed_over_replicas(
    strategy: tf.distribute.Strategy, step: Any, *, from_iterator: bool = False
) -> Any:
    """``step`` on every replica as one traced function, its totals summed; with
    ``from_iterator`` it takes the next batch itself (no Python between steps)."""

    @tf.function
    def run(batches: Any) -> tf.Tensor:
        batch = next(batches) if from_iterator else batches
        totals = strategy.run(step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, totals, axis=None)

    return run
