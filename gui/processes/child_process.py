"""Running ``linnaeus`` commands as child processes that answer in JSON lines.

Training, ONNX export and the HTML report need TensorFlow, which the GUI
never imports: they run as child processes of the headless command line, so a
crash or an out-of-memory ends the child, never the window, and GPU memory is
freed when the child ends. `ChildProcess` wraps a QProcess: it decodes the
JSON objects the child prints one per line (tolerating partial lines and
stray non-JSON output), keeps the last lines of its error output, stops it
gently (SIGTERM) and then firmly (kill), and reports how it ended.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import deque
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtCore import QProcess
from PySide6.QtCore import QProcessEnvironment
from PySide6.QtCore import QTimer
from PySide6.QtCore import Signal

log = logging.getLogger(__name__)

# How a command line becomes a program to start: ``linnaeus ARGS`` -> (program, arguments).
# Tests replace it to run a fake trainer.
CommandFactory = Callable[[Sequence[str]], tuple[str, list[str]]]

# The headless command line as a module (engine/cli/__main__.py): what this
# interpreter runs as ``linnaeus``. A bundle is its own ``linnaeus`` program instead.
_CLI_MODULE = "linnaeus.engine.cli"
STDERR_LINES_KEPT = 40


def linnaeus_command(arguments: Sequence[str]) -> tuple[str, list[str]]:
    """The program and arguments that run ``linnaeus ARGUMENTS`` with the GUI's own
    interpreter and installation (never another ``linnaeus`` found on PATH)."""
    if getattr(sys, "frozen", False):  # a bundled application is its own command line
        return sys.executable, list(arguments)
    return sys.executable, ["-m", _CLI_MODULE, *arguments]


class JsonLineBuffer:
    """Splits a byte stream into lines and decodes the JSON objects among them.

    A line may arrive in pieces; lines that are not JSON objects (a library's
    warning, a stray print) are kept in ``noise`` and otherwise ignored.
    """

    def __init__(self, noise_lines: int = 20) -> None:
        self._pending = b""
        self.noise: deque[str] = deque(maxlen=noise_lines)

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """The JSON objects completed by ``data``."""
        *lines, self._pending = (self._pending + data).split(b"\n")
        return [found for line in lines if (found := self._decode(line)) is not None]

    def flush(self) -> list[dict[str, Any]]:
        """The object on an unterminated last line, if any (call when the stream ends)."""
        line, self._pending = self._pending, b""
        found = self._decode(line)
        return [] if found is None else [found]

    def _decode(self, line: bytes) -> dict[str, Any] | None:
        text = line.decode("utf-8", errors="replace").strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        self.noise.append(text)
        log.debug("child process printed a non-JSON line: %s", text)
        return None


class _TextTail:
    """The last lines of a text stream that arrives in pieces."""

    def __init__(self, lines: int) -> None:
        self._pending = ""
        self.lines: deque[str] = deque(maxlen=lines)

    def feed(self, data: bytes) -> None:
        *complete, self._pending = (self._pending + data.decode("utf-8", "replace")).split("\n")
        self.lines.extend(line.rstrip() for line in complete if line.strip())

    def all_lines(self) -> list[str]:
        return [*self.lines, *([self._pending.rstrip()] if self._pending.strip() else [])]


@dataclass(frozen=True)
class ProcessEnd:
    """How a child process ended."""

    exit_code: int | None  # None if it crashed, was killed or never started
    stop_requested: bool  # the user asked it to stop
    error_output: list[str]  # the last lines it wrote to stderr
    start_error: str | None = None  # why it could not be started


def failure_message(end: ProcessEnd, what: str) -> str:
    """A message for the user about a child process that ended without a result.

    ``what`` names the child, e.g. "The trainer". The command line's own
    one-line error ("linnaeus: error: ...") is shown as it is; a traceback is
    reduced to its last line (the whole of it goes to the log).
    """
    if end.start_error is not None:
        return f"{what} could not be started: {end.start_error}"
    lines = end.error_output
    for line in reversed(lines):
        if ": error: " in line and line.startswith("linnaeus"):
            return line.split(": error: ", 1)[1]
    if end.exit_code is None:
        head = f"{what} stopped unexpectedly (it crashed or was stopped by the system)."
    else:
        head = f"{what} stopped unexpectedly (exit status {end.exit_code})."
    if lines:
        log.error("%s\n%s", head, "\n".join(lines))
        return f"{head}\nIts last message: {lines[-1]}\nThe full output is in the log."
    return head


class ChildProcess(QObject):
    """One child process at a time that prints JSON lines.

    Signals: ``line_received(dict)`` for each JSON object on stdout;
    ``ended(ProcessEnd)`` once when the process has ended (or failed to start).
    """

    line_received = Signal(dict)
    ended = Signal(object)

    def __init__(self, parent: QObject | None = None, *, kill_after_ms: int = 30_000) -> None:
        super().__init__(parent)
        self._kill_after_ms = kill_after_ms
        self._process: QProcess | None = None
        self._lines = JsonLineBuffer()
        self._stderr = _TextTail(STDERR_LINES_KEPT)
        self._stop_requested = False
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self.kill)

    @property
    def is_running(self) -> bool:
        return self._process is not None

    @property
    def noise(self) -> list[str]:
        """The last non-JSON lines the child printed on stdout."""
        return list(self._lines.noise)

    def start(self, program: str, arguments: Sequence[str]) -> None:
        """Start ``program ARGUMENTS``; refused while one is running."""
        if self._process is not None:
            raise RuntimeError("a child process is already running")
        self._lines = JsonLineBuffer()
        self._stderr = _TextTail(STDERR_LINES_KEPT)
        self._stop_requested = False
        process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("PYTHONUNBUFFERED", "1")
        environment.insert("PYTHONIOENCODING", "utf-8")
        process.setProcessEnvironment(environment)
        process.readyReadStandardOutput.connect(self._on_process_stdout)
        process.readyReadStandardError.connect(self._on_process_stderr)
        process.finished.connect(self._on_process_finished)
        process.errorOccurred.connect(self._on_process_error)
        self._process = process
        log.info("starting %s %s", program, " ".join(arguments))
        process.start(program, list(arguments))

    def stop(self, *, kill_after_ms: int | None = None) -> None:
        """Ask the child to stop (SIGTERM; on Windows a close request) and kill it if it
        has not ended after ``kill_after_ms`` (default: the one given at construction)."""
        if self._process is None:
            return
        self._stop_requested = True
        self._process.terminate()
        self._kill_timer.start(self._kill_after_ms if kill_after_ms is None else kill_after_ms)

    def kill(self) -> None:
        """End the child at once."""
        if self._process is not None:
            self._stop_requested = True
            self._process.kill()

    def _on_process_stdout(self) -> None:
        if self._process is not None:
            self._emit_lines(self._lines.feed(bytes(self._process.readAllStandardOutput().data())))

    def _on_process_stderr(self) -> None:
        if self._process is not None:
            self._stderr.feed(bytes(self._process.readAllStandardError().data()))

    def _emit_lines(self, lines: list[dict[str, Any]]) -> None:
        for line in lines:
            self.line_received.emit(line)

    def _on_process_finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        self._on_process_stdout()
        self._on_process_stderr()
        self._emit_lines(self._lines.flush())
        crashed = status == QProcess.ExitStatus.CrashExit
        self._end(
            ProcessEnd(
                None if crashed else exit_code, self._stop_requested, self._stderr.all_lines()
            )
        )

    def _on_process_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self._process is not None:
            reason = self._process.errorString()  # no finished() follows
            self._end(ProcessEnd(None, self._stop_requested, [], start_error=reason))

    def _end(self, end: ProcessEnd) -> None:
        self._kill_timer.stop()
        process, self._process = self._process, None
        if process is not None:
            process.deleteLater()
        self.ended.emit(end)
