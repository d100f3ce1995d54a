"""SQLite access for one case: a connection per thread, WAL, short write transactions.

Why it looks like this: the GUI thread, an analysis worker thread and a CLI process
may all use one case at the same time. SQLite handles that if every writer takes the
write lock up front (`BEGIN IMMEDIATE`, so two readers never deadlock when both try
to upgrade), waits politely when it is taken (busy timeout plus our own retry with
back-off), and keeps its transactions short. A connection is never shared between
threads; each thread gets its own on first use.
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from declip_desktop.cases import lockinfo
from declip_desktop.cases.errors import CaseBusyError, CaseError, CaseReadOnlyError
from declip_desktop.common.outputs import DiskFullError, free_bytes

#: How long SQLite itself waits for a lock before reporting SQLITE_BUSY.
BUSY_TIMEOUT_S = 2.0
#: How long a writer keeps retrying before it says who holds the case ("a few seconds": our
#: own transactions last milliseconds, so a longer wait means something is stuck or busy).
RETRY_TOTAL_S = 6.0


#: What one write transaction may add to the WAL, quoted when the disk is full (a few pages).
_WAL_GROWTH = 1 << 20
#: Below this much free space a SQLite I/O error is taken for what it is: a full disk.
_NEARLY_FULL = 1 << 20


def is_full(exc: BaseException, path: Path | None = None) -> bool:
    """SQLITE_FULL: the database or its journal could not grow (the disk or quota is full).

    On a full disk SQLite often reports SQLITE_IOERR instead (the WAL index cannot grow, a
    journal cannot be created); that counts too when the disk holding `path` is nearly full."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code == 13 or "database or disk is full" in str(exc).lower():
        return True
    if path is None or not (code is not None and code & 0xFF == 10 or "disk i/o error" in str(exc).lower()):
        return False
    free = free_bytes(path)
    return free is not None and free < _NEARLY_FULL


def is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def is_read_only_medium(folder: Path) -> bool:
    """True on a read-only mount (or a folder we may not write): nobody can change the case there."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return True
    except (OSError, AttributeError):  # AttributeError: no statvfs on Windows
        pass  # fall back to the access check below
    return not os.access(folder, os.W_OK)


class _Connection(sqlite3.Connection):
    """A plain connection that can be weakly referenced (tests check when one is freed)."""


def connect_read_only(path: Path, scratch: list[Path]) -> sqlite3.Connection:
    """A connection that can never write the case, and never waits for its writers.

    On a writable folder `mode=ro` reads a WAL snapshot next to live writers (SQLite may
    create its -shm index file; the database and every row stay untouched). On read-only
    media that fails when SQLite's -shm file is absent: with no pending WAL the file is
    read as `immutable` (nobody can change it there); with a pending WAL, the database and
    WAL are copied to a private scratch folder first (appended to `scratch` for deletion),
    so committed transactions still in the WAL are not silently ignored."""
    wal = Path(f"{path}-wal")
    try:
        return _ro(path.as_uri() + "?mode=ro")
    except sqlite3.OperationalError:
        if not is_read_only_medium(path.parent):
            raise
    if not wal.exists() or wal.stat().st_size == 0:
        return _ro(path.as_uri() + "?mode=ro&immutable=1")
    copy_dir = Path(tempfile.mkdtemp(prefix="declip-ro-"))
    scratch.append(copy_dir)
    copy = copy_dir / path.name
    shutil.copyfile(path, copy)
    shutil.copyfile(wal, Path(f"{copy}-wal"))
    return _ro(copy.as_uri() + "?mode=ro")


def _ro(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False,
                           factory=_Connection)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fails here, not later, if unreadable
    except BaseException:
        conn.close()
        raise
    return conn


def connect(path: Path) -> sqlite3.Connection:
    """A raw connection with our settings. `isolation_level=None`: we open transactions
    explicitly, never implicitly before a DML statement."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False,
                           factory=_Connection)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        # FULL: a committed transaction survives power loss too, not only a killed process.
        conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.OperationalError as exc:
        conn.close()
        if is_full(exc, Path(path)):  # opening needs room for the WAL index (-shm)
            raise DiskFullError(Path(path), _WAL_GROWTH) from exc
        raise
    return conn


def _close_safe_ones(owned: list[tuple[threading.Thread, sqlite3.Connection]]) -> int:
    """Close the connections of this thread and of finished threads; return how many belong to
    other live threads (a function of its own so that no loop variable keeps one of those
    referenced after it returns)."""
    me = threading.current_thread()
    others = 0
    for thread, conn in owned:
        if thread is me or not thread.is_alive():
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        else:
            others += 1
    return others


