"""The ``linnaeus`` command: headless subcommands, or the desktop application.

Importing this module imports no Qt: subcommands run through the engine's CLI,
and the GUI is imported only when it is asked for.
"""

from __future__ import annotations

import sys

from linnaeus.engine import cli


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
