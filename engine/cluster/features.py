"""The quick model's backbone features computed on a Ray cluster: ``linnaeus train --ray``.

Training stays on this machine and so does the project's feature cache
(`engine.training.features`): only the images whose features are not cached
yet are sent, in the same small batches as on one machine, to a pool of Ray
actors, each running the converted backbone (the ONNX file the training
converts once per backbone) in an onnxruntime session of one thread. The
features come back and are cached by content as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from linnaeus.engine.cluster.runtime import ActorPool
from linnaeus.engine.sessions import RemoteRun
from linnaeus.engine.sessions import choose_providers
from linnaeus.engine.sessions import remote_runner
from linnaeus.engine.sessions import session_options


class FeatureActor:
    """One Ray actor: the converted backbone in an onnxruntime session of one thread."""

    def __init__(self, model: bytes) -> None:
        import onnxruntime

        providers = choose_providers(onnxruntime.get_available_providers())
        self.session = onnxruntime.InferenceSession(
            model, sess_options=session_options(1), providers=providers
        )
        self.input = self.session.get_inputs()[0].name

    def provider(self) -> str:
        return self.session.get_providers()[0]

    def compute(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: np.ascontiguousarray(pixels)})[0]


@contextmanager
def features_on_ray(workers: int) -> Iterator[None]:
    """For the ``with`` block (on this thread), backbone features are computed by
    ``workers`` Ray actors, started when the first image's features are needed
    and ended with the block."""
    pools: list[ActorPool] = []

    def run(model: bytes | str) -> RemoteRun:
        data = model if isinstance(model, bytes) else Path(model).read_bytes()
        pool = ActorPool(FeatureActor, workers, data)
        pools.append(pool)
        provider = ", ".join(sorted(set(pool.each("provider"))))

        def compute(pixels: np.ndarray) -> Any:
            return pool.call("compute", pixels)

        return compute, f"onnxruntime ({provider}) on {workers} Ray workers", pool.threads

    token = remote_runner.set(run)
    try:
        yield
    finally:
        remote_runner.reset(token)
        for pool in pools:
            pool.close()
