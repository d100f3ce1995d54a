"""Run a short function on the thread pool and get its result back on the UI thread.

Used for everything that may take more than a frame (decoding a 24 MP photo,
loading a map, full-resolution region statistics) so the event loop never waits.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

_alive: set["_Relay"] = set()


class _Relay(QObject):
    # Created on the UI thread: signals emitted from a pool thread are queued to it.
    done = Signal(object)
    failed = Signal(object, str)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay):
        super().__init__()
        self._fn = fn
        self._relay = relay

    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:  # reported to the caller's on_error on the UI thread
            self._relay.failed.emit(exc, traceback.format_exc())
        else:
            self._relay.done.emit(result)


def run_background(
    fn: Callable[[], Any],
    on_result: Callable[[Any], None],
    on_error: Callable[[Exception, str], None],
) -> None:
    relay = _Relay()
    _alive.add(relay)

    def finish_ok(result: Any) -> None:
        _alive.discard(relay)
        on_result(result)

    def finish_error(exc: Exception, detail: str) -> None:
        _alive.discard(relay)
        on_error(exc, detail)

    relay.done.connect(finish_ok)
    relay.failed.connect(finish_error)
    QThreadPool.globalInstance().start(_Task(fn, relay))


def wait_for_background(timeout_ms: int = 10_000) -> bool:
    """Block until pool tasks finish (tests and shutdown only)."""
    return QThreadPool.globalInstance().waitForDone(timeout_ms)
