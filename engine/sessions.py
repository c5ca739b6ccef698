"""onnxruntime as Linnaeus runs it: which execution providers, how many threads,
and batches worked on side by side.

Classifying a folder (`engine.onnx.inference`) and computing the quick model's
backbone features (`engine.training.features`) both run a model over many small
batches: one worker thread per physical core, each calling one shared session
with one intra-op thread, a few batches queued ahead. On a 2-core CPU this beat
one call using both cores (bench/bench_predict.py): no core waits for another.
`run_output` is the plain way, for the export's checks: one output of a model
over images, batch after batch, on the CPU.

Never imports TensorFlow; onnxruntime is imported only when a session is made.

`remote_runner`, when set (``linnaeus train --ray``: `engine.cluster.features`),
runs the quick model's backbone elsewhere instead of in this process's sessions.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import numpy as np

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import check_cancelled

if TYPE_CHECKING:
    import onnxruntime

# Best first; onnxruntime runs the nodes a provider cannot on the next one in the list.
PROVIDER_PREFERENCE = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)
BATCHES_AHEAD = 2  # batches queued per worker, so none waits for the next one

# Given an ONNX model (its bytes or its path): a function computing it on a batch,
# a description of where it runs, and how many batches to hand it at once.
RemoteRun = tuple[Callable[[Any], Any], str, int]
remote_runner: ContextVar[Callable[[bytes | str], RemoteRun] | None] = ContextVar(
    "remote_runner", default=None
)

Item = TypeVar("Item")
Result = TypeVar("Result")


def physical_cores() -> int:
    """The number of physical CPU cores this process may use (logical CPUs if unknown)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in allowed:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            return max(1, len(allowed))
        cores.add((package, core))
    return max(1, len(cores) or len(allowed))


def session_options(threads: int | None = None) -> onnxruntime.SessionOptions:
    """onnxruntime options for Linnaeus models: every graph optimisation (on the CPU
    this includes the blocked NCHWc convolution layout), ``threads`` intra-op
    threads (default: the physical cores), one inter-op thread, sequential
    execution, and idle threads that sleep instead of spinning (spinning threads
    fight the image-decoding threads for the cores: batch-1 runs were up to 2x
    slower on a busy 2-core machine)."""
    import onnxruntime

    if threads is not None and threads < 1:
        raise LinnaeusError(f"The number of threads must be at least 1, not {threads}.")
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or physical_cores()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def choose_providers(available: Sequence[str], requested: Sequence[str] | None = None) -> list[str]:
    """The execution providers to use, best first: ``requested`` (default
    `PROVIDER_PREFERENCE`) restricted to those ``available``, the CPU last."""
    wanted = PROVIDER_PREFERENCE if requested is None else tuple(requested)
    chosen = [name for name in wanted if name in available]
    if requested is not None and not chosen:
        raise LinnaeusError(
            f"None of the execution providers {', '.join(wanted)} is available here "
            f"(available: {', '.join(available)})."
        )
    if "CPUExecutionProvider" in available and "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def run_output(
    model: bytes | str,
    output: str,
    images: np.ndarray,
    *,
    input_name: str,
    batch_size: int = 16,
) -> np.ndarray:
    """The ``output`` of ``model`` (an ONNX model's bytes or path) for ``images``
    fed to its ``input_name``, ``batch_size`` at a time, on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(
        model, sess_options=session_options(), providers=["CPUExecutionProvider"]
    )
    batches = [
        session.run([output], {input_name: images[start : start + batch_size]})[0]
        for start in range(0, len(images), batch_size)
    ]
    if batches:
        return np.concatenate(batches)
    shape = next((o.shape[1:] for o in session.get_outputs() if o.name == output), [])
    return np.zeros((0, *(d if isinstance(d, int) else 0 for d in shape)), np.float32)


def in_order(
    work: Callable[[Item], Result],
    items: Iterable[Item],
    *,
    workers: int,
    cancel: CancelToken | None = None,
    name: str = "linnaeus-batches",
) -> Iterator[Result]:
    """``work(item)`` of every item, in the items' order, computed on ``workers``
    threads a few items ahead of the caller.

    Cancelling stops before the next result (raises `Cancelled`); when the
    caller stops early, queued items are dropped and running ones finish.
    """
    queue = iter(items)
    pending: deque[Future[Result]] = deque()
    with ThreadPoolExecutor(workers, name) as pool:
        try:
            while True:
                check_cancelled(cancel)
                while len(pending) < workers * BATCHES_AHEAD:
                    item = next(queue, _END)
                    if item is _END:
                        break
                    pending.append(pool.submit(work, item))  # type: ignore[arg-type]
                if not pending:
                    return
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


_END = object()
