"""Work around a reference-count bug of PySide6 6.12 on Python 3.11.

Measured here (PySide6 6.12.0, Python 3.11.7): every call of a C++ method that returns
`void` (QPainter.drawLine, QPainterPath.lineTo, QPainter.setPen, …) drops one reference to
`None` without having taken it. Python 3.12+ makes `None` immortal, so the wheels get away
with it there; on 3.11 `None`'s count falls by one per call and, once it reaches zero, the
interpreter aborts with "Fatal Python error: none_dealloc: deallocating None" (seen at exit
of `declip case report`, exit code 134, after a few tens of thousands of painting calls).

The report code keeps such calls few (outlines are one polygon per contour, not one call per
point), and `keep_none_alive()` tops up `None`'s count with references held in a list
before and after each report, so the process never gets near zero. Remove this module once
the project runs on Python ≥ 3.12 or a PySide6 release without the bug.
"""

from __future__ import annotations

import ctypes
import sys
import threading

#: References to None parked here; each costs 8 bytes (1 M = 8 MB).
_RESERVE: list[None] = []
# The list must outlive interpreter shutdown: when module globals are cleared at exit, a
# freed list would hand its references back and None would hit zero right then. One extra
# reference, never released, keeps the list (and the references it holds) alive for good.
if sys.version_info < (3, 12):
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(_RESERVE))
_LOCK = threading.Lock()
#: Keep None's count above this; a 50-item report makes well under 100 000 void calls.
MINIMUM = 1_000_000

AFFECTED = sys.version_info < (3, 12)


def keep_none_alive(minimum: int = MINIMUM) -> int:
    """Make sure `None` holds at least `minimum` references; returns how many were added."""
    if not AFFECTED:
        return 0
    with _LOCK:
        missing = minimum - sys.getrefcount(None)
        if missing > 0:
            _RESERVE.extend([None] * missing)
            return missing
    return 0


def start_none_guard(parent, interval_ms: int = 1000):
    """For long-running Qt processes (the GUI): top up `None` every `interval_ms` on `parent`'s thread.

    Returns the QTimer (owned by `parent`). A painting GUI makes thousands of void calls a
    second; one top-up of `MINIMUM` at start would only postpone the abort by minutes.
    """
    from PySide6.QtCore import QTimer

    keep_none_alive()
    timer = QTimer(parent)
    timer.setInterval(interval_ms)
    timer.timeout.connect(keep_none_alive)
    if AFFECTED:
        timer.start()
    return timer
