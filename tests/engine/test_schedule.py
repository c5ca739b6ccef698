"""The learning-rate plan the epoch loop follows (`engine.training.schedule`)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from linnaeus.engine.training.schedule import WarmupCosine


@pytest.mark.parametrize("warmup", [0, 7])
def test_the_plan_is_keras_cosine_decay_with_its_warm_up(warmup: int) -> None:
    peak, total = 1e-3, 50
    if warmup:
        keras_schedule = keras.optimizers.schedules.CosineDecay(
            peak / 10, decay_steps=total - warmup, alpha=0.05,
            warmup_target=peak, warmup_steps=warmup,
        )  # fmt: skip
    else:
        keras_schedule = keras.optimizers.schedules.CosineDecay(peak, total, alpha=0.05)
    plan = WarmupCosine(peak, total_steps=total, warmup_steps=warmup)
    steps = range(0, total + 10)
    expected = [float(keras_schedule(step)) for step in steps]
    assert np.allclose([plan.rate(step) for step in steps], expected, rtol=1e-5)


def test_a_shortened_plan_still_ends_its_decay_and_grows_back_only_to_the_first() -> None:
    plan = WarmupCosine(1e-3, total_steps=100, warmup_steps=10)
    plan.plan_for(40)
    assert plan.rate(40) == pytest.approx(0.05e-3) and plan.rate(39) > plan.rate(40)
    plan.plan_for(60)
    assert plan.total_steps == 60
    plan.plan_for(400)
    assert plan.total_steps == 100


def test_a_checkpoint_saved_with_its_own_keras_schedule_resumes_on_it() -> None:
    from linnaeus.engine.training import runs
    from linnaeus.engine.training.callbacks import TrainState
    from linnaeus.engine.training.config import TrainConfig

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    config, state = TrainConfig(epochs=3, learning_rate=1e-3), TrainState("train", planned_epochs=2)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, 30)))
    assert runs._schedule(model, config, state, 10, tuning=False) is None
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    plan = runs._schedule(model, config, state, 10, tuning=True)
    assert plan is not None and plan.total_steps == 20  # the plan a deadline shortened
    assert plan.warmup_steps == round(runs.FINE_TUNE_WARMUP_EPOCHS * 10)


def test_the_epoch_loop_sets_the_optimizer_rate_from_the_plan_at_every_step() -> None:
    import tensorflow as tf

    from linnaeus.engine.training.loop import fit

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1.0), loss=keras.losses.CategoricalCrossentropy())
    x, y = np.ones((8, 2), np.float32), np.eye(2, dtype=np.float32)[[0, 1] * 4]
    data = tf.data.Dataset.from_tensor_slices((x, y, np.ones(8, np.float32))).batch(4).repeat()
    seen: list[float] = []

    class Rates(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None) -> None:
            seen.append(float(self.model.optimizer.learning_rate))

    plan = WarmupCosine(1e-2, total_steps=6, warmup_steps=2)
    fit(model, data, validation_data=data.take(2), epochs=3, initial_epoch=0,
        steps_per_epoch=2, callbacks=[Rates()], schedule=plan)  # fmt: skip
    assert np.allclose(seen, [plan.rate(step) for step in range(6)], rtol=1e-6)
    assert int(model.optimizer.iterations.numpy()) == 6
