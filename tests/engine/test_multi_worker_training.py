"""Two ``linnaeus train`` workers on localhost, described by ``TF_CONFIG``, train
one model version together (issue 15): both exit 0, only the chief writes into
the project, both end with identical weights, and the version exports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from linnaeus.engine.cli.main import main
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.workers import cluster_role
from linnaeus.engine.training.workers import weights_digest
from tests.training_factory import make_shapes_project

WORKER_TIMEOUT_S = 420  # two TensorFlow processes on a busy 2-core machine


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    workers = [f"localhost:{port}" for port in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def test_the_role_comes_from_tf_config() -> None:
    def role(config: object) -> tuple[int, bool]:
        found = cluster_role({"TF_CONFIG": json.dumps(config)})
        return found.workers, found.chief

    assert (cluster_role({}).workers, cluster_role({}).chief) == (1, True)
    assert role(
        {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}
    ) == (2, True)
    assert role(
        {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    ) == (2, False)
    chief = {"chief": ["c:0"], "worker": ["a:1"]}
    assert role({"cluster": chief, "task": {"type": "worker", "index": 0}}) == (2, False)
    assert role({"cluster": chief, "task": {"type": "chief", "index": 0}}) == (2, True)
    assert cluster_role({"TF_CONFIG": "not json"}).workers == 1


@pytest.mark.slow
def test_two_workers_on_localhost_train_one_exportable_version(tmp_path: Path, capsys) -> None:
    make_shapes_project(tmp_path, {"disk": 12, "square": 12}).close()
    project = tmp_path / "project"
    ports = free_ports(2)
    command = [sys.executable, "-m", "linnaeus.engine.cli", "train", "--project", str(project),
               "--model", "seed-cnn", "--image-size", "32", "--epochs", "1", "--json"]  # fmt: skip
    workers = [
        subprocess.Popen(
            command,
            env=os.environ | {"TF_CONFIG": tf_config(ports, index), "TF_CPP_MIN_LOG_LEVEL": "2"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=WORKER_TIMEOUT_S)
            outputs.append(out)
            assert worker.returncode == 0, err[-3000:]
    finally:
        for worker in workers:
            worker.kill()

    chief, other = (json.loads(out.strip().splitlines()[-1]) for out in outputs)
    assert chief["model_version"] == "v1" and "several machines" in chief["device"]
    with ProjectStore.open(project) as store:
        listed = versions.list_versions(store)
    assert [(v.name, v.status) for v in listed] == [("v1", "done")]  # the worker wrote none
    assert weights_digest(listed[0].model_file) == other["weights_sha256"]

    out = tmp_path / "shapes.onnx"
    assert main(["export", "--project", str(project), "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    assert out.stat().st_size > 0
