"""Durable file operations and inter-process locks for the case folder.

Why these exist: evidence and result maps must never be half-written, even if the
process is killed. Files are written under a temporary name in the case's `.tmp/`
folder, fsync'ed, hash-checked, and only then moved into place with an atomic
rename. Locks are advisory `flock`s on files in `.tmp/`; the kernel drops them when
the holding process dies, so a killed import never leaves a stale lock behind.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from declip_desktop.common import outputs

TMP_DIR = ".tmp"
STAGED_SUFFIX = ".staged"  # complete, fsync'ed, hash-checked; waiting for its database row
PARTIAL_SUFFIX = ".partial"  # being written; worthless after a crash

if sys.platform == "win32":  # pragma: no cover - exercised on Windows builds only
    import msvcrt

    def _lock(fd: int, exclusive: bool, blocking: bool) -> bool:
        # Windows has no shared locks via msvcrt; every lock is exclusive there.
        mode = msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, mode, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int, exclusive: bool, blocking: bool) -> bool:
        op = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        if not blocking:
            op |= fcntl.LOCK_NB
        try:
            fcntl.flock(fd, op)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class FileLock:
    """An advisory lock on `path`. Each instance has its own file descriptor, so two
    threads of one process exclude each other the same way two processes do."""

    def __init__(self, path: Path, exclusive: bool = True):
        self.path = Path(path)
        self.exclusive = exclusive
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: lock already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if _lock(fd, self.exclusive, blocking):
            self._fd = fd
            return True
        os.close(fd)
        return False

    def release(self) -> None:
        if self._fd is not None:
            try:
                _unlock(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def fsync_dir(path: Path) -> None:
    """Make renames/creations inside `path` durable; a case cannot do without, so failing raises."""
    outputs.fsync_dir(path, best_effort=False)


def make_read_only(path: Path) -> None:
    mode = os.stat(path).st_mode
    os.chmod(path, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def write_durable(path: Path, data: bytes) -> None:
    """Write `data` to `path` (a fresh temporary name) and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def staged_name(final_name: str, token: str) -> str:
    """Name in `.tmp/` of a finished file waiting for its rename to `final_name`.

    The final name comes first so recovery can find the staged copy of a file that the
    database already lists (`<final>~<token>.staged`)."""
    return f"{final_name}~{token}{STAGED_SUFFIX}"


def final_name_of_staged(name: str) -> str | None:
    if not name.endswith(STAGED_SUFFIX) or "~" not in name:
        return None
    return name[: name.rindex("~")]
