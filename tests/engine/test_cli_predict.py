"""`linnaeus predict`: the CSV and its summaries, refusals, no TensorFlow needed, and
label suggestions written into a project (onnxruntime only)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.dataset.layout import walk_files
from linnaeus.engine.project.store import ProjectStore
from tests.engine.conftest import COLOURS
from tests.engine.conftest import RGB
from tests.engine.conftest import predict_cli
from tests.engine.conftest import read_csv
from tests.engine.conftest import write_solid
from tests.onnx_factory import make_model

REPO = Path(__file__).resolve().parents[2]


# -- the command line ------------------------------------------------------------------


def test_predict_command_writes_csv_and_json_summary(
    model: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.csv"

    status = predict_cli(
        [
            str(model),
            str(folder),
            "--out",
            str(out),
            "--json",
            "--unknown-below",
            "0.5",
            "--sort-into",
            str(tmp_path / "sorted"),
        ]
    )

    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["csv"] == str(out) and len(read_csv(out)) == 8
    assert summary["counts"] == {"red": 2, "green": 1, "blue": 1, "unknown": 1}
    assert summary["unreadable"] == 3 and summary["provider"] == "CPUExecutionProvider"
    assert {e["path"] for e in summary["errors"]} == {
        "e_truncated.jpg",
        "f_text.png",
        "g_empty.jpg",
    }
    assert summary["sorted"]["copied"] == 5
    assert (tmp_path / "sorted" / "unknown" / "h_grey.png").is_file()


def test_predict_command_prints_a_human_summary(
    model: Path, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)

    assert predict_cli([str(model), str(folder)]) == 0

    out = capsys.readouterr().out
    assert "CPUExecutionProvider" in out and "Classified 8 image files" in out
    assert "3 files could not be read" in out
    assert (tmp_path / "new images_predictions.csv").is_file()  # in the current folder


def test_predict_command_summarises_a_folder_of_only_unreadable_files(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_text("not an image")

    assert predict_cli([str(model), str(broken), "--out", str(tmp_path / "r.csv")]) == 0

    assert "1 files could not be read" in capsys.readouterr().out
    assert read_csv(tmp_path / "r.csv")[0]["error"].startswith("not an image")


def test_predict_command_refuses_user_mistakes_in_one_line(
    model: Path, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    files_before = list(walk_files(folder))
    (tmp_path / "empty").mkdir()
    m, f, out = str(model), str(folder), ["--out", str(tmp_path / "x.csv")]
    mistakes = [
        ([m, f], "inside the folder being classified"),  # the default CSV: cwd is the folder
        ([m, f, *out, "--sort-into", str(folder / "sorted")], "inside the folder being classified"),
        ([m, str(tmp_path / "nowhere"), *out], "is not a folder"),
        ([str(tmp_path / "nothing.onnx"), f, *out], "There is no model file"),
        ([m, str(tmp_path / "empty"), *out], "There are no image files"),
        ([m, f, *out, "--write-suggestions"], "go together"),
    ]
    monkeypatch.chdir(folder)
    for argv, expected in mistakes:
        assert predict_cli(argv) == 1
        error = capsys.readouterr().err
        assert error.startswith("linnaeus: error: ") and error.count("\n") == 1
        assert expected in error
    assert list(walk_files(folder)) == files_before
    assert not (tmp_path / "x.csv").exists()


def test_predict_works_when_tensorflow_cannot_be_imported(
    model: Path, folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results.csv"
    script = textwrap.dedent(
        """
        import sys
        from importlib.abc import MetaPathFinder

        class NoTensorFlow(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"tensorflow", "keras", "tf2onnx", "tf_keras"}:
                    raise ImportError(f"{name} is not installed here (blocked by the test)")
                return None

        sys.meta_path.insert(0, NoTensorFlow())
        from tests.engine.conftest import predict_cli
        status = predict_cli(sys.argv[1:])
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"tensorflow", "keras"})
        assert not loaded, loaded
        sys.exit(status)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(model), str(folder), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "blocked by the test" not in result.stderr
    assert len(read_csv(out)) == 8


# -- label suggestions ------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose images are the fixture colours: one labelled, three not."""
    images = tmp_path / "project images"
    write_solid(images / "red" / "r1.png", COLOURS["red"])
    write_solid(images / "p_green.png", COLOURS["green"])
    write_solid(images / "p_blue.png", COLOURS["blue"])
    write_solid(images / "p_other.png", (90, 10, 60))  # not in the classified folder
    with ProjectStore.create(tmp_path / "project", images) as store:
        import_images(store)
        for name in RGB:
            store.ensure_class(name)
        store.set_labels([store.image_by_path("p_blue.png").id], "green")  # a user's label
    return tmp_path / "project"


def test_write_suggestions_labels_only_unlabelled_images(
    project: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ProjectStore.open(project) as store:
        project_id = store.project_id
        label_before = {i.path: i.label for i in store.images()}
    model = make_model(tmp_path / "m.onnx", RGB, project_id=project_id)
    write_solid(folder / "sub" / "copy of p_green.png", COLOURS["green"])  # unlabelled there

    status = predict_cli(
        [
            str(model),
            str(folder),
            "--out",
            str(tmp_path / "r.csv"),
            "--json",
            "--project",
            str(project),
            "--write-suggestions",
        ]
    )

    assert status == 0
    assert json.loads(capsys.readouterr().out)["suggestions"]["written"] == 1
    with ProjectStore.open(project) as store:
        labels = {i.path: i.label for i in store.images()}
        history = store.history(store.image_by_path("p_green.png").id)
    assert labels == {**label_before, "p_green.png": "green"}
    assert (history[0].new_label, history[0].source) == ("green", "model-suggestion")
    assert label_before["p_blue.png"] == "green" and label_before["red/r1.png"] == "red"


@pytest.mark.parametrize(
    ("classes", "project_id"),
    [(RGB, "another-project"), (("red", "green", "purple"), None)],
)
def test_write_suggestions_refuses_a_model_of_another_project(
    project: Path, folder: Path, tmp_path: Path, capsys, classes, project_id
) -> None:
    with ProjectStore.open(project) as store:
        store.project_id  # noqa: B018 - give the project its id
        history_before = store.history()
    model = make_model(tmp_path / "m.onnx", classes, project_id=project_id)

    status = predict_cli(
        [
            str(model),
            str(folder),
            "--out",
            str(tmp_path / "r.csv"),
            "--project",
            str(project),
            "--write-suggestions",
        ]
    )

    assert status == 1
    assert "trained for another project" in capsys.readouterr().err
    with ProjectStore.open(project) as store:
        assert store.history() == history_before
    assert not (tmp_path / "r.csv").exists()
