"""The entry point of the frozen application: what the bundle's `linnaeus` program runs.

A pip install gets three things for free that a PyInstaller bundle must do itself:

- No command opens the desktop window. The engine finds the GUI through the
  ``linnaeus.apps`` entry point, whose metadata the spec ships (copy_metadata);
  starting the GUI here directly keeps the double-click path working even if
  that metadata went missing, and makes PyInstaller see and bundle the GUI.
- ``sys.executable`` is this program, not a Python. The GUI starts its child
  processes (training, the demo) as ``sys.executable -c CODE ARGS``, so the
  bundle answers ``-c`` as Python does: runs CODE with ``sys.argv[0] == "-c"``.
- Child processes started through multiprocessing need freeze_support().
"""

from __future__ import annotations

import multiprocessing
import sys


def _run_code(code: str, arguments: list[str]) -> None:
    sys.argv = ["-c", *arguments]
    exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})


def main() -> int:
    arguments = sys.argv[1:]
    if len(arguments) >= 2 and arguments[0] == "-c":
        _run_code(arguments[1], arguments[2:])
        return 0
    if not arguments:
        from linnaeus.gui.app import main as gui_main

        return int(gui_main([]) or 0)
    from linnaeus.engine.cli.main import main as cli_main

    return cli_main(arguments)


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
