"""Reading, hash-checking and decoding the next batch while the current one is analysed.

`run_queue` analyses a case's queue batch by batch. Between two forward passes the network
would otherwise wait for the next batch's files to be read, hashed and decoded (a 12 MP JPEG
takes a few hundred milliseconds); `BatchPrefetcher` does that on one thread, one batch
ahead, so the network rarely waits.

- Bounded: at most `depth` loaded batches wait (each image as the network's small input
  tensor; a tiled localizer's also keep the decoded photo, which its tiles are cut from),
  plus the one being loaded.
- Cancellable: `close()` (also on leaving the `with` block) stops the thread between two
  images and waits for it; nothing it does writes anything, so stopping or killing the
  process at any point leaves the case as it was.
- Faithful: a file is hashed from the same bytes that are decoded (read once, when it is
  no larger than `WHOLE_READ_LIMIT`), so what is analysed is what was checked.

The localizer is duck-typed (no torch here): one with `prepare(source, name)` gets its
images decoded here; any other (test stand-ins) gets the file's path, as before.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declip_desktop.cases import Case, Evidence
from declip_desktop.common.hashing import sha256_bytes, sha256_file

#: Files up to this size are read once and decoded from the hashed bytes; larger ones are
#: hashed as a stream and decoded from the file (never holding gigabytes in memory).
WHOLE_READ_LIMIT = 512 << 20


@dataclass(frozen=True)
class LoadedEvidence:
    """One evidence file, checked against its import hash: `source` is what the localizer
    gets (its prepared input, or the path), or `error` says why it is not analysed."""

    evidence: Evidence
    source: Any = None
    error: str | None = None


def load_evidence(case: Case, ev: Evidence, localizer: Any) -> LoadedEvidence:
    """Read `ev`'s file, compare its SHA-256 with the import hash, decode it for `localizer`."""
    path = Path(case.evidence_file(ev))
    try:
        size = path.stat().st_size
        data = path.read_bytes() if size <= WHOLE_READ_LIMIT else None
        actual = sha256_bytes(data) if data is not None else sha256_file(path)
    except FileNotFoundError:
        return LoadedEvidence(ev, error=f"the evidence file {path.name} is missing from the case folder")
    except OSError as exc:
        return LoadedEvidence(ev, error=f"the evidence file {path.name} cannot be read: {exc.strerror or exc}")
    if actual != ev.sha256:
        return LoadedEvidence(ev, error="the evidence file changed since import (SHA-256 mismatch); not analysed")
    prepare = getattr(localizer, "prepare", None)
    if not callable(prepare):
        return LoadedEvidence(ev, source=path)
    return LoadedEvidence(ev, source=prepare(data if data is not None else path, name=path.name))


class BatchPrefetcher:
    """`with BatchPrefetcher(case, localizer, batches) as pf: pf.next()` → the next batch's
    `LoadedEvidence` list, in order; see the module docstring."""

    def __init__(self, case: Case, localizer: Any, batches: Sequence[Sequence[Evidence]], depth: int = 1):
        self._case, self._localizer = case, localizer
        self._batches = [list(b) for b in batches]
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="declip-prefetch", daemon=True)
        self._taken = 0

    def __enter__(self) -> BatchPrefetcher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _run(self) -> None:
        try:
            for batch in self._batches:
                loaded = []
                for ev in batch:
                    if self._stop.is_set():
                        return
                    loaded.append(load_evidence(self._case, ev, self._localizer))
                if not self._put(loaded):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to next(), which re-raises it
            self._put(exc)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    @property
    def remaining(self) -> int:
        """Batches not taken yet."""
        return len(self._batches) - self._taken

    def next(self) -> list[LoadedEvidence]:
        """The next batch (blocks until it is loaded); raises what broke the thread."""
        if self._taken >= len(self._batches):
            raise IndexError("every batch was already taken")
        while True:
            try:
                item = self._queue.get(timeout=0.1)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("the prefetch thread ended early") from None
        if isinstance(item, BaseException):
            raise item
        self._taken += 1
        return item

    def close(self) -> None:
        """Stop loading (between two images) and wait for the thread."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()  # unblock a put waiting on a full queue
            except queue.Empty:
                self._thread.join(timeout=0.05)
