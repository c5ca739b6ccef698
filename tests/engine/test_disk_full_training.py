"""A full disk during training and export: refused up front, or a failed version whose
last whole checkpoint resumes; never a version left "training", never a crash."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from linnaeus.engine.errors import DiskFullError
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.onnx.export import export_version
from linnaeus.engine.project import versions
from linnaeus.engine.training.callbacks import TrainState
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.train import train
from tests.training_factory import make_shapes_project

SMALL = {"image_size": 32, "batch_size": 16, "augmentation": PRESETS["none"], "patience": 50}
MESSAGE = r"^The disk holding .+ is full: .+ MB free, about .+ MB needed\. Free some space"


def little_space(monkeypatch: pytest.MonkeyPatch, free: int) -> None:
    """Every disk now seems to have only ``free`` bytes left."""
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(free=free))


def test_training_is_refused_before_it_starts_when_the_disk_is_too_small(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_shapes_project(tmp_path, {"disk": 10, "square": 10})
    little_space(monkeypatch, 50_000)
    with pytest.raises(DiskFullError, match=MESSAGE):
        train(store, TrainConfig(model="seed-cnn", epochs=1, **SMALL))
    assert versions.list_versions(store) == []
    assert not (store.project_dir / "cache").exists()


@pytest.mark.parametrize("failing", ["checkpoint", "best weights"])
def test_a_write_that_fills_the_disk_fails_the_version_cleanly_and_it_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    store = make_shapes_project(tmp_path, {"disk": 12, "square": 12})
    writes: list[str] = []
    real_save, real_savez = keras.Model.save, np.savez

    def save(model: keras.Model, path: Path, *args: object, **kwargs: object) -> None:
        writes.append("checkpoint")
        if failing == "checkpoint" and writes.count("checkpoint") == 2:
            Path(path).write_bytes(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(model, path, *args, **kwargs)

    def savez(file: object, *arrays: object) -> None:
        writes.append("best weights")
        if failing == "best weights" and writes.count("best weights") == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_savez(file, *arrays)

    monkeypatch.setattr(keras.Model, "save", save)
    monkeypatch.setattr(np, "savez", savez)
    config = TrainConfig(model="seed-cnn", epochs=3, learning_rate=1e-3, **SMALL)
    with pytest.raises(DiskFullError, match=MESSAGE):
        train(store, config)
    (version,) = versions.list_versions(store)
    assert version.status == "failed" and "is full" in (version.error or "")
    assert not [p.name for p in version.folder.iterdir() if ".tmp" in p.name]
    whole = writes.count("checkpoint") - (failing == "checkpoint")
    assert whole >= 1 and TrainState.load(version.folder).epochs_done == whole
    keras.models.load_model(version.checkpoint_file)

    monkeypatch.undo()  # space was freed
    result = train(store, resume=True)
    assert result.version.id == version.id and result.version.status == "done"


def test_export_is_refused_before_converting_when_the_disk_is_too_small(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_shapes_project(tmp_path, {"disk": 10, "square": 10})
    version = train(store, TrainConfig(model="seed-cnn", epochs=1, **SMALL)).version
    destination = tmp_path / "model.onnx"
    little_space(monkeypatch, 1000)
    with pytest.raises(DiskFullError, match=MESSAGE):
        export_version(store, version, destination)
    assert list(tmp_path.glob("model*")) == []
