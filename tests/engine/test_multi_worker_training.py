"""Two ``linnaeus train`` workers on localhost, described by ``TF_CONFIG``, train
one model version together (issue 15): both exit 0, only the chief writes into
the project, both end with identical weights, and the version exports."""

from __future__ import annotations

import json
import os
import shutil
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


MIRRORED_JOB = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training import device
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.train import train
replicas = int(sys.argv[2])
if replicas > 1:  # two logical CPUs stand in for two GPUs
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    setup = device.DeviceSetup("2 CPU replicas", strategy, False, 2)
    device.configure_devices = lambda **_: setup
config = TrainConfig(model="seed-cnn", image_size=32, epochs=2, dropout=0.0,
                     augmentation=PRESETS["none"])
with ProjectStore.open(sys.argv[1]) as store:
    version = train(store, config).version
print(json.dumps({"device": version.device, "curves": version.curves}))
"""


@pytest.mark.slow
def test_several_replicas_of_one_machine_learn_as_one_device(tmp_path: Path) -> None:
    """MirroredStrategy (two logical CPUs): every replica takes a slice of each batch,
    and the epochs' losses are those of one device on the same batches."""
    make_shapes_project(tmp_path, {"disk": 12, "square": 12}).close()
    runs = {}
    for replicas in (1, 2):
        project = tmp_path / f"project-{replicas}"
        shutil.copytree(tmp_path / "project", project)
        done = subprocess.run(
            [sys.executable, "-c", MIRRORED_JOB, str(project), str(replicas)],
            env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"},
            capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        runs[replicas] = json.loads(done.stdout.strip().splitlines()[-1])
    assert runs[2]["device"] == "2 CPU replicas"
    one, two = runs[1]["curves"], runs[2]["curves"]
    assert len(two["train_loss"]) == 2
    # The same global batches: the losses agree up to the replicas' own batch-norm
    # statistics (each normalises its half of a batch).
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=0.2)
