"""``linnaeus train --json-progress`` and ``models``: the protocol the GUI reads."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from tests.training_factory import make_shapes_project

SMALL = ["--model", "seed-cnn", "--image-size", "32", "--batch-size", "8", "--augment", "none"]


def linnaeus(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("linnaeus")), *args]


def test_json_progress_lines_then_a_final_summary(tmp_path: Path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 12, "square": 12})
    store.close()
    project = str(tmp_path / "project")
    result = subprocess.run(linnaeus("train", "--project", project, "--epochs", "2",
                                     "--json-progress", *SMALL),
                            capture_output=True, text=True, check=True)  # fmt: skip
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    phases = [line["phase"] for line in lines]
    assert phases[0] == "decode" and phases[-1] == "done"
    epoch_ends = [
        line for line in lines if line["phase"] == "train" and line["batch"] == line["batches"]
    ]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "images_per_s", "eta_s"} <= set(
        epoch_ends[-1]
    )
    assert epoch_ends[-1]["epoch"] == 2 and epoch_ends[-1]["val_accuracy"] is not None
    assert lines[-1]["model_version"] == "v1" and "val" in lines[-1]["metrics"]

    listed = subprocess.run(linnaeus("models", "--project", project, "--json"),
                            capture_output=True, text=True, check=True)  # fmt: skip
    (model,) = json.loads(listed.stdout)["models"]
    assert model["active"] and model["status"] == "done" and model["model"] == "seed-cnn"


def test_sigterm_cancels_with_a_checkpoint_and_resume_finishes(tmp_path: Path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 24, "square": 24})
    store.close()
    project = str(tmp_path / "project")
    process = subprocess.Popen(linnaeus("train", "--project", project, "--epochs", "50",
                                        "--json-progress", *SMALL),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    for line in process.stdout:
        event = json.loads(line)
        if event["phase"] == "train" and event["epoch"] >= 2:
            process.send_signal(signal.SIGTERM)
            break
    rest = [json.loads(line) for line in process.stdout]
    assert process.wait(timeout=120) == 130
    assert rest[-1]["phase"] == "cancelled"
    with ProjectStore.open(project) as store:
        (version,) = versions.list_versions(store)
        assert version.status == "cancelled"

    resumed = subprocess.run(linnaeus("train", "--project", project, "--resume", "--json"),
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["model_version"] == "v1"


def test_training_errors_are_one_line_and_a_json_error_event(tmp_path: Path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 6})
    store.close()
    result = subprocess.run(linnaeus("train", "--project", str(tmp_path / "project"),
                                     "--json-progress", *SMALL),
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 1
    assert json.loads(result.stdout.splitlines()[-1])["phase"] == "error"
    assert result.stderr.strip().splitlines()[-1].startswith("linnaeus: error: Training needs")
