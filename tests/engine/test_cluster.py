"""``--ray``: classifying a folder and computing backbone features on a Ray runtime
give what one machine gives, to the image (issue 15). Each test starts a small
local Ray runtime (two CPUs, no dashboard) through the command line and shuts it
down; tiny images keep them to seconds of work."""

from __future__ import annotations

import json
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

from linnaeus.engine.cli.main import main
from linnaeus.engine.cluster.runtime import ActorPool
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.data import collect_examples
from linnaeus.engine.training.features import feature_cache
from tests.image_factory import encode_image
from tests.onnx_factory import make_model
from tests.training_factory import make_shapes_project

pytest.importorskip("ray", reason="the cluster extra (pip install 'linnaeus[cluster]')")

RGB = ("red", "green", "blue")


def write_images(folder: Path, count: int) -> None:
    """``count`` random colour images in two folders, plus two unreadable files."""
    rng = np.random.default_rng(0)
    for index in range(count):
        pixels = rng.integers(0, 256, (20, 20, 3), np.uint8)
        pixels[..., index % 3] = 255  # every class gets some
        path = folder / f"part{index % 2}" / f"image{index:03}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_image(pixels, "png"))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "part1" / "empty.png").write_bytes(b"")


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_predict_on_ray_agrees_with_predict_on_every_image(tmp_path: Path, capsys) -> None:
    images = tmp_path / "images"
    write_images(images, 45)
    with ProjectStore.create(tmp_path / "project", images) as store:
        import_images(store)
        for name in RGB:
            store.ensure_class(name)
        project_id = store.project_id
    model = make_model(tmp_path / "m.onnx", RGB, project_id=project_id)
    runs = {}
    for name, extra in (("here", []), ("ray", ["--ray", "local", "--ray-workers", "2"])):
        project = tmp_path / f"project-{name}"
        shutil.copytree(tmp_path / "project", project)
        out = tmp_path / f"{name}.csv"
        status = main(
            [
                "predict", str(model), str(images), "--out", str(out), "--json",
                "--sort-into", str(tmp_path / f"sorted-{name}"), "--unknown-below", "0.5",
                "--project", str(project), "--write-suggestions", "--batch-size", "4", *extra,
            ]
        )  # fmt: skip
        assert status == 0
        summary = json.loads(capsys.readouterr().out)
        with ProjectStore.open(project) as store:
            labels = {image.path: image.label for image in store.images()}
        runs[name] = (out.read_bytes(), summary, labels, tree(tmp_path / f"sorted-{name}"))

    (csv, summary, labels, copies), (ray_csv, ray_summary, ray_labels, ray_copies) = runs.values()
    assert ray_csv == csv  # every row, class and probability, in the same order
    assert csv.count(b"\n") == 45 + 2 + 1
    assert ray_summary["counts"] == summary["counts"] and ray_summary["unreadable"] == 2
    assert ray_summary["provider"] == "CPUExecutionProvider on 2 Ray workers"
    assert ray_labels == labels and sum(label is not None for label in labels.values()) > 0
    assert ray_copies == copies and len(copies) == summary["sorted"]["copied"] > 0


def test_ray_workers_without_ray_is_refused(tmp_path: Path, capsys) -> None:
    model = make_model(tmp_path / "m.onnx", RGB)
    (tmp_path / "images").mkdir()
    status = main(["predict", str(model), str(tmp_path / "images"), "--ray-workers", "2"])
    assert status == 1
    assert "--ray-workers needs --ray" in capsys.readouterr().err


def test_without_ray_installed_the_message_says_how_to_install_it(monkeypatch) -> None:
    from linnaeus.engine.cluster.runtime import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(LinnaeusError, match=r"pip install 'linnaeus\[cluster\]'"):
        import_ray()


@pytest.mark.slow
def test_train_on_ray_caches_the_features_one_machine_computes(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """``train --ray local``: the quick model's backbone features come from Ray
    actors, are cached in the project as always, and equal those computed here."""
    calls: list[str] = []
    call = ActorPool.call
    monkeypatch.setattr(ActorPool, "call", lambda pool, *a: calls.append(a[0]) or call(pool, *a))
    make_shapes_project(tmp_path, {"disk": 10, "square": 10}).close()
    config = TrainConfig(model="quick", image_size=64).resolved()
    features = {}
    for name, extra in (("here", []), ("ray", ["--ray", "local", "--ray-workers", "2"])):
        project = tmp_path / f"project-{name}"
        shutil.copytree(tmp_path / "project", project)
        status = main(
            ["train", "--project", str(project), "--model", "quick", "--image-size", "64",
             "--json", *extra]
        )  # fmt: skip
        assert status == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["model_version"] == "v1"
        with ProjectStore.open(project) as store:
            hashes = collect_examples(store).hashes
            cache = feature_cache(store, str(config.backbone), config.input_format, 1280)
            features[name] = cache.get(hashes)
    assert calls and set(calls) == {"compute"}  # only the Ray run used the actors
    assert features["ray"].shape == (20, 1280)
    np.testing.assert_array_equal(features["ray"], features["here"])


def test_a_ray_classification_reports_progress_and_cancels(tmp_path: Path) -> None:
    from linnaeus.engine.cluster.predict import RayClassifier
    from linnaeus.engine.cluster.predict import start_pool
    from linnaeus.engine.cluster.runtime import ray_runtime
    from linnaeus.engine.onnx.classify import classify

    images = tmp_path / "images"
    write_images(images, 40)
    model = make_model(tmp_path / "m.onnx", RGB)
    out = tmp_path / "out.csv"
    cancel = CancelToken()
    seen: list[Progress] = []

    def on_progress(progress: Progress) -> None:
        seen.append(progress)
        if progress.done >= 8:
            cancel.cancel()

    with ray_runtime("local", local_cpus=2), start_pool(model, 2) as pool:
        classifier = RayClassifier(model, pool)
        with pytest.raises(Cancelled):
            classify(classifier, images, out, batch_size=4, on_progress=on_progress, cancel=cancel)
    assert not out.exists()  # a cancelled run leaves no CSV
    assert seen[0].total == 42 and 8 <= seen[-1].done < 42


def test_an_address_where_nothing_listens_is_refused_at_once(tmp_path: Path, capsys) -> None:
    model = make_model(tmp_path / "m.onnx", RGB)
    (tmp_path / "images").mkdir()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    status = main(["predict", str(model), str(tmp_path / "images"), "--ray", f"127.0.0.1:{port}"])
    assert status == 1
    assert "Cannot reach the Ray cluster at 127.0.0.1:" in capsys.readouterr().err
