"""Whether this Python holds the tested versions that constraints.txt pins.

    python packaging/pinned_versions.py [CONSTRAINTS]

names every installed package whose version differs from the one CONSTRAINTS
(default: constraints.txt at the top of the checkout) pins, and exits 1 if
there is one. Packages the file does not pin, or that are not installed, pass:
constraints pin what is installed and install nothing. linnaeus.spec runs
`differing` before it freezes anything, so an installer holds the versions
CI tested.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

from packaging.requirements import Requirement

CONSTRAINTS = Path(__file__).resolve().parent.parent / "constraints.txt"


def differing(constraints: Path = CONSTRAINTS) -> list[str]:
    """ "NAME INSTALLED (tested: PINNED)" for each installed package at another version."""
    found = []
    for line in constraints.read_text(encoding="utf-8").splitlines():
        text = line.split("#")[0].strip()
        if not text:
            continue
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            found.append(f"{requirement.name} {installed} (tested: {requirement.specifier})")
    return found


def main(argv: list[str]) -> int:
    found = differing(Path(argv[0]) if argv else CONSTRAINTS)
    for entry in found:
        print(entry)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
