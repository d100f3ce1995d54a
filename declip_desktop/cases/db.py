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
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from declip_desktop.cases.errors import CaseBusyError

#: How long SQLite itself waits for a lock before reporting SQLITE_BUSY.
BUSY_TIMEOUT_S = 10.0
#: How long we keep retrying a write transaction that SQLite reported busy.
RETRY_TOTAL_S = 60.0


def is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def connect(path: Path) -> sqlite3.Connection:
    """A raw connection with our settings. `isolation_level=None`: we open transactions
    explicitly, never implicitly before a DML statement."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    # FULL: a committed transaction survives power loss too, not only a killed process.
    conn.execute("PRAGMA synchronous = FULL")
    return conn


class Store:
    """Thread-local connections to one `case.sqlite`, plus transaction helpers."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._closed = False

    # -- connections -------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                from declip_desktop.cases.errors import CaseError

                raise CaseError(f"{self.path.parent}: the case is closed. Open it again to continue.")
            conn = connect(self.path)
            self._local.conn = conn
            self._local.db = sqlite_utils.Database(conn, execute_plugins=False)
            with self._lock:
                self._conns.append(conn)
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        self.conn  # noqa: B018 - creates this thread's connection if needed
        return self._local.db

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    # -- reads -------------------------------------------------------------------------
    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Any = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    # -- writes ------------------------------------------------------------------------
    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taken with BEGIN IMMEDIATE and retried while busy.

        Nested use joins the outer transaction."""
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        self._begin_immediate(conn)
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._commit(conn)

    def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + RETRY_TOTAL_S
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
                        f"{self.path.parent}: the case database stayed locked by another program for "
                        f"{RETRY_TOTAL_S:.0f} s. Close other programs using this case and try again."
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
