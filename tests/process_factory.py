"""Other processes for tests of one writer per project: one holding a project's
lock, one that has ended, one killed (kill -9) in the middle of its work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# A second process that holds a project's lock until it is killed.
_HOLDER = textwrap.dedent(
    """
    import sys, time
    from linnaeus.engine.project import lock
    with lock.hold(sys.argv[1], sys.argv[2]):
        print("held", flush=True)
        time.sleep(120)
    """
)


@contextmanager
def held_by_another_process(project: Path, what: str) -> Iterator[subprocess.Popen[str]]:
    """A child process holding ``project``'s lock, saying it is doing ``what``."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(project), what], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        yield child
    finally:
        child.kill()
        child.wait()


def dead_pid() -> int:
    """The id of a process of this computer that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def killed_while(script: str, *arguments: str) -> str:
    """Run the Python ``script`` until it prints its first line, then kill -9 it;
    return that line."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, *arguments], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    return line
