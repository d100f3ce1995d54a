"""What every part of a `Case` stands on: the case folder, its database store, who acts,
the locks, the case record and free-form audit entries.

The parts (import, evidence, analyses, review, history, recovery) are mixins over
`CaseCore`; `cases.case.Case` combines them and opens or creates the folder.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any, TypeVar

from declip_desktop.cases import audit, db, schema
from declip_desktop.cases.errors import CaseError
from declip_desktop.cases.files import TMP_DIR, FileLock
from declip_desktop.cases.records import AuditEntry, CaseInfo
from declip_desktop.common.facts import CASE_DB_NAME

DB_NAME = CASE_DB_NAME  # common.facts: the GUI recognises case folders by it too


_Self = TypeVar("_Self", bound="CaseCore")


class CaseCore:
    """The folder, its store and the acting analyst; the base of every part of `Case`."""

    def __init__(self, root: Path, store: db.Store, analyst: str | None):
        self.path = root
        self._store = store
        self._analyst_override = analyst
        #: What opening the case finished or discarded (see `recover`).
        self.last_recovery = {"finished": 0, "discarded": 0, "requeued": 0}

    @property
    def read_only(self) -> bool:
        return self._store.read_only

    def close(self) -> None:
        self._store.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Case({str(self.path)!r})"

    # ------------------------------------------------------------------ small helpers
    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def _tmp(self) -> Path:
        return self.path / TMP_DIR

    def _staging_lock(self) -> FileLock:
        """Held (shared) by everything that stages files; recovery needs it exclusively."""
        return FileLock(self._tmp / "staging.lock", exclusive=False)

    def analysis_lock(self) -> FileLock:
        """One analysis run per case at a time (see analysis.run_queue)."""
        return FileLock(self._tmp / "analysis.lock", exclusive=True)

    def _actor(self, analyst: str | None, conn: sqlite3.Connection | None = None) -> str:
        if analyst:
            return analyst
        if self._analyst_override:
            return self._analyst_override
        conn = conn or self._store.conn
        row = conn.execute("SELECT analyst FROM case_info WHERE id = 1").fetchone()
        return row[0] if row else "unknown"

    @property
    def info(self) -> CaseInfo:
        row = self._store.one("SELECT * FROM case_info WHERE id = 1")
        if row is None:
            raise CaseError(f"{self.path}: the case record is missing from {DB_NAME}. Restore the case from a backup.")
        return CaseInfo(number=row["number"], title=row["title"], analyst=row["analyst"],
                        description=row["description"] or "", created=row["created"], path=self.path,
                        uuid=row["uuid"] or "", schema_version=schema.user_version(self._store.conn))

    def update_info(self, *, title: str | None = None, description: str | None = None,
                    analyst: str | None = None) -> None:
        """Change the case title/description (the case number and creation time never change)."""
        changes = {k: v for k, v in (("title", title), ("description", description)) if v is not None}
        if not changes:
            return
        with self._store.write() as conn:
            old = dict(zip(changes, conn.execute(
                f"SELECT {', '.join(changes)} FROM case_info WHERE id = 1").fetchone()))
            conn.execute(f"UPDATE case_info SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = 1",
                         tuple(changes.values()))
            audit.append(conn, self._actor(analyst, conn), "case.updated", "case", {"old": old, "new": changes})

    def log_event(self, action: str, object: str, details: dict[str, Any] | None = None,  # noqa: A002
                  analyst: str | None = None, evidence_id: int | None = None,
                  wait_s: float | None = None) -> AuditEntry:
        """Append an entry for something done outside this module (e.g. an image exported).
        `wait_s`: how long to wait for another writer (default: db.RETRY_TOTAL_S)."""
        with self._store.write(wait_s) as conn:
            return audit.append(conn, self._actor(analyst, conn), action, object, details or {}, evidence_id)

    @contextlib.contextmanager
    def snapshot(self):  # noqa: ANN201
        """`with case.snapshot():` every read inside sees one committed state (status, export)."""
        with self._store.snapshot():
            yield self

    @contextlib.contextmanager
    def _write(self):  # for modules of this package (verify, export) that need a transaction
        with self._store.write() as conn:
            yield conn

