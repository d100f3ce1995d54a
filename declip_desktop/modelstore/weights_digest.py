"""The SHA-256 of a model's weights file, computed on a background thread.

Loading an installed ViT-L/14 model is mostly hashing its 1.3 GB weights file; building the
network and mapping the weights need no digest, so both run while the file is hashed, and
the caller takes the digest (`result()`) before it hands the network out. The digest is of
the file's bytes as read here, the same bytes the memory-mapped weights come from (a file
changed in between shows up as a mismatch with the card, or at the next load).
"""

from __future__ import annotations

import hashlib
import mmap
import threading
from pathlib import Path


class WeightsDigest:
    """`with WeightsDigest(path) as d: …; d.result()` → hex SHA-256 of the file.

    Leaving the block (normally or by an exception) waits for the thread, so no hashing
    outlives the load that asked for it; an error while reading is raised by `result()`.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._digest: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="declip-weights-sha256", daemon=True)

    def _run(self) -> None:
        try:
            self._digest = sha256_mapped(self.path)
        except BaseException as exc:  # noqa: BLE001 - handed to result(), which re-raises it
            self._error = exc

    def __enter__(self) -> WeightsDigest:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._thread.join()

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._digest is not None
        return self._digest


def sha256_mapped(path: str | Path) -> str:
    """SHA-256 of a file read through a memory map: one pass, no copy into Python buffers."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            return digest.hexdigest()
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            step = 64 << 20  # hashlib drops the GIL for each large update
            view = memoryview(mapped)
            try:
                for start in range(0, size, step):
                    digest.update(view[start:start + step])
            finally:
                view.release()
    return digest.hexdigest()
