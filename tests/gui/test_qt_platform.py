"""Where Qt could not open a window, `linnaeus` says what to install instead of aborting."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from linnaeus.gui import app
from linnaeus.gui import qt_platform
from linnaeus.gui.qt_platform import APT_INSTALL
from linnaeus.gui.qt_platform import DNF_INSTALL
from linnaeus.gui.qt_platform import uses_xcb
from linnaeus.gui.qt_platform import window_problem

README = Path(__file__).resolve().parents[2] / "README.md"
X11 = {"DISPLAY": ":0"}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, True),
        (X11, True),
        ({"QT_QPA_PLATFORM": "xcb"}, True),
        ({"QT_QPA_PLATFORM": "xcb:display=:1"}, True),
        ({"QT_QPA_PLATFORM": "offscreen"}, False),
        ({"QT_QPA_PLATFORM": "wayland;xcb"}, False),
        ({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, False),
        ({"XDG_SESSION_TYPE": "x11", "WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, True),
    ],
)
def test_x11_is_checked_only_where_qt_would_use_it(environ: dict[str, str], expected: bool) -> None:
    assert uses_xcb(environ) is expected


def test_a_missing_library_gives_one_message_with_the_install_lines(monkeypatch) -> None:
    monkeypatch.setattr(qt_platform, "unloadable_library", lambda plugin: "libxcb-icccm.so.4")

    problem = window_problem(X11, "linux")

    assert problem is not None
    assert "needs libxcb-icccm.so.4, which is not installed" in problem
    assert APT_INSTALL in problem and DNF_INSTALL in problem
    assert "libxcb-cursor0 libxcb-icccm4" in APT_INSTALL and "libxcb-keysyms1" in APT_INSTALL


def test_a_display_nobody_answers_at_is_said_plainly(monkeypatch) -> None:
    monkeypatch.setattr(qt_platform, "unloadable_library", lambda plugin: None)

    problem = window_problem({"DISPLAY": ":987"}, "linux")

    assert problem is not None and "no X display answers at DISPLAY=:987" in problem


def test_a_working_display_and_plugin_leave_it_to_qt(monkeypatch) -> None:
    monkeypatch.setattr(qt_platform, "unloadable_library", lambda plugin: None)
    monkeypatch.setattr(qt_platform, "x_server_answers", lambda display: True)

    assert window_problem(X11, "linux") is None


def test_no_display_is_said_plainly() -> None:
    problem = window_problem({}, "linux")

    assert problem is not None and "DISPLAY is not set" in problem


@pytest.mark.parametrize(
    ("environ", "system"),
    [(X11, "darwin"), (X11, "win32"), ({"QT_QPA_PLATFORM": "offscreen"}, "linux")],
)
def test_other_systems_and_platforms_are_left_to_qt(environ: dict[str, str], system: str) -> None:
    assert window_problem(environ, system) is None


def test_the_check_loads_the_real_plugin_as_the_system_loader_does() -> None:
    plugin = qt_platform.xcb_plugin()
    assert plugin is not None and plugin.name == "libqxcb.so"

    missing = qt_platform.unloadable_library(plugin)

    if missing is None:  # everything Qt needs is installed here
        ctypes.CDLL(str(plugin))
    else:  # e.g. a build machine without libxcb-icccm4: that library really is absent
        with pytest.raises(OSError):
            ctypes.CDLL(missing)


def test_a_plugin_that_is_no_library_is_reported_in_the_loader_s_words(tmp_path: Path) -> None:
    fake = tmp_path / "libqxcb.so"
    fake.write_bytes(b"not a shared object\n" * 100)

    assert qt_platform.unloadable_library(fake) == f"{fake}: invalid ELF header"


def test_linnaeus_prints_the_problem_and_exits_non_zero_before_qt_starts(
    monkeypatch, capsys
) -> None:
    monkeypatch.setattr(app, "window_problem", lambda: "the window cannot open: test")
    monkeypatch.setattr(app, "create_application", pytest.fail)

    status = app.main([])

    assert status == 1
    assert capsys.readouterr().err == "linnaeus: error: the window cannot open: test\n"


def test_the_readme_gives_the_same_install_lines() -> None:
    text = README.read_text(encoding="utf-8")

    assert APT_INSTALL in text and DNF_INSTALL in text


def test_the_deb_recommends_every_library_the_install_line_names() -> None:
    control = (README.parent / "packaging" / "linux" / "control.in").read_text(encoding="utf-8")
    recommends = control.split("Recommends:")[1].split("\nSection:")[0]

    assert set(qt_platform.DEBIAN_PACKAGES) <= {name.strip() for name in recommends.split(",")}
