"""The strace reading behind the packaging test's "writes nothing outside" check.

Fast and part of `make test`; the packaging test itself needs a built .deb
(`make package-test`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.file_writes import outside
from tests.packaging.file_writes import split_arguments
from tests.packaging.file_writes import strace_command
from tests.packaging.file_writes import trace_connections
from tests.packaging.file_writes import trace_writes
from tests.packaging.file_writes import written_paths

TRACE = r"""
openat(AT_FDCWD</home/u>, "/opt/linnaeus/x.so", O_RDONLY) = 3</opt/linnaeus/x.so>
openat(AT_FDCWD</home/u>, "/etc/hosts", O_WRONLY|O_CREAT, 0666) = -1 EACCES (Permission denied)
openat(AT_FDCWD</home/u>, "notes.txt", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 4</home/u/notes.txt>
openat(5</var/cache>, "fc/x.cache", O_RDWR|O_CREAT, 0644) = 6</var/cache/fc/x.cache (deleted)>
openat2(AT_FDCWD</home/u>, "/srv/a", {flags=O_RDWR|O_CREAT, mode=0600}, 24) = 7</srv/a>
chdir("work") = 0
mkdir("project", 0777) = 0
rename("a.tmp", "/home/u/work/b") = 0
renameat2(8</tmp/x>, "old", AT_FDCWD</home/u/work>, "new", RENAME_NOREPLACE) = 0
unlinkat(AT_FDCWD</home/u>, "caf\303\251.png", 0) = 0
symlink("target", "/usr/local/bin/linnaeus") = 0
fchmodat(AT_FDCWD</home/u>, "/etc/passwd", 0644) = -1 EPERM (Operation not permitted)
fchdir(9</data>) = 0
creat("out, with comma.csv", 0644) = 10</data/out, with comma.csv>
"""


def test_only_successful_changes_count_with_relative_paths_resolved() -> None:
    paths = set(written_paths(TRACE.splitlines(), Path("/start")))

    assert paths == {
        Path("/home/u/notes.txt"),
        Path("/var/cache/fc/x.cache"),
        Path("/srv/a"),
        Path("/home/u/work/project"),  # after chdir("work") from /home/u
        Path("/home/u/work/a.tmp"),
        Path("/home/u/work/b"),
        Path("/tmp/x/old"),
        Path("/home/u/work/new"),
        Path("/home/u/café.png"),
        Path("/usr/local/bin/linnaeus"),
        Path("/data/out, with comma.csv"),
    }


def test_arguments_split_at_top_level_commas_only() -> None:
    text = '3</a, b>, "x, \\"y\\"", {flags=O_RDWR, mode=0600}, 24'
    assert split_arguments(text) == ["3</a, b>", '"x, \\"y\\""', "{flags=O_RDWR, mode=0600}", "24"]


def test_outside_keeps_what_no_allowed_folder_holds() -> None:
    paths = [Path("/home/u/a"), Path("/home/u"), Path("/home/user2/b"), Path("/etc/x")]
    assert outside(paths, [Path("/home/u")]) == [Path("/etc/x"), Path("/home/user2/b")]


def test_network_connections_are_found_whether_or_not_they_succeed(tmp_path: Path) -> None:
    (tmp_path / "t.1").write_text(
        'connect(3<socket:[1]>, {sa_family=AF_UNIX, sun_path="/run/dbus"}, 110) = 0\n'
        "connect(4<socket:[2]>, {sa_family=AF_INET6, sin6_port=htons(443)}, 28) = -1 ENETUNREACH\n"
        'openat(AT_FDCWD</>, "AF_INET", O_RDONLY) = 5</AF_INET>\n'
    )
    assert trace_connections(tmp_path / "t") == [
        "connect(4<socket:[2]>, {sa_family=AF_INET6, sin6_port=htons(443)}, 28) = -1 ENETUNREACH"
    ]


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_a_real_trace_finds_a_child_process_s_writes(tmp_path: Path) -> None:
    code = (
        "import os, subprocess, sys; os.mkdir('made'); "
        "subprocess.run([sys.executable, '-c', \"open('made/child.txt', 'w').close()\"])"
    )
    prefix = tmp_path / "trace" / "t"
    prefix.parent.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    command = strace_command(prefix, [sys.executable, "-c", code])

    subprocess.run(command, cwd=work, check=True, env={"PYTHONDONTWRITEBYTECODE": "1"})

    written = trace_writes(prefix, work)
    assert {work / "made", work / "made" / "child.txt"} <= written
    assert outside(written, [work]) == []
