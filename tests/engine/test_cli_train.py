"""``linnaeus train --json-progress`` and ``models``, and the protocol (engine.cli.protocol)
the GUI speaks with it: the train flags and the progress lines."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from linnaeus.engine.cli.protocol import TrainingCancelled
from linnaeus.engine.cli.protocol import TrainingDone
from linnaeus.engine.cli.protocol import TrainingFailed
from linnaeus.engine.cli.protocol import TrainOptions
from linnaeus.engine.cli.protocol import add_train_flags
from linnaeus.engine.cli.protocol import decode
from linnaeus.engine.cli.protocol import encode
from linnaeus.engine.cli.protocol import train_arguments
from linnaeus.engine.cli.protocol import train_options
from linnaeus.engine.cli.train import print_training
from linnaeus.engine.cli.train import training_summary
from linnaeus.engine.errors import TrainingError
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.train import TrainResult
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
    assert set(lines[-1]["metrics"]) <= {"train", "val", "test"}  # not the calibration

    listed = subprocess.run(linnaeus("models", "--project", project, "--json"),
                            capture_output=True, text=True, check=True)  # fmt: skip
    (model,) = json.loads(listed.stdout)["models"]
    assert model["active"] and model["status"] == "done" and model["model"] == "seed-cnn"


def test_the_final_summary_in_words_lists_each_split(tmp_path: Path, capsys) -> None:
    """The version's metrics also hold its calibration: the summary lists only splits."""
    store = make_shapes_project(tmp_path, {"disk": 4, "square": 4})
    version = versions.create_version(
        store, kind="seed-cnn", config={}, augmentation={}, classes=["disk", "square"],
        labels={},
    )  # fmt: skip
    metrics = {"val": {"images": 2, "accuracy": 0.5, "loss": 0.7},
               "calibration": {"temperature": 1.0, "threshold": 0.4}}  # fmt: skip
    version = versions.update_version(store, version.id, status="done", metrics=metrics,
                                      duration_s=3.0, device="CPU")  # fmt: skip
    store.close()
    print_training(training_summary(TrainResult(version, [], 0)))
    assert "val    accuracy 50.0%  loss 0.700  (2 images)" in capsys.readouterr().out


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


@pytest.mark.parametrize(
    ("options", "resume", "expected"),
    [
        (TrainOptions(), False, []),
        (
            TrainOptions(model="quick", epochs=None, l2=0.001),
            False,
            ["--model", "quick", "--l2", "0.001"],
        ),
        (
            TrainOptions(grayscale=True, binarize=False, image_size=64),
            False,
            ["--image-size", "64", "--grayscale"],
        ),
        (TrainOptions(model="quick"), True, ["--resume"]),
    ],
)
def test_train_arguments(options, resume, expected) -> None:
    start = ["train", "--project", "P", "--json-progress"]
    assert train_arguments(Path("P"), options, resume=resume) == start + expected


def test_train_arguments_parse_back_into_the_same_options() -> None:
    options = TrainOptions(
        model="seed-cnn", epochs=7, image_size=48, augment="strong", imbalance="oversample",
        learning_rate=3e-4, l2=1e-5, dropout=0.35, grayscale=True, resize="pad", seed=3,
    )  # fmt: skip
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("--project")
    parser.add_argument("--json-progress", action="store_true")
    add_train_flags(parser)
    args = parser.parse_args(train_arguments(Path("P"), options, resume=False))
    assert train_options(args) == options
    config = options.config()
    assert (config.model, config.epochs, config.image_size) == ("seed-cnn", 7, 48)
    assert (config.channels, config.resize) == (1, "pad")
    assert config.augmentation == PRESETS["strong"]


def test_train_options_refuse_what_the_trainer_would() -> None:
    with pytest.raises(TrainingError, match="--model must be one of"):
        TrainOptions(model="colour")
    with pytest.raises(TypeError, match="colour"):
        TrainOptions(colour="red")


EPOCH_REPORT = TrainingProgress("train", 3, 8, "train: epoch 1/2", phase="train", epoch=1,
                                epochs=2, batch=3, batches=4, loss=0.5, eta_s=1.5)  # fmt: skip
DONE = TrainingDone("v2", "quick", ("a", "b"), {"val": {"accuracy": 0.9}}, 3.5, "CPU",
                    (("x.png", "unreadable"),), 10)  # fmt: skip


@pytest.mark.parametrize(
    "event",
    [EPOCH_REPORT, DONE, TrainingFailed("No labels."), TrainingCancelled("Resume it.")],
)
def test_every_event_survives_a_json_line(event) -> None:
    assert decode(json.loads(json.dumps(encode(event)))) == event


def test_plain_progress_is_sent_as_its_stages_phase_and_strangers_are_ignored() -> None:
    line = json.loads(json.dumps(encode(Progress("decode", 5, 20, "Prepared 5 of 20"))))
    assert decode(line) == TrainingProgress("decode", 5, 20, "Prepared 5 of 20", phase="decode")
    assert decode({"model_version": "v1"}) is None
    assert decode({"phase": "error"}) is None  # a failure line must say why
