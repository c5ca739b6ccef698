"""Choosing where training runs: GPUs with mixed precision when present, else CPU.

The same code scales out: one device, several GPUs on one machine
(MirroredStrategy), or several machines described by ``TF_CONFIG``
(MultiWorkerMirroredStrategy: `engine.training.workers`). Epoch training runs
as a custom step under the strategy (`engine.training.loop`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceSetup:
    """What training will run on, for the user and for the model version."""

    description: str
    strategy: Any  # tf.distribute.Strategy
    mixed_precision: bool
    replicas: int
    gpus: int = 0  # GPUs TensorFlow sees on this machine


def configure_devices(*, mixed_precision: bool | None = None) -> DeviceSetup:
    """Set up TensorFlow for training and return the strategy to build models in.

    GPUs get memory growth (so one training does not take all GPU memory) and,
    unless ``mixed_precision`` is False, the mixed_float16 policy.
    """
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised in this process
            log.debug("memory growth could not be set for %s", gpu.name)
    use_mixed = bool(gpus) if mixed_precision is None else mixed_precision and bool(gpus)
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mixed else "float32")

    if _multi_worker_config():
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        where = f"{strategy.num_replicas_in_sync} replicas on several machines (TF_CONFIG)"
    elif len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        where = f"{len(gpus)} GPUs"
    else:
        strategy = tf.distribute.get_strategy()
        where = _gpu_name(tf, gpus[0]) if gpus else f"CPU ({os.cpu_count()} cores)"
    if use_mixed:
        where += ", mixed precision"
    return DeviceSetup(where, strategy, use_mixed, strategy.num_replicas_in_sync, len(gpus))


def _multi_worker_config() -> bool:
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "") or "{}")
    except ValueError:
        return False
    return len(config.get("cluster", {}).get("worker", [])) > 1


def _gpu_name(tf: Any, gpu: Any) -> str:
    try:
        details = tf.config.experimental.get_device_details(gpu)
    except (RuntimeError, ValueError):
        details = {}
    return f"GPU ({details.get('device_name', gpu.name)})"
