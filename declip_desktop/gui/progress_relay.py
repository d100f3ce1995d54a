"""A QObject living on the UI thread whose signals carry progress from a pool thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class ProgressRelay(QObject):
    message = Signal(str)
    counts = Signal(int, int, str)  # done, total, item
