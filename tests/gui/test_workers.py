"""Workers run engine calls off the GUI thread and report every outcome."""

from __future__ import annotations

import threading

import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtCore import QThreadPool

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import check_cancelled
from linnaeus.gui.workers import Worker


def count(n: int, *, on_progress, cancel) -> tuple[int, str]:
    for i in range(n):
        check_cancelled(cancel)
        on_progress(Progress("count", i + 1, n))
    return n, threading.current_thread().name


def test_result_and_progress_arrive_on_the_gui_thread(qtbot) -> None:
    worker = Worker(count, 3)
    seen = []
    worker.progress.connect(lambda p: seen.append((p.done, threading.current_thread().name)))
    with qtbot.waitSignal(worker.finished, timeout=5000) as finished:
        worker.start()
    total, thread = finished.args[0]
    assert total == 3 and thread != threading.current_thread().name
    qtbot.waitUntil(lambda: len(seen) == 3)
    assert {name for _, name in seen} == {threading.current_thread().name}


def test_user_errors_and_bugs_become_messages(qtbot) -> None:
    def refuse(*, on_progress, cancel):
        raise LinnaeusError("That folder is not a project.")

    def crash(*, on_progress, cancel):
        raise ZeroDivisionError("division by zero")

    for function, expected in ((refuse, "That folder is not a project."),
                               (crash, "Unexpected error: division by zero")):  # fmt: skip
        worker = Worker(function)
        with qtbot.waitSignal(worker.failed, timeout=5000) as failed:
            worker.start()
        assert failed.args[0].startswith(expected)


def test_cancel_stops_between_steps(qtbot) -> None:
    gate = threading.Event()

    def wait_then_check(*, on_progress, cancel):
        gate.wait(5)
        check_cancelled(cancel)
        return "not cancelled"

    worker = Worker(wait_then_check)
    with qtbot.waitSignal(worker.cancelled, timeout=5000):
        worker.start()
        worker.cancel()
        gate.set()


def test_a_deleted_owner_hears_nothing_and_its_work_is_cancelled(qtbot) -> None:
    gate = threading.Event()
    checked = []

    def wait_then_check(*, on_progress, cancel):
        gate.wait(5)
        checked.append(cancel.cancelled)
        return "done"

    owner = QObject()
    worker = Worker(wait_then_check)
    heard = []
    for signal in (worker.finished, worker.failed, worker.cancelled, worker.progress):
        signal.connect(lambda *args: heard.append(args))
    worker.start(owner=owner)
    shiboken6.delete(owner)  # a panel closed while its work runs
    gate.set()
    QThreadPool.globalInstance().waitForDone(5000)
    qtbot.wait(50)  # queued deliveries, if any, would arrive now
    assert checked == [True] and heard == []
