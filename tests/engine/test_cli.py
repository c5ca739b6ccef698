"""The headless command line: summaries, JSON, exit codes, no Qt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from linnaeus.engine.cli.main import main
from tests.image_factory import write_image


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for label in ("benign", "malignant"):
        (root / label).mkdir(parents=True)
        for i in range(6):
            write_image(root / label / f"{label}_{i}.png", size=(20, 20), seed=i)
    (root / "benign" / "broken.png").write_text("not an image")
    return root


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_import_json_has_counts_and_errors(images: Path, tmp_path: Path, capsys) -> None:
    result = run_json(capsys, "import", str(images), "--project", str(tmp_path / "p"))
    assert result["added"] == 13
    assert sum(result["counts"]["benign"].values()) == 6
    assert result["errors"] == [
        {"path": "benign/broken.png", "reason": result["errors"][0]["reason"]}
    ]
    assert "not an image" in result["errors"][0]["reason"]


def test_labels_set_undo_redo_history_export(images: Path, tmp_path: Path, capsys) -> None:
    project = str(tmp_path / "p")
    assert main(["import", str(images), "--project", project]) == 0
    assert (
        main(["labels", "set", "benign/benign_0.png", "--label", "malignant", "--project", project])
        == 0
    )
    assert "Done: label 1 image(s) as malignant" in capsys.readouterr().out
    history = run_json(capsys, "labels", "history", "benign/benign_0.png", "--project", project)
    assert [(h["old_label"], h["new_label"], h["source"]) for h in history["history"]] == [
        ("benign", "malignant", "user"),
        (None, "benign", "import"),
    ]
    assert main(["labels", "undo", "--project", project]) == 0
    assert "Undid" in capsys.readouterr().out
    info = run_json(capsys, "info", "--project", project)
    assert info["can_redo"] and not info["can_undo"]
    assert main(["labels", "redo", "--project", project]) == 0
    out = tmp_path / "labels.csv"
    assert main(["labels", "export", "--csv", str(out), "--project", project]) == 0
    assert "benign/benign_0.png,malignant," in out.read_text()


def test_user_mistakes_give_one_line_and_status_1(tmp_path: Path, capsys) -> None:
    assert main(["info", "--project", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("linnaeus: error:") and "not a Linnaeus project" in err
    assert err.count("\n") == 1
    assert main(["import", str(tmp_path / "nowhere"), "--project", str(tmp_path / "p")]) == 1
    assert "not a folder" in capsys.readouterr().err


def test_unknown_image_or_class_is_explained(images: Path, tmp_path: Path, capsys) -> None:
    project = str(tmp_path / "p")
    main(["import", str(images), "--project", project])
    capsys.readouterr()
    assert main(["labels", "set", "nope.png", "--label", "x", "--project", project]) == 1
    assert "no image 'nope.png'" in capsys.readouterr().err


def test_the_command_runs_headless_without_qt(images: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from linnaeus.engine.cli.main import main\n"
        f"status = main(['import', {str(images)!r}, '--project', {str(tmp_path / 'p')!r}])\n"
        "assert status == 0, status\n"
        "heavy = ('PySide6', 'tensorflow', 'pyqtgraph')\n"
        "banned = [m for m in sys.modules if m.split('.')[0] in heavy]\n"
        "assert not banned, banned\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_a_reader_that_stops_early_gets_no_traceback(images: Path, tmp_path: Path) -> None:
    """``linnaeus info | head -1``: the pipe is closed before the summary is written."""
    project = str(tmp_path / "p")
    assert main(["import", str(images), "--project", project]) == 0
    code = (
        "import os, sys\n"
        "read, write = os.pipe()\n"
        "os.close(read)\n"
        "os.dup2(write, sys.stdout.fileno())\n"
        "from linnaeus.engine.cli.main import main\n"
        f"sys.exit(main(['info', '--project', {project!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "Exception ignored" not in result.stderr


def test_console_script_reports_version() -> None:
    script = Path(sys.executable).with_name("linnaeus")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("Linnaeus ")


def test_demo_runs_the_whole_job_and_finds_planted_labels(tmp_path, capsys) -> None:
    project = tmp_path / "demo"
    assert main(["demo", "--project", str(project), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["added"] == 240 and len(result["mislabelled"]) == 10
    assert result["training"]["model"] == "quick"
    assert result["training"]["metrics"]["test"]["accuracy"] > 0.8
    assert len(result["found"]) >= 5  # the relabel queue surfaces the planted wrong labels
    shipped = result["shipped"]
    assert shipped["max_abs_difference"] < 1e-4 and Path(shipped["onnx"]).is_file()
    assert Path(shipped["report"]).read_text().count("data:image/png") >= 2
    assert shipped["new_images"] == 30 and shipped["new_images_right"] >= 24
    assert main(["demo", "--project", str(project), "--no-train"]) == 0  # runs again safely
