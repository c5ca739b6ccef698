"""Whether Qt can open a window here, asked before the QApplication exists.

On Linux Qt draws through its X11 platform plugin (``libqxcb.so``), which
needs system libraries that a fresh or minimal install may lack
(libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1, ...). When one is missing Qt
prints a hint about plugins and aborts the whole process, and it does the
same when no X server answers at $DISPLAY. So `window_problem` loads the
plugin first, as Qt would, and connects to the display, and turns a failure
into one message: for missing libraries, with the apt and dnf lines that
install what the plugin needs. The README gives the same lines (a test keeps
them equal).
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QLibraryInfo

# What libqxcb.so and libQt6XcbQpa.so need beyond what QtGui itself loads
# (`ldd` on both), by Debian/Ubuntu and by Fedora/RHEL package.
DEBIAN_PACKAGES = (
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-render0",
    "libxcb-shape0",
    "libxcb-shm0",
    "libxcb-sync1",
    "libxcb-util1",
    "libxcb-xfixes0",
    "libxcb-xkb1",
    "libxkbcommon-x11-0",
    "libx11-xcb1",
)
FEDORA_PACKAGES = (
    "xcb-util-cursor",
    "xcb-util-wm",
    "xcb-util-image",
    "xcb-util-keysyms",
    "xcb-util-renderutil",
    "xcb-util",
    "libxcb",
    "libxkbcommon-x11",
    "libX11-xcb",
)
APT_INSTALL = "sudo apt install " + " ".join(DEBIAN_PACKAGES)
DNF_INSTALL = "sudo dnf install " + " ".join(FEDORA_PACKAGES)

_XCB_PLUGIN = "libqxcb.so"
_MISSING_LIBRARY = re.compile(r"^(?P<name>[^:\s]+): cannot open shared object file")


def window_problem(
    environ: Mapping[str, str] = os.environ, system: str = sys.platform
) -> str | None:
    """Why Qt could not open a window here, as a message for the user; None when it can."""
    if system != "linux" or not uses_xcb(environ):
        return None
    if not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"):
        return (
            "there is no screen to open the window on (DISPLAY is not set): start "
            "Linnaeus from the desktop, or use its commands (linnaeus --help)"
        )
    plugin = xcb_plugin()
    if plugin is None:
        return None  # a Qt laid out differently: let Qt itself try
    missing = unloadable_library(plugin)
    if missing is not None:
        return missing_libraries_message(missing)
    display = environ.get("DISPLAY", "")
    if display and not x_server_answers(display):
        return (
            f"the window cannot open: no X display answers at DISPLAY={display}. Start "
            "Linnaeus from the desktop (over ssh: ssh -X), or use its commands (linnaeus --help)"
        )
    return None


def uses_xcb(environ: Mapping[str, str]) -> bool:
    """Whether Qt would draw through X11: asked for, or the default outside Wayland."""
    requested = environ.get("QT_QPA_PLATFORM", "")
    if requested:
        return requested.split(";")[0].split(":")[0] == "xcb"
    return not (environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY"))


def xcb_plugin() -> Path | None:
    """Qt's X11 platform plugin, where this Qt loads plugins from; None if not found."""
    folders = [QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)]
    folders += os.environ.get("QT_PLUGIN_PATH", "").split(os.pathsep)
    for folder in filter(None, folders):
        plugin = Path(folder) / "platforms" / _XCB_PLUGIN
        if plugin.is_file():
            return plugin
    return None


def unloadable_library(plugin: Path) -> str | None:
    """What stops ``plugin`` loading, as the system's loader says it; None when it loads."""
    try:
        ctypes.CDLL(str(plugin))
    except OSError as error:
        reason = str(error)
        found = _MISSING_LIBRARY.match(reason)
        return found["name"] if found else reason
    return None


def x_server_answers(display: str) -> bool:
    """Whether an X server accepts a connection at ``display``, as Qt's would be made."""
    xcb = ctypes.CDLL("libxcb.so.1")
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)  # never NULL: errors are flagged
    try:
        return xcb.xcb_connection_has_error(connection) == 0
    finally:
        xcb.xcb_disconnect(connection)


def missing_libraries_message(missing: str) -> str:
    """The message for a plugin that does not load because of ``missing``."""
    return (
        f"the window cannot open: Qt's X11 plugin needs {missing}, which is not installed. "
        f"Install what it needs with\n    {APT_INSTALL}\n(Debian, Ubuntu) or\n"
        f"    {DNF_INSTALL}\n(Fedora, RHEL), then start Linnaeus again. "
        "The commands (linnaeus --help) work without it."
    )
