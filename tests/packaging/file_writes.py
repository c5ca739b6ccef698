"""Which files a program wrote (and whether it went online), from an ``strace -ff -y`` trace.

The packaging test runs the installed `linnaeus` under strace with the
syscalls below traced in every process and thread (``-ff``: one trace file
each, so no call is split across lines by another thread), then asks which
paths were created, written, renamed, linked, removed or had their mode
changed. ``-y`` makes strace print the path behind each file descriptor:
``openat(AT_FDCWD</work>, "a.txt", O_WRONLY|O_CREAT, 0666) = 3</work/a.txt>``.
Only calls that succeeded count. A relative path is resolved against the
directory descriptor strace printed, else the process's last known working
directory (from ``chdir``/``fchdir`` or any ``AT_FDCWD</...>``), else the
directory the program started in.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterable
from collections.abc import Iterator
from pathlib import Path

# Every syscall that can leave a file created, changed or gone.
WRITING_SYSCALLS = (
    "open", "openat", "openat2", "creat", "truncate", "mkdir", "mkdirat", "mknod", "mknodat",
    "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat",
    "unlink", "unlinkat", "rmdir", "chmod", "fchmodat", "chdir", "fchdir", "connect",
)  # fmt: skip
_INET = re.compile(r"^(?:\d+ )?connect\(.*sa_family=AF_INET6?\b")
_WRITE_FLAGS = re.compile(r"\bO_(WRONLY|RDWR|CREAT|TRUNC|APPEND)\b")
_CALL = re.compile(
    r"^(?:\d+ )?(?P<name>\w+)\((?P<args>.*)\)\s+=\s+"  # [pid ]name(arguments) =
    r"(?P<result>-?\d+)(?:<(?P<opened>.*)>)?(?:\s.*)?$"  # result[<path opened>][ ERRNO (text)]
)
_FD_PATH = re.compile(r"^(?:AT_FDCWD|\d+)<(?P<path>.*)>$")
# Which arguments (by position) name a path that the call changes, and the
# directory-descriptor argument each is relative to (None: the working directory).
_CHANGED: dict[str, tuple[tuple[int, int | None], ...]] = {
    "creat": ((0, None),), "truncate": ((0, None),), "mkdir": ((0, None),),
    "mkdirat": ((1, 0),), "mknod": ((0, None),), "mknodat": ((1, 0),),
    "rename": ((0, None), (1, None)), "renameat": ((1, 0), (3, 2)), "renameat2": ((1, 0), (3, 2)),
    "link": ((1, None),), "linkat": ((3, 2),), "symlink": ((1, None),), "symlinkat": ((2, 1),),
    "unlink": ((0, None),), "unlinkat": ((1, 0),), "rmdir": ((0, None),),
    "chmod": ((0, None),), "fchmodat": ((1, 0),),
}  # fmt: skip


def strace_command(trace_prefix: Path, command: list[str]) -> list[str]:
    """``command`` under strace, tracing `WRITING_SYSCALLS` into ``trace_prefix.<pid>``."""
    return [
        "strace", "-ff", "-qq", "-y", "-s", "4096", "-e", "signal=none",
        "-e", "trace=" + ",".join(WRITING_SYSCALLS), "-o", str(trace_prefix), *command,
    ]  # fmt: skip


def split_arguments(text: str) -> list[str]:
    """The top-level, comma-separated arguments of one traced call."""
    arguments, current, depth, quoted, escaped = [], [], 0, False, False
    for char in text:
        if quoted:
            quoted = escaped or char != '"'
            escaped = not escaped and char == "\\"
        elif char == '"':
            quoted = True
        elif char in "{[<":
            depth += 1
        elif char in "}]>":
            depth -= 1
        elif char == "," and depth == 0:
            arguments.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    arguments.append("".join(current).strip())
    return arguments


def decode_string(argument: str) -> str | None:
    """The path in a quoted strace string argument (C escapes undone), else None."""
    if len(argument) < 2 or argument[0] != '"':
        return None
    raw = codecs.escape_decode(argument[1 : argument.rindex('"')].encode("latin-1"))[0]
    return raw.decode("utf-8", "surrogateescape")


def _fd_path(argument: str) -> str | None:
    match = _FD_PATH.match(argument)
    return match.group("path").removesuffix(" (deleted)") if match else None


def written_paths(lines: Iterable[str], start_dir: Path) -> Iterator[Path]:
    """The paths that the calls in one process's trace created, changed or removed."""
    cwd = str(start_dir)
    for line in lines:
        call = _CALL.match(line.strip())
        if call is None or int(call.group("result")) < 0:
            continue
        name, arguments = call.group("name"), split_arguments(call.group("args"))
        for argument in arguments:
            if argument.startswith("AT_FDCWD<"):
                cwd = _fd_path(argument) or cwd
        if name in ("chdir", "fchdir"):
            target = decode_string(arguments[0]) or _fd_path(arguments[0]) or cwd
            cwd = os.path.normpath(os.path.join(cwd, target))
        elif name in ("open", "openat", "openat2"):
            path_at, flags = (0, arguments[1]) if name == "open" else (1, arguments[2])
            if not _WRITE_FLAGS.search(flags):
                continue
            opened = call.group("opened")
            if opened is None:
                base = cwd if name == "open" else _fd_path(arguments[0]) or cwd
                opened = os.path.join(base, decode_string(arguments[path_at]) or "")
            yield Path(os.path.normpath(opened.removesuffix(" (deleted)")))
        else:
            for position, directory in _CHANGED.get(name, ()):
                path = decode_string(arguments[position])
                if path is None:
                    continue
                base = _fd_path(arguments[directory]) if directory is not None else None
                yield Path(os.path.normpath(os.path.join(base or cwd, path)))


def trace_writes(trace_prefix: Path, start_dir: Path) -> set[Path]:
    """Every path written by any process or thread traced into ``trace_prefix.*``."""
    found: set[Path] = set()
    for trace in trace_prefix.parent.glob(trace_prefix.name + ".*"):
        with trace.open(encoding="utf-8", errors="surrogateescape") as lines:
            found.update(written_paths(lines, start_dir))
    return found


def trace_connections(trace_prefix: Path) -> list[str]:
    """Every attempt, failed or not, to open a network (IPv4/IPv6) connection."""
    found = []
    for trace in trace_prefix.parent.glob(trace_prefix.name + ".*"):
        with trace.open(encoding="utf-8", errors="surrogateescape") as lines:
            found += [line.strip() for line in lines if _INET.match(line)]
    return found


def outside(paths: Iterable[Path], allowed: Iterable[Path]) -> list[Path]:
    """The paths under none of the ``allowed`` folders (or equal to one), sorted."""
    roots = [Path(os.path.normpath(a)) for a in allowed]
    return sorted(p for p in paths if not any(p == r or r in p.parents for r in roots))
