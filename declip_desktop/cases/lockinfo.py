"""Who holds a case's write lock: a small file written each time a write transaction begins.

SQLite cannot say which process holds its write lock, and a row written inside the
transaction would be invisible to the waiting process until it commits. So every writer,
right after `BEGIN IMMEDIATE` succeeds, replaces `.tmp/writer.lock` (JSON) with what it is doing,
for whom, since when and from which process. A writer that cannot get the lock reads it
to say "case busy: import by alice since 20:14". The file is advisory: a program that is
not DeCLIP Desktop (an sqlite3 shell) holds the lock without writing it, which
`describe` detects when the last recorded writer has exited.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import datetime
from pathlib import Path

HOLDER_FILE = ".tmp/writer.lock"  # JSON; ".lock": with the other lock files, never scratch


def now_text() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def record(path: Path, operation: str, actor: str | None, since: str | None) -> None:
    """Replace the holder file. Never fails the change it describes: the information is advisory."""
    info = {"operation": operation, "actor": actor, "since": since or now_text(), "locked_at": now_text(),
            "pid": os.getpid(), "host": socket.gethostname()}
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")  # recovery discards strays
    try:
        tmp.write_text(json.dumps(info), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        # e.g. .tmp/ deleted by hand: the change itself is fine; busy messages are then less precise.
        tmp.unlink(missing_ok=True)


def read(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    except OSError:
        return False
    return True


def _hhmm(text: str | None) -> str:
    try:
        return datetime.fromisoformat(str(text)).strftime("%H:%M")
    except ValueError:
        return str(text)


def describe(path: Path) -> str:
    """'case busy: import by alice since 20:14 (process 4242 on host lab-3)' or the best we know."""
    info = read(path)
    if info is None:
        return "case busy: another program holds the case database's write lock (it did not say which)"
    pid, host = info.get("pid"), info.get("host")
    same_host = host == socket.gethostname()
    if same_host and isinstance(pid, int) and not _alive(pid):
        return ("case busy: a program that did not identify itself holds the case database's write lock "
                f"(the last DeCLIP writer, process {pid}, has exited; an sqlite3 shell or another tool?)")
    who = f" by {info['actor']}" if info.get("actor") else ""
    return (f"case busy: {info.get('operation', 'a change')}{who} since {_hhmm(info.get('since'))} "
            f"(process {pid} on {host})")
