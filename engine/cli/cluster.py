"""``--ray ADDRESS``: ``predict`` and ``train`` with their heavy work on a Ray cluster.

Ray is an optional extra (``linnaeus[cluster]``), imported only when ``--ray``
is given (`engine.cluster`); docs/cluster.md says how a lab sets one up.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from linnaeus.engine.cli.output import positive_int
from linnaeus.engine.errors import LinnaeusError


def add_ray_options(parser: Any, work: str) -> None:
    """``--ray ADDRESS`` and ``--ray-workers N`` on a command's parser."""
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        help=f"{work} on a Ray cluster: 'local' starts one on this machine, 'auto' or "
        "HOST:PORT joins a running one (needs `pip install 'linnaeus[cluster]'`; "
        "docs/cluster.md)",
    )
    parser.add_argument(
        "--ray-workers",
        type=positive_int,
        metavar="N",
        help="Ray workers, one CPU each (default: every CPU of the cluster)",
    )


def check_ray_options(args: argparse.Namespace) -> None:
    if args.ray_workers is not None and args.ray is None:
        raise LinnaeusError("--ray-workers needs --ray ADDRESS (e.g. --ray local).")


def _announce(args: argparse.Namespace, workers: int, where: str, quiet: bool) -> None:
    if not quiet:
        print(f"Starting {workers} Ray workers on {where}.", flush=True)


@contextmanager
def ray_classifier(args: argparse.Namespace, *, quiet: bool = False) -> Iterator[Any]:
    """A classifier of ``args.model`` whose folders are classified by Ray actors,
    with the Ray runtime and the actors for the ``with`` block."""
    from linnaeus.engine.cluster.predict import RayClassifier
    from linnaeus.engine.cluster.predict import start_pool
    from linnaeus.engine.cluster.runtime import ray_runtime

    with ray_runtime(args.ray) as cluster:
        workers = args.ray_workers or cluster.cpus
        _announce(args, workers, cluster.describe(), quiet)
        with start_pool(args.model, workers) as pool:
            yield RayClassifier(args.model, pool)


@contextmanager
def ray_features(args: argparse.Namespace, *, quiet: bool = False) -> Iterator[None]:
    """For the ``with`` block, the quick model's backbone features are computed by
    Ray actors (when ``args.ray`` is set; otherwise here, as always)."""
    if args.ray is None:
        yield
        return
    from linnaeus.engine.cluster.features import features_on_ray
    from linnaeus.engine.cluster.runtime import ray_runtime

    with ray_runtime(args.ray) as cluster:
        workers = args.ray_workers or cluster.cpus
        _announce(args, workers, cluster.describe(), quiet)
        with features_on_ray(workers):
            yield
