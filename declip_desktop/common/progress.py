"""The progress and cancel shapes shared by long jobs (import, analysis, reports, downloads).

- `StepProgress`: `progress(done, total, text)`, called after each item (import, reports).
- `CancelToken`: a `threading.Event` that is also callable, so the same object serves the
  jobs that poll `should_stop()` between items and those that wait on an event (downloads).
  Setting it is thread-safe; a job checks it between items and stops cleanly there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

#: `progress(done, total, text)`: `done` items of `total` finished; `text` names the current one.
StepProgress = Callable[[int, int, str], None]


class CancelToken(threading.Event):
    """`token.cancel()` asks the job to stop; `token()` / `token.is_set()` ask whether it should."""

    def cancel(self) -> None:
        self.set()

    @property
    def cancelled(self) -> bool:
        return self.is_set()

    def __call__(self) -> bool:
        return self.is_set()


__all__ = ["CancelToken", "StepProgress"]
