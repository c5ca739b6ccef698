"""The installer build refuses versions other than the tested ones in constraints.txt.

Fast and part of `make test`; linnaeus.spec runs the same check before it freezes.
"""

from __future__ import annotations

import importlib.metadata
import runpy
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def test_every_dependency_of_the_cpu_build_the_tests_and_the_installer_is_pinned() -> None:
    # A dependency added to pyproject.toml without `make constraints` fails here.
    needed = set()
    for text in importlib.metadata.requires("linnaeus") or []:
        requirement = Requirement(text)
        for extra in ("", "cpu", "dev", "package"):
            if requirement.marker is None or requirement.marker.evaluate({"extra": extra}):
                needed.add(canonicalize_name(requirement.name))

    pinned = _pinned_names()

    assert needed - pinned == set()
    assert "python-gdcm" in needed and "pyinstaller" in needed


def test_the_gpu_build_gets_the_tested_tensorflow_and_its_own_onnxruntime() -> None:
    pinned = _pinned_names()

    assert {"tensorflow-cpu", "tensorflow"} <= pinned
    assert "onnxruntime-gpu" not in pinned and "linnaeus" not in pinned


def _pinned_names() -> set[str]:
    text = (REPO / "constraints.txt").read_text(encoding="utf-8")
    return {
        canonicalize_name(Requirement(line).name)
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    }
