"""The progress and cancel shapes shared by long jobs (import, reports, evaluation, model
import, training, downloads).

- `StepProgress`: `progress(done, total, text)`, called after each item (import, reports,
  evaluation, epochs of a training run); `total` is 0 when the job reports a stage it cannot
  count (`progress(0, 0, "hashing ViT-L-14.pt")`: model import, training notes).
- `CancelToken`: a `threading.Event` that is also callable, so the same object serves the
  jobs that poll `should_stop()` between items (`ShouldStop`) and those that wait on an
  event (downloads: `cancel=`). Setting it is thread-safe; a job checks it between items and
  stops cleanly there.

Downloads report bytes, speed and time left, which a count cannot carry: their events are
`modelstore.fetch.Progress`. Analysis runs report per-evidence results
(`analysis.ProgressEvent`, `cluster.ClusterProgress`): events of their own, not progress shapes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

#: `progress(done, total, text)`: `done` items of `total` finished; `text` names the current one
#: (`total` 0: a stage without a count, described by `text`).
StepProgress = Callable[[int, int, str], None]

#: `should_stop()`: asked between items; True stops the job cleanly there. A `CancelToken` is one.
ShouldStop = Callable[[], bool]


class CancelToken(threading.Event):
    """`token.cancel()` asks the job to stop; `token()` / `token.is_set()` ask whether it should."""

    def cancel(self) -> None:
        self.set()

    @property
    def cancelled(self) -> bool:
        return self.is_set()

    def __call__(self) -> bool:
        return self.is_set()


__all__ = ["CancelToken", "ShouldStop", "StepProgress"]
