"""The `Case`: one folder holding an analyst's evidence, results, reports and history.

Layout::

    CASE/
      case.sqlite        SQLite (WAL) — case, evidence, analyses, reviews, settings, audit
      evidence/          imported originals, byte-identical, read-only, named <sha256>.<ext>
      results/           probability maps (16-bit PNG); results/thumbnails/ (derived, not evidence)
      reports/           reports registered with `register_report`
      exports/           CSV/JSON exports
      .tmp/              staging area and lock files (safe to delete when no program uses the case)

Write order for every file the database refers to: write under a temporary name in
`.tmp/`, fsync, re-hash, rename to a "staged" name, commit the database row (with its
audit entry), then rename into place. A crash after the commit leaves a staged file
that `Case.open` moves into place; a crash before it leaves only scratch files that
`Case.open` deletes. Nothing half-written is ever referenced.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

from declip_desktop.cases import audit, db, schema
from declip_desktop.cases.analyses import CaseAnalyses
from declip_desktop.cases.core import DB_NAME
from declip_desktop.cases.errors import CaseBusyError, CaseError, CaseReadOnlyError, NewerSchemaError
from declip_desktop.cases.evidence_import import CaseImport
from declip_desktop.cases.evidence_store import THUMBNAIL_DIR
from declip_desktop.cases.files import TMP_DIR, fsync_dir
from declip_desktop.cases.history import CaseHistory
from declip_desktop.cases.recovery import CaseRecovery
from declip_desktop.cases.review import CaseReview
from declip_desktop.common.outputs import DiskFullError
from declip_desktop.common.version import SOFTWARE_VERSION, software_id

FOLDERS = ("evidence", "results", "reports", "exports")


class Case(CaseImport, CaseAnalyses, CaseReview, CaseHistory, CaseRecovery):
    """An open case folder. Safe to use from several threads (a connection per thread).

    Its methods come from one module per job: `evidence_import` (import_paths, rejections),
    `evidence_store` (evidence_list, get_evidence, evidence_file, status_counts,
    thumbnail_file), `analyses` (the queue; store_result, store_failure, analyses, load_map),
    `review` (set_review, settings), `history` (audit entries, reports, verify), `recovery`
    (recover, requeue_interrupted) and `core` (info, log_event, locks, snapshot). This class
    creates, opens and migrates the folder.
    """

    @classmethod
    def create(cls, path: str | os.PathLike[str], number: str, title: str, analyst: str,
               description: str = "") -> "Case":
        root = Path(path).expanduser().absolute()
        for name, value in (("case number", number), ("title", title), ("analyst", analyst)):
            if not str(value or "").strip():
                raise CaseError(f"cannot create a case without a {name}. Give one and try again.")
        if (root / DB_NAME).exists():
            raise CaseError(f"{root} already holds a case. Open it instead, or choose another folder.")
        if root.exists() and not root.is_dir():
            raise CaseError(f"{root} is a file, not a folder. Choose a folder for the case.")
        if root.exists() and any(p.name not in FOLDERS for p in root.iterdir()):
            raise CaseError(f"{root} is not empty. Choose an empty or new folder for the case.")
        try:
            root.mkdir(parents=True, exist_ok=True)
            for folder in (*FOLDERS, THUMBNAIL_DIR, TMP_DIR):
                (root / folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaseError(f"cannot create the case folder {root}: {exc.strerror or exc}. "
                            "Check the path and your permissions.") from exc
        conn = db.connect(root / DB_NAME)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            schema.migrate(conn)
            created = audit.now_iso()
            case_uuid = str(uuid.uuid4())
            conn.execute(
                "INSERT INTO case_info (id, uuid, number, title, analyst, description, created, created_with) "
                "VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                (case_uuid, str(number), title, analyst, description or "", created, software_id()),
            )
            audit.append(conn, analyst, "case.created", "case",
                         {"number": str(number), "title": title, "analyst": analyst, "description": description or "",
                          "uuid": case_uuid, "schema_version": schema.SCHEMA_VERSION, "software": software_id(),
                          "created": created})
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
        fsync_dir(root)
        return cls.open(root, analyst=analyst)

    @classmethod
    def open(cls, path: str | os.PathLike[str], analyst: str | None = None, *, read_only: bool = False) -> "Case":
        """Open a case. `read_only=True` (verify, status, export): nothing is written — no
        migration, no recovery, no audit entry — and a writer holding the case never blocks it."""
        root = Path(path).expanduser().absolute()
        if root.name == DB_NAME and root.is_file():
            root = root.parent
        db_path = root / DB_NAME
        if not db_path.is_file():
            raise CaseError(f"{root} is not a case folder (no {DB_NAME} in it). "
                            "Create a case there first, or choose the folder that holds case.sqlite.")
        if read_only:
            return cls._open_read_only(root, db_path, analyst)
        if db.is_read_only_medium(root):
            raise CaseReadOnlyError(f"{root} cannot be written (read-only media or no write permission), so it "
                                    "cannot be changed. Verify, status and export still work there; copy the case "
                                    "to writable storage to change it.")
        cls._check_version(db_path)
        store = db.Store(db_path)
        case = cls(root, store, analyst)
        try:
            store.conn.execute("PRAGMA journal_mode = WAL")
            case._migrate()
            for folder in (*FOLDERS, THUMBNAIL_DIR, TMP_DIR):
                (root / folder).mkdir(parents=True, exist_ok=True)
            case.last_recovery = case.recover()
        except BaseException:
            store.close()
            raise
        return case

    @classmethod
    def _open_read_only(cls, root: Path, db_path: Path, analyst: str | None) -> "Case":
        store = db.Store(db_path, read_only=True)
        try:
            version = schema.user_version(store.conn)
        except sqlite3.DatabaseError as exc:
            store.close()
            raise CaseError(f"{db_path} is not a readable case database ({exc}). "
                            "Restore the case from a backup.") from exc
        if version > schema.SCHEMA_VERSION:
            store.close()
            raise NewerSchemaError(
                f"{root} was written by a newer DeCLIP Desktop (case format {version}; this version, "
                f"{SOFTWARE_VERSION}, reads formats up to {schema.SCHEMA_VERSION}). Open it with the newer version.")
        return cls(root, store, analyst)

    @staticmethod
    def _check_version(db_path: Path) -> None:
        """Refuse a newer schema before anything can write to the file."""
        # With no WAL file everything is in the main file: read it as immutable, which
        # creates no -wal/-shm files. With a WAL, a read-only connection must use it.
        wal = Path(f"{db_path}-wal")
        flags = "mode=ro" if wal.exists() else "immutable=1"
        try:
            conn = sqlite3.connect(f"{db_path.as_uri()}?{flags}", uri=True, timeout=db.BUSY_TIMEOUT_S)
            try:
                version = schema.user_version(conn)
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            if db.is_full(exc, db_path):  # a full disk, not a damaged database: never say "restore"
                raise DiskFullError(db_path, 1 << 20) from exc
            raise CaseError(f"{db_path} is not a readable case database ({exc}). "
                            "Restore the case from a backup.") from exc
        if version > schema.SCHEMA_VERSION:
            raise NewerSchemaError(
                f"{db_path.parent} was written by a newer DeCLIP Desktop (case format {version}; this "
                f"version, {SOFTWARE_VERSION}, reads formats up to {schema.SCHEMA_VERSION}). The case was "
                "not changed. Open it with the newer DeCLIP Desktop."
            )

    def _migrate(self) -> None:
        conn = self._store.conn
        if schema.user_version(conn) == schema.SCHEMA_VERSION:
            return
        with self._store.write() as conn:
            before = schema.user_version(conn)
            if before > schema.SCHEMA_VERSION:  # written by a newer app between check and lock
                raise NewerSchemaError(f"{self.path} was upgraded by a newer DeCLIP Desktop meanwhile; not opened.")
            steps = schema.migrate(conn)
            if steps:
                audit.append(conn, self._actor(None, conn), "case.migrated", "case",
                             {"from_version": before, "to_version": schema.SCHEMA_VERSION,
                              "software": software_id()})


__all__ = ["Case", "CaseBusyError", "CaseError", "CaseReadOnlyError", "DB_NAME", "FOLDERS", "NewerSchemaError"]
