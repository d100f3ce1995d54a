"""The files a download keeps beside its destination: the lock, the `.part`'s metadata.

`exclusive(dest)` holds an OS file lock on `<dest>.lock` (one download per file across
threads and processes; a crashed process leaves no stale lock); `<dest>.part.json` records
what the partial file is (URL, validators) so a resume can tell whether it may continue.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from declip_desktop.modelstore.download_errors import DownloadError


@contextlib.contextmanager
def exclusive(dest: Path):
    """One download per file at a time, across threads and processes (the app and a
    `declip models download` in a terminal must not append to the same `.part`).
    An OS file lock, so a crashed process never leaves a stale lock behind."""
    lock_path = dest.with_name(dest.name + ".lock")
    fh = open(lock_path, "a+b")
    try:
        try:
            _lock(fh)
        except OSError:
            raise DownloadError(
                f"Another download of {dest.name} is already running (in the app or another "
                "`declip models download`). Wait for it to finish, or cancel it first.",
                "busy",
            ) from None
        yield
    finally:
        fh.close()  # releases the lock


def _lock(fh) -> None:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def read_meta(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    path.write_text(json.dumps(meta), "utf-8")


def remove_files(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
