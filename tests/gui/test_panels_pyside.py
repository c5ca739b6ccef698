"""PySide6 6.12.0 on Python 3.11 dropped references to None and True on every call
until CPython aborted; pyproject.toml excludes it and this test guards the pin."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel


class _Sender(QObject):
    happened = Signal(int)


def test_many_qt_calls_and_signals_leave_none_and_true_alive(qtbot) -> None:
    label = QLabel()
    qtbot.addWidget(label)
    sender = _Sender()
    for n in range(50_000):  # more than None's reference count in a test run
        label.setText("x")  # returns None
        sender.happened.emit(n)  # returns True
    assert sys.getrefcount(None) > 1 and sys.getrefcount(True) > 1
