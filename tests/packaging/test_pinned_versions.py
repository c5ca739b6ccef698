"""The installer build refuses versions other than the tested ones in constraints.txt.

Fast and part of `make test`; linnaeus.spec runs the same check before it freezes.
"""

from __future__ import annotations

import importlib.metadata
import runpy
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
differing = runpy.run_path(str(REPO / "packaging" / "pinned_versions.py"))["differing"]


def test_installed_packages_at_other_versions_are_named(tmp_path: Path) -> None:
    installed = importlib.metadata.version("pytest")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(
        "# a comment\n"
        f"pytest=={installed}\n"
        "PyTest-QT==0.0.1  # names compare as pip compares them\n"
        "surely-not-installed-here==1.0\n"
        "numpy==0.1; sys_platform == 'nowhere'\n",
        encoding="utf-8",
    )

    assert differing(constraints) == [
        f"PyTest-QT {importlib.metadata.version('pytest-qt')} (tested: ==0.0.1)"
    ]


def test_the_constraints_pin_every_runtime_dependency_and_the_gpu_tensorflow() -> None:
    text = (REPO / "constraints.txt").read_text(encoding="utf-8")
    pinned = {line.split("==")[0].lower().replace("_", "-") for line in text.splitlines()}

    assert {"numpy", "pydicom", "python-gdcm", "pyside6-essentials", "onnxruntime"} <= pinned
    assert {"tensorflow-cpu", "tensorflow", "keras", "pyinstaller"} <= pinned
    assert "linnaeus" not in pinned and "onnxruntime-gpu" not in pinned
