"""Connecting to a Ray cluster, or starting a small local one, and calling a pool
of Ray actors from worker threads.

``--ray local`` starts a Ray runtime on this machine with a few CPUs and no
dashboard, and shuts it down afterwards; any other address (``auto``,
``HOST:6379``, ``ray://HOST:10001``) joins a running cluster and leaves it
running. Every node must have the same Linnaeus installed (with the
``cluster`` extra), and the same Python.

The work itself is split where it is today: the single-machine code hands
small batches to worker threads (`engine.sessions.in_order`), which keeps
the order, the progress reports and the cancelling. Spread over Ray, each of
those threads hands its batch to the next actor of an `ActorPool` and waits
for the answer: the same batches, the same order, the same results.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.sessions import physical_cores

log = logging.getLogger(__name__)

LOCAL = "local"
LOCAL_CPUS = 2  # a local runtime's CPUs at most: one actor each
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024  # batches in flight are a few MB
CALLS_AHEAD = 2  # calls queued per actor, so none waits for the next batch
INSTALL_HINT = "pip install 'linnaeus[cluster]'"


def import_ray() -> Any:
    """The ``ray`` module, or a clear message when the cluster extra is missing."""
    try:
        import ray
    except ImportError:
        raise LinnaeusError(
            f"--ray needs Ray, which this installation does not have: {INSTALL_HINT}"
        ) from None
    return ray


@dataclass(frozen=True)
class Cluster:
    """The Ray runtime this process is connected to."""

    address: str  # as given: "local" or the cluster's address
    cpus: int  # CPUs the cluster offers (one actor each)
    nodes: int

    def describe(self) -> str:
        where = "a local Ray runtime" if self.address == LOCAL else f"Ray at {self.address}"
        return f"{where} ({self.nodes} node(s), {self.cpus} CPUs)"


@contextmanager
def ray_runtime(address: str, *, local_cpus: int | None = None) -> Iterator[Cluster]:
    """Connect to the Ray cluster at ``address`` (``local``: start one here with
    ``local_cpus`` CPUs, default `LOCAL_CPUS` or fewer) for the ``with`` block.

    A runtime this process is already connected to is used as it is and left
    running; one started or joined here is disconnected from (a local one is
    shut down) at the end, however the block ends.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield _cluster(ray, address)
        return
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    if address == LOCAL:
        cpus = local_cpus or min(LOCAL_CPUS, physical_cores())
        options |= {  # "local": a new runtime, even where another one runs
            "address": "local", "num_cpus": cpus, "object_store_memory": LOCAL_OBJECT_STORE_BYTES,
        }  # fmt: skip
    else:
        check_reachable(address)
        options["address"] = address
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise LinnaeusError(f"Cannot start or reach Ray at {address!r}: {error}") from None
    try:
        yield _cluster(ray, address)
    finally:
        ray.shutdown()


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuse at once a ``HOST:PORT`` where nothing listens (Ray itself retries for
    minutes); ``auto`` and ``ray://`` addresses are left to Ray."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise LinnaeusError(
            f"Cannot reach the Ray cluster at {address} ({error.strerror or error}): is "
            "`ray start --head` running there, and the port open?"
        ) from None


def _cluster(ray: Any, address: str) -> Cluster:
    resources = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return Cluster(address, max(1, int(resources.get("CPU", 1))), max(1, nodes))


class ActorPool:
    """``count`` Ray actors of ``actor_class`` (one CPU each), called round-robin
    from any thread; `close` ends them. ``ray_class`` is the plain class that
    becomes a Ray actor here, so that modules defining one need not import Ray."""

    def __init__(self, actor_class: type, count: int, *args: Any) -> None:
        ray = import_ray()
        self._ray = ray
        remote = ray.remote(num_cpus=1)(actor_class)
        self.actors = [remote.remote(*args) for _ in range(count)]
        self._turn = itertools.cycle(self.actors)
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self.actors)

    @property
    def threads(self) -> int:
        """Worker threads that keep every actor busy (`engine.sessions.in_order`)."""
        return self.size * CALLS_AHEAD

    def call(self, method: str, *args: Any) -> Any:
        """``method(*args)`` on the next actor; waits for and returns its result
        (an actor's exception is raised here)."""
        with self._lock:
            actor = next(self._turn)
        return self._ray.get(getattr(actor, method).remote(*args))

    def each(self, method: str, *args: Any) -> list[Any]:
        """``method(*args)`` on every actor (e.g. to check they loaded)."""
        return self._ray.get([getattr(actor, method).remote(*args) for actor in self.actors])

    def close(self) -> None:
        """End the actors (queued calls are dropped)."""
        for actor in self.actors:
            self._ray.kill(actor)
        self.actors = []


@contextmanager
def actor_pool(actor_class: type, count: int, *args: Any) -> Iterator[ActorPool]:
    """An `ActorPool` for the ``with`` block, ended however the block ends."""
    pool = ActorPool(actor_class, count, *args)
    try:
        yield pool
    finally:
        pool.close()
