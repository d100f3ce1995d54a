"""Storing one computed batch on its own thread while the next batch is computed.

Storing a 12 MP result (16-bit PNG encoding, durable write, the database row and audit
entry) takes a large share of a second; `run_queue` hands each computed batch to a
`BatchStorer`, which stores it on one thread while the runner computes the next batch.

- Bounded: at most one batch is being stored. `submit` first waits for the batch before
  (so at most two batches of full-size maps are held: the one stored, the one computed).
- In order: one thread, one batch after the other, each result in its own transaction as
  before, so what a killed process leaves is what the serial runner would leave: rows and
  files of the stored results, the rest 'analysing' (requeued when the case is next opened
  or analysed).
- Errors are not lost: what stopped a batch's storing (a full disk, a locked database) is
  raised again by the next `wait`/`submit`/`close` on the runner's thread, unchanged; the
  thread stores nothing after it.
- `background=False` stores on the caller's thread at once (the serial runner), so one code
  path serves both and they store identical results.
- The moment the serial runner would ask whether to pause or stop is when a batch is stored:
  `asked()` is called right then, on the storing thread, and `wait` returns its answer, so
  the runner can tell whether the batch it computed meanwhile should have been started at all.

The database allows this: every thread gets its own SQLite connection (`cases.db.Store`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class BatchStorer:
    """`with BatchStorer() as storer: storer.submit(work)`; see the module docstring."""

    def __init__(self, background: bool = True, asked: Callable[[], bool] | None = None):
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="declip-store") if background else None
        self._asked = asked
        self._future: Future | None = None
        self._inline_answer = False  # background=False: asked() once the last batch was stored

    def __enter__(self) -> BatchStorer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def busy(self) -> bool:
        """A batch is being stored now."""
        return self._future is not None and not self._future.done()

    def submit(self, work: Callable[[], None]) -> None:
        """Store with `work()`: after the batch before it is stored (raising what stopped that)."""
        self.wait()
        if self._executor is None:
            self._inline_answer = self._store(work)
            return
        self._future = self._executor.submit(self._store, work)

    def _store(self, work: Callable[[], None]) -> bool:
        work()
        return bool(self._asked()) if self._asked is not None else False

    def wait(self) -> bool:
        """Until the batch being stored is stored; raises what stopped it (once). Returns what
        `asked()` said once it was stored (False when nothing was being stored)."""
        future, self._future = self._future, None
        answer, self._inline_answer = self._inline_answer, False
        if future is not None:
            answer = future.result()
        return answer

    def close(self) -> None:
        """Finish storing what was handed over (a computed result is never dropped), then end
        the thread; raises what stopped the last batch's storing."""
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