class Store:
    """Thread-local connections to one `case.sqlite`, plus transaction helpers."""

    def __init__(self, path: Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._local = threading.local()
        self._lock = threading.Lock()
        # Every connection with the thread that made it: only that thread ever uses it.
        self._conns: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._scratch: list[Path] = []  # private copies made to read a WAL on read-only media
        self._closed = False
        self.holder_file = self.path.parent / lockinfo.HOLDER_FILE

    # -- connections -------------------------------------------------------------------
    def _closed_error(self) -> CaseError:
        return CaseError(f"{self.path.parent}: the case is closed. Open it again to continue.")

    @property
    def conn(self) -> sqlite3.Connection:
        local = self._local  # read once: `close` may swap it from another thread
        conn = getattr(local, "conn", None)
        if conn is None:
            if self._closed:
                raise self._closed_error()
            with self._lock:
                conn = connect_read_only(self.path, self._scratch) if self.read_only else connect(self.path)
            local.conn = conn
            local.db = sqlite_utils.Database(conn, execute_plugins=False)
            with self._lock:
                if self._closed:  # closed while this connection was being opened
                    del local.conn, local.db
                    conn.close()
                    raise self._closed_error()
                self._conns.append((threading.current_thread(), conn))
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        conn = self.conn  # creates this thread's connection if needed
        db = getattr(self._local, "db", None)
        if db is None or db.conn is not conn:  # the case was closed in between
            raise self._closed_error()
        return db

    def close(self) -> None:
        """Close this thread's connection and those of finished threads; drop the rest.

        Closing a connection that another thread is in the middle of using crashes the
        interpreter (sqlite3 frees the statement under the running query), so a live
        thread's connection is never closed from here. Swapping the thread-local store
        drops the only reference to it: an idle one is freed, and with that closed, by the
        collection below; a busy one after its statement returns. Either way that thread's next use
        of the case raises `CaseError` ("the case is closed"), not a segfault.
        """
        with self._lock:
            self._closed = True
            owned, self._conns = self._conns, []
            self._local = threading.local()
        left_to_free = _close_safe_ones(owned)
        del owned
        if left_to_free:
            # sqlite3 connections sit in a reference cycle (their statement cache), so
            # dropping the last reference frees them only at a collection: run one now, so
            # an idle connection is closed before `close` returns (its file can be unmounted).
            gc.collect()
        for folder in self._scratch:
            shutil.rmtree(folder, ignore_errors=True)

    # -- who is writing ----------------------------------------------------------------
    @contextlib.contextmanager
    def operation(self, name: str, actor: str | None = None) -> Iterator[None]:
        """Name what this thread is doing (import, analysis, …) for writers that find the case busy."""
        stack = getattr(self._local, "ops", None)
        if stack is None:
            stack = self._local.ops = []
        stack.append((name, actor, lockinfo.now_text()))
        try:
            yield
        finally:
            stack.pop()

    # -- reads -------------------------------------------------------------------------
    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Any = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Run several reads against one consistent state: one read transaction (in WAL mode it
        never waits for, nor blocks, a writer). Without it each statement sees the latest commit,
        and a check spanning statements could compare two different states."""
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")  # nothing was written; ends the read transaction

    # -- writes ------------------------------------------------------------------------
    @contextlib.contextmanager
    def write(self, wait_s: float | None = None, what: str | None = None) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taken with BEGIN IMMEDIATE and retried while busy
        (for `wait_s`, default RETRY_TOTAL_S). Nested use joins the outer transaction.
        `what` names the change for busy messages when no `operation` is under way."""
        if self.read_only:
            raise CaseReadOnlyError(f"{self.path.parent}: the case was opened read-only (for verify, status or "
                                    "export, or because its folder cannot be written); nothing was changed.")
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        try:
            self._begin_immediate(conn, RETRY_TOTAL_S if wait_s is None else wait_s)
            ops = getattr(self._local, "ops", None)
            lockinfo.record(self.holder_file, *(ops[-1] if ops else (what or "a change", None, None)))
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._commit(conn)
        except sqlite3.OperationalError as exc:
            if is_full(exc, self.path):  # SQLite's words for ENOSPC: name it as the full disk it is
                raise DiskFullError(self.path, _WAL_GROWTH) from exc
            raise

    def _begin_immediate(self, conn: sqlite3.Connection, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        delay = 0.005
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                if time.monotonic() > deadline:
                    raise CaseBusyError(
                        f"{self.path.parent}: {lockinfo.describe(self.holder_file)}; waited {wait_s:.0f} s "
                        "for it. Nothing was changed: wait for it to finish (or close it) and try again."
                    ) from exc
                # Jitter keeps two waiting writers from retrying in lock-step.
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.25)

    def _commit(self, conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + RETRY_TOTAL_S
        while True:
            try:
                conn.execute("COMMIT")
                return
            except sqlite3.OperationalError as exc:
                # In WAL mode COMMIT can only be busy in rare checkpoint races; the
                # transaction stays open, so retrying the COMMIT itself is correct.
                if not is_busy(exc) or time.monotonic() > deadline or not conn.in_transaction:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                time.sleep(0.02)
