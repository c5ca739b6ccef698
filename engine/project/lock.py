"""One writer at a time per project: the project lock, and who holds it.

Creating a project, importing images, training (or resuming), exporting a
model version and building the demo write much into a project; each holds the
project's lock while it does (`hold`, or `holding_lock` on a function that
takes the store first). The lock is the operating system's lock on the file
``linnaeus.lock`` in the project folder (the filelock library), so it is
released when its process ends, however it ends. Beside it,
``linnaeus.lock.json`` says who holds it (what, since when, which process on
which computer) for the message a second writer gets after waiting `WAIT_S`
seconds (`ProjectBusyError`); it is believed only while the lock is held and
its process lives. Label edits are short SQLite transactions and take no lock;
reading takes none either. A thread that holds the lock may take it again:
the demo holds it while it imports, trains and exports.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Concatenate
from typing import ParamSpec
from typing import Protocol
from typing import TypeVar

from filelock import FileLock
from filelock import Timeout

from linnaeus.engine.atomic import atomic_write_bytes
from linnaeus.engine.disk_space import is_disk_full
from linnaeus.engine.errors import ProjectBusyError
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.host import host_name
from linnaeus.engine.host import is_running
from linnaeus.engine.project.database import utc_now

log = logging.getLogger(__name__)

LOCK_FILE = "linnaeus.lock"
HOLDER_FILE = "linnaeus.lock.json"
WAIT_S = 3.0  # how long a second writer waits before it says who holds the project
_WAIT_ADVICE = "Wait for it to finish or cancel it."


@dataclass(frozen=True)
class LockHolder:
    """Who holds a project's lock."""

    what: str  # e.g. "training v4"
    since: str  # ISO 8601 UTC
    pid: int
    host: str

    def describe(self) -> str:
        """E.g. "training v4 since 10:12 (process 4811 on this computer)"."""
        where = "this computer" if self.host == host_name() else f"the computer {self.host}"
        return f"{self.what} since {_clock(self.since)} (process {self.pid} on {where})"


@dataclass
class _Hold:
    """A lock this process holds, in one of its threads."""

    lock: FileLock
    thread: int
    holder: LockHolder


_held: dict[Path, _Hold] = {}


class _HasProjectDir(Protocol):
    project_dir: Path


_Store = TypeVar("_Store", bound=_HasProjectDir)
_Parameters = ParamSpec("_Parameters")
_Result = TypeVar("_Result")


@contextmanager
def hold(project_dir: Path, what: str, *, wait_s: float | None = None) -> Iterator[None]:
    """Hold the project's lock, saying ``what`` is being done (e.g. "importing
    images"); if another process holds it, wait up to ``wait_s`` seconds
    (default `WAIT_S`), then raise `ProjectBusyError` saying who holds it."""
    project_dir = Path(project_dir).absolute()
    key = project_dir / LOCK_FILE
    mine = _held.get(key)
    if mine is not None and mine.thread == threading.get_ident():
        outer = mine.holder
        _describe(project_dir, mine, replace(outer, what=what))
        try:
            yield
        finally:
            _describe(project_dir, mine, outer)
        return
    lock = _acquire(project_dir, WAIT_S if wait_s is None else wait_s)
    if lock is None:  # the file system cannot lock files: go on unguarded
        yield
        return
    mine = _Hold(lock, threading.get_ident(), LockHolder(what, utc_now(), os.getpid(), host_name()))
    _held[key] = mine
    try:
        _describe(project_dir, mine, mine.holder)
        yield
    finally:
        del _held[key]
        (project_dir / HOLDER_FILE).unlink(missing_ok=True)
        lock.release()


def holding_lock(
    what: str,
) -> Callable[
    [Callable[Concatenate[_Store, _Parameters], _Result]],
    Callable[Concatenate[_Store, _Parameters], _Result],
]:
    """Make a function whose first argument is a project store hold that
    project's lock (`hold`) while it runs."""

    def decorate(
        function: Callable[Concatenate[_Store, _Parameters], _Result],
    ) -> Callable[Concatenate[_Store, _Parameters], _Result]:
        @functools.wraps(function)
        def holding(
            store: _Store, *args: _Parameters.args, **kwargs: _Parameters.kwargs
        ) -> _Result:
            with hold(store.project_dir, what):
                return function(store, *args, **kwargs)

        return holding

    return decorate


def doing(project_dir: Path, what: str) -> None:
    """Say what this thread now does under the project's lock (e.g. "training v4",
    once the version exists); nothing if it does not hold the lock."""
    project_dir = Path(project_dir).absolute()
    mine = _held.get(project_dir / LOCK_FILE)
    if mine is not None and mine.thread == threading.get_ident():
        _describe(project_dir, mine, replace(mine.holder, what=what))


def busy_message(project_dir: Path) -> str | None:
    """The line a writer would get now, if another process (or another thread)
    holds the project's lock; None if it is free."""
    project_dir = Path(project_dir).absolute()
    mine = _held.get(project_dir / LOCK_FILE)
    if mine is not None and mine.thread == threading.get_ident():
        return None
    lock = FileLock(project_dir / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return _busy_text(project_dir)
    except (OSError, NotImplementedError):
        return None
    lock.release()
    return None


def holder(project_dir: Path) -> LockHolder | None:
    """Who the holder file says holds the lock, if that can be believed: its
    process still runs (or runs on another computer). Only meaningful while
    the lock is held."""
    try:
        data = json.loads((Path(project_dir) / HOLDER_FILE).read_text(encoding="utf-8"))
        found = LockHolder(
            str(data["what"]), str(data["since"]), int(data["pid"]), str(data["host"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if found.host == host_name() and not is_running(found.pid):
        return None  # left by a process that was killed
    return found


def _acquire(project_dir: Path, wait_s: float) -> FileLock | None:
    lock = FileLock(project_dir / LOCK_FILE)
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        raise ProjectBusyError(_busy_text(project_dir)) from None
    except NotImplementedError:
        log.warning("the file system of %s cannot lock files; writing unguarded", project_dir)
        return None
    except OSError as error:
        raise ProjectError(
            f"Cannot write to the project folder {project_dir}: {error.strerror or error}."
        ) from None
    return lock


def _busy_text(project_dir: Path) -> str:
    found = holder(project_dir)
    if found is None:
        return f"This project is busy: another Linnaeus process is writing to it. {_WAIT_ADVICE}"
    return f"This project is busy: {found.describe()}. {_WAIT_ADVICE}"


def _describe(project_dir: Path, mine: _Hold, now: LockHolder) -> None:
    """Record ``now`` as what this process does under the lock."""
    mine.holder = now
    try:
        atomic_write_bytes(project_dir / HOLDER_FILE, json.dumps(asdict(now)).encode())
    except OSError as error:  # the lock still holds; only the message is poorer
        # a full disk is said once, by the DiskFullError of the work that fills it
        say = log.info if is_disk_full(error) else log.warning
        say("cannot record who holds the lock of %s: %s", project_dir, error)


def _clock(utc_text: str) -> str:
    """A UTC time stamp as local "10:12" today, else "2026-12-06 10:12"."""
    try:
        when = datetime.fromisoformat(utc_text).astimezone()
    except ValueError:
        return utc_text
    today = datetime.now().astimezone().date()
    return when.strftime("%H:%M" if when.date() == today else "%Y-%m-%d %H:%M")
