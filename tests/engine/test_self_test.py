"""Tests for ``linnaeus --self-test`` (linnaeus.engine.demo.self_test).

The whole self-test, desktop window included, runs inside the installed bundle
in the packaging test (tests/packaging); here its steps are faked to check the
reporting, and the real engine steps run once from source without the window.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from linnaeus.engine.cli.main import main
from linnaeus.engine.demo import self_test
from linnaeus.engine.demo.self_test import SelfTestFailed
from linnaeus.engine.demo.self_test import SelfTestRun
from linnaeus.engine.demo.self_test import StepResult
from linnaeus.engine.demo.self_test import run_self_test
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.training import backbones


def _passes(run: SelfTestRun) -> str:
    return "fine"


def _fails(run: SelfTestRun) -> str:
    raise RuntimeError("libtensorflow_cc.so.2: cannot open shared object file\nmore text")


def test_the_first_failing_step_is_named_and_ends_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran_after = []
    steps = (("onnxruntime", _passes), ("TensorFlow", _fails), ("train", ran_after.append))
    monkeypatch.setattr(self_test, "STEPS", steps)
    passed: list[StepResult] = []

    with pytest.raises(SelfTestFailed) as raised:
        run_self_test(on_step=passed.append)

    assert raised.value.step == "TensorFlow"
    assert raised.value.reason == "libtensorflow_cc.so.2: cannot open shared object file"
    assert [r.name for r in passed] == ["onnxruntime"]
    assert ran_after == []


def test_cli_exits_non_zero_naming_the_failing_step(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(self_test, "STEPS", (("onnxruntime", _passes), ("export", _fails)))

    assert main(["--self-test"]) == 1

    captured = capsys.readouterr()
    assert "ok  onnxruntime" in captured.out
    assert "self-test failed at step 'export': libtensorflow_cc.so.2" in captured.err


def test_cli_prints_each_step_with_its_time_and_exits_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work_dirs: list[Path] = []

    def remember(run: SelfTestRun) -> str:
        work_dirs.append(run.work_dir)
        (run.work_dir / "scratch.txt").write_text("x")
        return "made a file"

    monkeypatch.setattr(self_test, "STEPS", (("onnxruntime", _passes), ("project", remember)))

    assert main(["--self-test"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:2] == ["ok", "onnxruntime"] and " s  fine" in lines[1]
    assert lines[2].endswith("made a file")
    assert lines[-1].startswith("Self-test passed: 2 steps in ")
    assert not work_dirs[0].exists()  # the temporary folder is gone


def _fake_gui(code: str) -> object:
    """A stand-in for `gui_command`: runs ``code`` with the screenshot path as argv[-1]."""
    return lambda arguments: [sys.executable, "-c", code, *arguments]


def test_desktop_step_reports_the_size_of_the_drawn_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    draw = "import sys, numpy, cv2; cv2.imwrite(sys.argv[-1], numpy.zeros((30, 40, 3), 'uint8'))"
    monkeypatch.setattr(self_test, "gui_command", _fake_gui(draw))

    assert self_test.check_desktop(SelfTestRun(tmp_path)).endswith("40x30 px")


def test_desktop_step_fails_with_the_window_s_last_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash = "import sys; sys.stderr.write('qt.qpa.plugin: no platform plugin\\n'); sys.exit(3)"
    monkeypatch.setattr(self_test, "gui_command", _fake_gui(crash))

    with pytest.raises(LinnaeusError, match=r"status 3: qt\.qpa\.plugin: no platform plugin"):
        self_test.check_desktop(SelfTestRun(tmp_path))


def test_a_bundle_runs_itself_and_a_source_install_runs_its_interpreter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = self_test.gui_command(["gui"])
    assert source == [sys.executable, "-m", "linnaeus.engine.cli.main", "gui"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert self_test.gui_command(["gui"]) == [sys.executable, "gui"]


@pytest.mark.slow
def test_the_engine_steps_train_export_and_classify_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No weights anywhere: the from-scratch branch (the bundle's test covers the other).
    monkeypatch.setattr(backbones, "package_weights_dir", lambda: tmp_path / "shipped")
    for variable, folder in (("LINNAEUS_WEIGHTS", "none"), ("XDG_DATA_HOME", "data"),
                             ("KERAS_HOME", "keras")):  # fmt: skip
        monkeypatch.setenv(variable, str(tmp_path / folder))
    steps = tuple(step for step in self_test.STEPS if step[0] != "desktop window")
    monkeypatch.setattr(self_test, "STEPS", steps)

    results = run_self_test(work_dir=tmp_path / "work")

    assert [r.name for r in results] == [name for name, _ in steps]
    details = {r.name: r.detail for r in results}
    assert details["backbone weights"].startswith("none found")
    assert details["train"].startswith("model small-resnet trained for 1 epoch")
    assert details["classify"].startswith("6 new images classified")
