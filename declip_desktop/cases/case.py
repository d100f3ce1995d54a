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

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from declip_desktop.cases import audit, db, schema
from declip_desktop.cases.errors import CaseBusyError, CaseError, CaseReadOnlyError, NewerSchemaError
from declip_desktop.cases.files import (
    PARTIAL_SUFFIX,
    STAGED_SUFFIX,
    TMP_DIR,
    FileLock,
    final_name_of_staged,
    fsync_dir,
    make_read_only,
    staged_name,
    write_durable,
)
from declip_desktop.cases.importer import Duplicate, Staged, discover, stage
from declip_desktop.cases.records import (
    STATUSES,
    VERDICTS,
    Analysis,
    AuditEntry,
    CaseInfo,
    Evidence,
    ImportReport,
    Problem,
    Rejection,
    VerifyReport,
)
from declip_desktop.common.facts import CASE_DB_NAME
from declip_desktop.common.hashing import sha256_bytes, sha256_file
from declip_desktop.common.images import DEFAULT_MAX_PIXELS
from declip_desktop.common.outputs import DiskFullError, disk_full_as_error
from declip_desktop.common.probmaps import decode_png16, encode_png16
from declip_desktop.common.progress import StepProgress
from declip_desktop.common.version import SOFTWARE_VERSION, software_id

DB_NAME = CASE_DB_NAME  # common.facts: the GUI recognises case folders by it too
FOLDERS = ("evidence", "results", "reports", "exports")
THUMBNAIL_DIR = "results/thumbnails"
THUMBNAIL_SIZE = 256

#: Import commits at least this often, so other windows see progress and a crash loses little.
_BATCH_FILES = 64
_BATCH_SECONDS = 0.5


_EVIDENCE_SELECT = """
SELECT e.*, a.score AS latest_score, a.error AS latest_error
FROM evidence e
LEFT JOIN analyses a ON a.id = (SELECT MAX(id) FROM analyses WHERE evidence_id = e.id)
"""


def _total_size(paths: Iterable[Path]) -> int:
    total = 0
    for p in paths:
        with contextlib.suppress(OSError):
            total += os.stat(p).st_size
    return total


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _evidence(row: dict[str, Any]) -> Evidence:
    return Evidence(
        id=row["id"],
        original_name=row["original_name"],
        original_path=row["original_path"] or "",
        sha256=row["sha256"],
        md5=row["md5"],
        size=row["size"],
        format=row["format"] or "",
        width=row["width"] or 0,
        height=row["height"] or 0,
        metadata=json.loads(row["metadata"] or "{}"),
        imported_by=row["imported_by"],
        imported_at=row["imported_at"],
        status=row["status"],
        threshold=row["threshold"],
        verdict=row["verdict"] or "not reviewed",
        notes=row["notes"] or "",
        score=row.get("latest_score"),
        error=row.get("latest_error"),
        stored_name=row["stored_name"],
        mode=row["mode"] or "",
        reviewed_by=row.get("reviewed_by"),
        reviewed_at=row.get("reviewed_at"),
    )


def _analysis(row: dict[str, Any]) -> Analysis:
    return Analysis(
        id=row["id"],
        evidence_id=row["evidence_id"],
        model_name=row["model_name"],
        model_sha256=row["model_sha256"],
        parameters=json.loads(row["parameters"] or "{}"),
        score=row["score"],
        map_file=row["map_file"],
        map_sha256=row["map_sha256"],
        device=row["device"],
        seconds=row["seconds"],
        software_version=row["software_version"],
        started=row["started"],
        finished=row["finished"],
        error=row["error"],
        created_by=row["created_by"] or "",
    )


class Case:
    """An open case folder. Safe to use from several threads (a connection per thread)."""

    def __init__(self, root: Path, store: db.Store, analyst: str | None):
        self.path = root
        self._store = store
        self._analyst_override = analyst
        self._info: CaseInfo | None = None
        #: What opening the case finished or discarded (see `recover`).
        self.last_recovery = {"finished": 0, "discarded": 0, "requeued": 0}

    # ------------------------------------------------------------------ create / open
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

    @property
    def read_only(self) -> bool:
        return self._store.read_only

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

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> "Case":
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

    # ------------------------------------------------------------------ recovery
    def recover(self) -> dict[str, int]:
        """Finish or discard what a killed process left behind. Returns what was done.

        Runs only when no other program is staging files or analysing this case."""
        done = {"finished": 0, "discarded": 0, "requeued": 0}
        if self.read_only:
            return done  # a read-only open never changes the case; a read-write open finishes the job
        lock = FileLock(self._tmp / "staging.lock", exclusive=True)
        if lock.acquire(blocking=False):
            try:
                done["finished"], done["discarded"] = self._recover_files()
            finally:
                lock.release()
        alock = self.analysis_lock()
        if alock.acquire(blocking=False):
            try:
                done["requeued"] = self.requeue_interrupted()
            finally:
                alock.release()
        return done

    def _recover_files(self) -> tuple[int, int]:
        wanted: dict[str, tuple[Path, str]] = {}
        for row in self._store.query("SELECT stored_name, sha256 FROM evidence"):
            wanted[row["stored_name"]] = (self.path / "evidence" / row["stored_name"], row["sha256"])
        for row in self._store.query("SELECT map_file, map_sha256 FROM analyses WHERE map_file IS NOT NULL"):
            wanted[Path(row["map_file"]).name] = (self.path / row["map_file"], row["map_sha256"])
        finished: list[str] = []
        discarded = 0
        for entry in sorted(self._tmp.iterdir()):
            if entry.suffix == ".lock" or not entry.is_file():
                continue
            final = final_name_of_staged(entry.name)
            target = wanted.get(final) if final else None
            if target is not None and not target[0].exists() and sha256_file(entry) == target[1]:
                os.replace(entry, target[0])
                fsync_dir(target[0].parent)
                finished.append(str(target[0].relative_to(self.path)))
                continue
            if entry.name.endswith((PARTIAL_SUFFIX, STAGED_SUFFIX)):
                os.chmod(entry, 0o644)
                entry.unlink()
                discarded += 1
        if finished:
            self.log_event("case.recovered", "case", {"completed_files": finished,
                                                      "reason": "a previous program stopped after committing"})
        return len(finished), discarded

    def requeue_interrupted(self) -> int:
        """Evidence left 'analysing' by a program that stopped goes back to the queue.

        Call only while holding `analysis_lock()` (nobody else is analysing)."""
        if self._store.scalar("SELECT 1 FROM evidence WHERE status = 'analysing' LIMIT 1") is None:
            return 0  # the common case: no write transaction, so opening never waits for a writer
        with self._store.write() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM evidence WHERE status = 'analysing'")]
            if ids:
                conn.execute("UPDATE evidence SET status = 'queued' WHERE status = 'analysing'")
                audit.append(conn, self._actor(None, conn), "analysis.interrupted", "evidence",
                             {"evidence_ids": ids, "reason": "an analysis run stopped before finishing"})
        return len(ids)

    # ------------------------------------------------------------------ import
    def import_paths(self, paths: Iterable[str | os.PathLike[str]], analyst: str | None = None,
                     progress: StepProgress | None = None, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                     should_stop: Callable[[], bool] | None = None, workers: int | None = None) -> ImportReport:
        """Import files and folders (recursively). Bad files are rejected with a reason, not raised.

        `progress(done, total, path)` is called after each file; `should_stop()` is
        checked between files (what was imported so far stays imported)."""
        actor = self._actor(analyst)
        with self._store.operation("import", actor):
            return self._import_paths(paths, actor, progress, max_pixels, should_stop, workers)

    def _import_paths(self, paths: Iterable[str | os.PathLike[str]], actor: str, progress: StepProgress | None,
                      max_pixels: int, should_stop: Callable[[], bool] | None, workers: int | None) -> ImportReport:
        candidates, rejections, ignored = discover(paths, exclude=self.path)
        report = ImportReport(ignored=ignored)
        total = len(candidates) + len(rejections)
        done = 0
        pending: list[Staged | Duplicate | Rejection] = list(rejections)
        for rej in rejections:
            done += 1
            if progress:
                progress(done, total, rej.path)
        # One more worker than cores: each spends part of its time waiting for fsync.
        workers = workers or min(8, (os.cpu_count() or 1) + 1)
        tmp = self._tmp
        # One read connection shared by the short-lived pool threads (behind a lock), so
        # no per-thread connection outlives this call.
        lookup = db.connect(self.db_path)
        lookup_lock = threading.Lock()

        def known(sha: str) -> int | None:
            with lookup_lock:
                row = lookup.execute("SELECT id FROM evidence WHERE sha256 = ?", (sha,)).fetchone()
            return None if row is None else int(row[0])

        lock = self._staging_lock()
        lock.acquire()
        try:
            last_commit = time.monotonic()
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="case-import") as pool:
                window: list[Future] = []
                queue = iter(candidates)
                exhausted = False
                while True:
                    while not exhausted and len(window) < workers * 2:
                        if should_stop and should_stop():
                            exhausted = True
                            report.stopped = True
                            break
                        cand = next(queue, None)
                        if cand is None:
                            exhausted = True
                            break
                        window.append(pool.submit(stage, cand, tmp, max_pixels, known))
                    if not window:
                        break
                    try:
                        result = window.pop(0).result()
                    except DiskFullError as full:
                        # What the rest of the import needs: the files not yet copied.
                        full.needed = (full.needed or 0) + _total_size(c.path for c in queue)
                        self._stop_import_disk_full(full, window, pending, actor, report, total)
                        raise
                    pending.append(result)
                    done += 1
                    if progress:
                        progress(done, total, str(result.path))
                    if len(pending) >= _BATCH_FILES or time.monotonic() - last_commit > _BATCH_SECONDS:
                        self._commit_import(pending, actor, report)
                        pending = []
                        last_commit = time.monotonic()
                self._commit_import(pending, actor, report)
        finally:
            # A failure above leaves staged files; delete ours so nothing unreferenced stays behind.
            for item in pending:
                if isinstance(item, Staged) and item.staged_path.exists():
                    os.chmod(item.staged_path, 0o644)
                    item.staged_path.unlink()
            lock.release()
            lookup.close()
        return report

    def _stop_import_disk_full(self, full: DiskFullError, window: list[Future],
                               pending: list[Staged | Duplicate | Rejection], actor: str,
                               report: ImportReport, total: int) -> None:
        """The case's disk is full: keep what is complete, record why the import stopped, drop the rest.

        Files staged before the disk filled are whole and hash-checked, so they are committed
        together with the `import.stopped` entry that gives the reason. If even that does not
        fit, the staged copies are deleted to make room and the entry is written alone. Files
        not reached are not recorded at all: no file was to blame."""
        for fut in window:  # let the running copies finish or fail; keep the complete ones
            try:
                pending.append(fut.result())
            except DiskFullError:
                continue
        window.clear()
        try:
            self._commit_import(pending, actor, report, stopped=(full, total))
        except DiskFullError:
            for item in pending:
                if isinstance(item, Staged) and item.staged_path.exists():
                    os.chmod(item.staged_path, 0o644)
                    item.staged_path.unlink()
            try:
                self._commit_import([], actor, report, stopped=(full, total))
            except DiskFullError:
                return  # not even one audit entry fits; the user still gets the message
        finally:
            pending.clear()

    def _commit_import(self, items: Sequence[Staged | Duplicate | Rejection], actor: str,
                       report: ImportReport, stopped: tuple[DiskFullError, int] | None = None) -> None:
        """Commit one batch; `stopped` (disk full, total files) also records why the import ends."""
        if not items and stopped is None:
            return
        fsync_dir(self._tmp)  # staged names are durable before the rows that point at them
        now = audit.now_iso()
        to_move: list[tuple[Path, Path]] = []
        to_drop: list[Path] = []
        new_ids: list[int] = []
        duplicates: list[tuple[str, int]] = []
        rejected: list[Rejection] = []
        with self._store.write() as conn:
            for item in items:
                if isinstance(item, Rejection):
                    try:
                        size = os.stat(item.path).st_size
                    except OSError:
                        size = None
                    cur = conn.execute("INSERT INTO rejections (path, reason, size, rejected_by, rejected_at) "
                                       "VALUES (?, ?, ?, ?, ?)", (item.path, item.reason, size, actor, now))
                    audit.append(conn, actor, "evidence.rejected", "file",
                                 {"path": item.path, "reason": item.reason, "rejection_id": int(cur.lastrowid),
                                  "size": size, "rejected_at": now})
                    rejected.append(item)
                    continue
                existing = conn.execute("SELECT id FROM evidence WHERE sha256 = ?", (item.sha256,)).fetchone()
                if existing is not None:
                    audit.append(conn, actor, "evidence.duplicate", f"evidence:{existing[0]}",
                                 {"path": str(item.path), "sha256": item.sha256}, existing[0])
                    duplicates.append((str(item.path), existing[0]))
                    if isinstance(item, Staged):
                        to_drop.append(item.staged_path)
                    continue
                cur = conn.execute(
                    "INSERT INTO evidence (sha256, md5, size, original_name, original_path, stored_name, format, "
                    "width, height, mode, metadata, imported_by, imported_at, status, verdict, notes) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 'not reviewed', '')",
                    (item.sha256, item.md5, item.size, item.path.name, str(item.path), item.final_name, item.format,
                     item.width, item.height, item.mode, _json(item.metadata), actor, now),
                )
                evidence_id = int(cur.lastrowid)
                audit.append(conn, actor, "evidence.imported", f"evidence:{evidence_id}",
                             {"sha256": item.sha256, "md5": item.md5, "size": item.size,
                              "original_name": item.path.name, "original_path": str(item.path),
                              "stored_name": item.final_name, "format": item.format, "width": item.width,
                              "height": item.height, "mode": item.mode,
                              # a hash, not the EXIF itself: keeps the trail (and reports' appendix) short
                              "metadata_sha256": sha256_bytes(audit.canonical(item.metadata).encode("utf-8")),
                              "imported_by": actor, "imported_at": now},
                             evidence_id)
                new_ids.append(evidence_id)
                to_move.append((item.staged_path, self.path / "evidence" / item.final_name))
            if stopped is not None:
                full, total = stopped
                done = (len(report.imported) + len(report.duplicates) + len(report.rejected)
                        + len(new_ids) + len(duplicates) + len(rejected))
                full.note_import(done, total)
                audit.append(conn, actor, "import.stopped", "case",
                             {"reason": str(full), "path": full.path, "free_bytes": full.free,
                              "needed_bytes": full.needed, "files_done": done, "files_total": total})
        # Committed: now move the copies into place (recovery finishes this after a crash).
        for src, dst in to_move:
            os.replace(src, dst)
        if to_move:
            fsync_dir(self.path / "evidence")
        for p in to_drop:
            os.chmod(p, 0o644)
            p.unlink(missing_ok=True)
        report.duplicates.extend(duplicates)
        report.rejected.extend(rejected)
        if new_ids:
            report.imported.extend(self._evidence_by_ids(new_ids))

    def _evidence_by_ids(self, ids: Sequence[int]) -> list[Evidence]:
        marks = ",".join("?" * len(ids))
        rows = self._store.query(f"{_EVIDENCE_SELECT} WHERE e.id IN ({marks}) ORDER BY e.id", tuple(ids))
        return [_evidence(r) for r in rows]

    def rejections(self) -> list[Rejection]:
        return [Rejection(r["path"], r["reason"]) for r in self._store.query(
            "SELECT path, reason FROM rejections ORDER BY id")]

    # ------------------------------------------------------------------ evidence
    def evidence_list(self, status: str | None = None) -> list[Evidence]:
        if status is not None:
            rows = self._store.query(f"{_EVIDENCE_SELECT} WHERE e.status = ? ORDER BY e.id", (status,))
        else:
            rows = self._store.query(f"{_EVIDENCE_SELECT} ORDER BY e.id")
        return [_evidence(r) for r in rows]

    def get_evidence(self, evidence_id: int) -> Evidence:
        row = self._store.one(f"{_EVIDENCE_SELECT} WHERE e.id = ?", (int(evidence_id),))
        if row is None:
            raise CaseError(f"no evidence with id {evidence_id} in case {self.info.number}.")
        return _evidence(row)

    def evidence_file(self, evidence: Evidence | int) -> Path:
        ev = evidence if isinstance(evidence, Evidence) else self.get_evidence(evidence)
        return self.path / "evidence" / ev.stored_name

    def status_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for status, n in self._store.conn.execute("SELECT status, count(*) FROM evidence GROUP BY status"):
            counts[status] = n
        return counts

    # ------------------------------------------------------------------ queue
    def queued_evidence(self, model_sha256: str | None = None) -> list[Evidence]:
        """Evidence waiting for analysis: status 'queued', plus, when a model is given,
        done/failed evidence never analysed with that model."""
        if model_sha256 is None:
            rows = self._store.query(f"{_EVIDENCE_SELECT} WHERE e.status = 'queued' ORDER BY e.id")
        else:
            rows = self._store.query(
                f"{_EVIDENCE_SELECT} WHERE e.status = 'queued' OR (e.status IN ('done', 'failed') AND NOT EXISTS "
                "(SELECT 1 FROM analyses x WHERE x.evidence_id = e.id AND x.model_sha256 = ?)) ORDER BY e.id",
                (model_sha256,),
            )
        return [_evidence(r) for r in rows]

    def mark_analysing(self, evidence_id: int) -> bool:
        """Claim one evidence for analysis. False if it is already being analysed or skipped.

        Not audited: 'analysing' is a transient working state; the outcome is audited."""
        with self._store.write(what="analysis") as conn:
            cur = conn.execute("UPDATE evidence SET status = 'analysing' WHERE id = ? "
                               "AND status NOT IN ('analysing', 'skipped')", (int(evidence_id),))
            return cur.rowcount == 1

    def requeue(self, evidence_ids: Iterable[int], analyst: str | None = None) -> int:
        return self._set_queue_status(evidence_ids, "queued", "analysis.requeued", analyst)

    def dequeue(self, evidence_ids: Iterable[int], analyst: str | None = None) -> int:
        return self._set_queue_status(evidence_ids, "skipped", "analysis.dequeued", analyst)

    def _set_queue_status(self, evidence_ids: Iterable[int], status: str, action: str, analyst: str | None) -> int:
        ids = sorted({int(i) for i in evidence_ids})
        if not ids:
            return 0
        with self._store.write() as conn:
            changed = []
            for evidence_id in ids:
                row = conn.execute("SELECT status FROM evidence WHERE id = ?", (evidence_id,)).fetchone()
                if row is None:
                    raise CaseError(f"no evidence with id {evidence_id} in this case; nothing was changed.")
                if row[0] == status or (status == "skipped" and row[0] == "analysing"):
                    continue  # an image being analysed finishes; dequeue it again afterwards if needed
                conn.execute("UPDATE evidence SET status = ? WHERE id = ?", (status, evidence_id))
                changed.append(evidence_id)
            if changed:
                audit.append(conn, self._actor(analyst, conn), action, "evidence", {"evidence_ids": changed})
        return len(changed)

    # ------------------------------------------------------------------ analyses
    def store_result(self, evidence_id: int, *, model_name: str, model_sha256: str, parameters: dict[str, Any],
                     score: float, prob_map: np.ndarray, device: str, seconds: float, started: str,
                     finished: str, analyst: str | None = None) -> Analysis:
        """Store a finished analysis: the map (16-bit PNG, atomically), its hash and the row."""
        prob_map = np.asarray(prob_map)
        if prob_map.ndim != 2 or prob_map.size == 0:
            raise CaseError(f"evidence {evidence_id}: a probability map must be a non-empty 2-D array, "
                            f"got shape {prob_map.shape}. Nothing was stored.")
        if not np.all(np.isfinite(prob_map)):
            raise CaseError(f"evidence {evidence_id}: the probability map holds NaN or infinite values. "
                            "Nothing was stored.")
        with self._store.operation("analysis", analyst or self._analyst_override):
            return self._store_result(evidence_id, model_name, model_sha256, parameters, score, prob_map, device,
                                      seconds, started, finished, analyst)

    def _store_result(self, evidence_id: int, model_name: str, model_sha256: str, parameters: dict[str, Any],
                      score: float, prob_map: np.ndarray, device: str, seconds: float, started: str,
                      finished: str, analyst: str | None) -> Analysis:
        ev = self.get_evidence(evidence_id)
        png = encode_png16(prob_map)
        map_sha = sha256_bytes(png)
        token = uuid.uuid4().hex
        rel = f"results/e{ev.id:06d}-{token[:12]}.png"
        final = self.path / rel
        lock = self._staging_lock()
        lock.acquire()
        try:
            partial = self._tmp / f"{token}{PARTIAL_SUFFIX}"
            staged = self._tmp / staged_name(final.name, token)
            try:
                try:
                    with disk_full_as_error(self._tmp, len(png)):
                        write_durable(partial, png)
                except DiskFullError as full:
                    partial.unlink(missing_ok=True)  # first make room for the audit entry
                    self._log_disk_full(full, ev.id, "analysis.stopped")
                    raise
                if sha256_file(partial) != map_sha:
                    raise CaseError(f"evidence {evidence_id}: the map file did not read back as written "
                                    "(disk error). Nothing was stored.")
                make_read_only(partial)
                os.replace(partial, staged)
                fsync_dir(self._tmp)
            finally:
                if partial.exists():
                    os.chmod(partial, 0o644)
                    partial.unlink()
            try:
                with self._store.write() as conn:
                    actor = self._actor(analyst, conn)
                    cur = conn.execute(
                        "INSERT INTO analyses (evidence_id, model_name, model_sha256, parameters, score, map_file, "
                        "map_sha256, device, seconds, software_version, started, finished, error, created_by) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                        (ev.id, model_name, model_sha256, _json(parameters), float(score), rel, map_sha, device,
                         float(seconds), SOFTWARE_VERSION, started, finished, actor),
                    )
                    analysis_id = int(cur.lastrowid)
                    conn.execute("UPDATE evidence SET status = 'done' WHERE id = ?", (ev.id,))
                    audit.append(conn, actor, "analysis.stored", f"analysis:{analysis_id}",
                                 {"model_name": model_name, "model_sha256": model_sha256, "score": float(score),
                                  "map_file": rel, "map_sha256": map_sha, "device": device,
                                  "seconds": float(seconds), "software_version": SOFTWARE_VERSION,
                                  "parameters": parameters, "started": started, "finished": finished}, ev.id)
            except BaseException:
                os.chmod(staged, 0o644)
                staged.unlink(missing_ok=True)
                raise
            os.replace(staged, final)
            fsync_dir(final.parent)
        finally:
            lock.release()
        return self.get_analysis(analysis_id)

    def _log_disk_full(self, full: DiskFullError, evidence_id: int | None, action: str) -> None:
        """Record why work stopped (the disk, not the evidence); silent if even that cannot be written."""
        try:
            self.log_event(action, "case" if evidence_id is None else f"evidence:{evidence_id}",
                           {"reason": str(full), "path": full.path, "free_bytes": full.free,
                            "needed_bytes": full.needed}, evidence_id=evidence_id)
        except DiskFullError:
            return  # the database cannot grow either; the user still gets the message

    def store_failure(self, evidence_id: int, *, model_name: str, model_sha256: str, parameters: dict[str, Any],
                      error: str, started: str, finished: str, device: str | None = None,
                      analyst: str | None = None) -> Analysis:
        ev = self.get_evidence(evidence_id)
        with self._store.write(what="analysis") as conn:
            actor = self._actor(analyst, conn)
            cur = conn.execute(
                "INSERT INTO analyses (evidence_id, model_name, model_sha256, parameters, device, software_version, "
                "started, finished, error, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ev.id, model_name, model_sha256, _json(parameters), device, SOFTWARE_VERSION, started, finished,
                 str(error), actor),
            )
            analysis_id = int(cur.lastrowid)
            conn.execute("UPDATE evidence SET status = 'failed' WHERE id = ?", (ev.id,))
            audit.append(conn, actor, "analysis.failed", f"analysis:{analysis_id}",
                         {"model_name": model_name, "model_sha256": model_sha256, "error": str(error),
                          "device": device, "software_version": SOFTWARE_VERSION, "parameters": parameters,
                          "started": started, "finished": finished}, ev.id)
        return self.get_analysis(analysis_id)

    def get_analysis(self, analysis_id: int) -> Analysis:
        row = self._store.one("SELECT * FROM analyses WHERE id = ?", (int(analysis_id),))
        if row is None:
            raise CaseError(f"no analysis with id {analysis_id} in this case.")
        return _analysis(row)

    def analyses(self, evidence_id: int | None = None) -> list[Analysis]:
        if evidence_id is None:
            rows = self._store.query("SELECT * FROM analyses ORDER BY id")
        else:
            rows = self._store.query("SELECT * FROM analyses WHERE evidence_id = ? ORDER BY id", (int(evidence_id),))
        return [_analysis(r) for r in rows]

    def latest_analysis(self, evidence_id: int, successful: bool = False) -> Analysis | None:
        cond = " AND error IS NULL" if successful else ""
        row = self._store.one(f"SELECT * FROM analyses WHERE evidence_id = ?{cond} ORDER BY id DESC LIMIT 1",
                              (int(evidence_id),))
        return _analysis(row) if row else None

    def map_file(self, analysis: Analysis) -> Path | None:
        return self.path / analysis.map_file if analysis.map_file else None

    def load_map(self, analysis: Analysis | int) -> np.ndarray:
        """The stored probability map as float32 in [0, 1], after checking its hash."""
        a = analysis if isinstance(analysis, Analysis) else self.get_analysis(analysis)
        if not a.map_file:
            raise CaseError(f"analysis {a.id} has no map (it failed: {a.error}).")
        path = self.path / a.map_file
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CaseError(f"{path}: the result map is missing from the case folder. "
                            "Run `declip case verify` and re-analyse the image.") from None
        if sha256_bytes(data) != a.map_sha256:
            raise CaseError(f"{path}: the result map changed after it was stored (hash mismatch); it is not "
                            "shown. Run `declip case verify` and re-analyse the image.")
        return decode_png16(data)

    # ------------------------------------------------------------------ thumbnails
    def thumbnail_file(self, evidence_id: int) -> Path | None:
        """A JPEG preview (≤256 px) made on first use; None if the image cannot be decoded."""
        from declip_desktop.common.images import ImageError, load_preview

        ev = self.get_evidence(evidence_id)
        out = self.path / THUMBNAIL_DIR / f"{ev.id}.jpg"
        if out.exists():
            return out
        try:
            img = load_preview(self.evidence_file(ev), THUMBNAIL_SIZE)  # JPEG decoded at reduced scale
        except (ImageError, OSError):
            return None
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
        try:
            img.save(tmp, "JPEG", quality=85)
            os.replace(tmp, out)  # derived data: atomic, but not worth an fsync
        except OSError:  # e.g. a full disk: a preview is not worth failing for, and leaves nothing
            tmp.unlink(missing_ok=True)
            return None
        return out

    # ------------------------------------------------------------------ review & settings
    def set_review(self, evidence_id: int, *, threshold: float | None = None, verdict: str | None = None,
                   notes: str | None = None, analyst: str | None = None, clear_threshold: bool = False) -> Evidence:
        """Change an item's review; one `review.changed` entry with the old and new values.
        `clear_threshold=True` removes the item's own threshold (it follows the case's default
        again), e.g. when the analyst undoes the first threshold saved for it."""
        if clear_threshold and threshold is not None:
            raise CaseError("set a threshold or clear it, not both")
        if threshold is not None and not (0.0 <= float(threshold) <= 1.0):
            raise CaseError(f"threshold {threshold} is outside 0…1. Choose a value between 0 and 1.")
        if verdict is not None and verdict not in VERDICTS:
            raise CaseError(f"unknown verdict {verdict!r}. Use one of: {', '.join(VERDICTS)}.")
        changes: dict[str, Any] = {}
        if threshold is not None:
            changes["threshold"] = float(threshold)
        if clear_threshold:
            changes["threshold"] = None
        if verdict is not None:
            changes["verdict"] = verdict
        if notes is not None:
            changes["notes"] = str(notes)
        if not changes:
            return self.get_evidence(evidence_id)
        with self._store.write(what="review") as conn:
            row = conn.execute(f"SELECT {', '.join(changes)} FROM evidence WHERE id = ?",
                               (int(evidence_id),)).fetchone()
            if row is None:
                raise CaseError(f"no evidence with id {evidence_id} in this case; nothing was changed.")
            old = dict(zip(changes, row))
            if old == changes:
                return self.get_evidence(evidence_id)
            actor = self._actor(analyst, conn)
            reviewed_at = audit.now_iso()
            conn.execute(
                f"UPDATE evidence SET {', '.join(f'{k} = ?' for k in changes)}, reviewed_by = ?, reviewed_at = ? "
                "WHERE id = ?", (*changes.values(), actor, reviewed_at, int(evidence_id)))
            audit.append(conn, actor, "review.changed", f"evidence:{int(evidence_id)}",
                         {"old": old, "new": changes, "reviewed_by": actor, "reviewed_at": reviewed_at},
                         int(evidence_id))
        return self.get_evidence(evidence_id)

    def get_setting(self, key: str, default: Any = None) -> Any:
        value = self._store.scalar("SELECT value FROM settings WHERE key = ?", (key,))
        return default if value is None else json.loads(value)

    def settings(self) -> dict[str, Any]:
        return {r["key"]: json.loads(r["value"]) for r in self._store.query("SELECT key, value FROM settings")}

    def set_setting(self, key: str, value: Any, analyst: str | None = None) -> None:
        text = _json(value)
        with self._store.write(what=f"setting {key}") as conn:
            old = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            if old is not None and old[0] == text:
                return
            conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, text))
            audit.append(conn, self._actor(analyst, conn), "setting.changed", f"setting:{key}",
                         {"key": key, "old": None if old is None else json.loads(old[0]), "new": value})

    # ------------------------------------------------------------------ audit & reports
    def audit_entries(self, evidence_ids: Iterable[int] | None = None) -> list[AuditEntry]:
        if evidence_ids is None:
            rows = self._store.query("SELECT * FROM audit ORDER BY seq")
        else:
            ids = sorted({int(i) for i in evidence_ids})
            if not ids:
                return []
            rows = self._store.query(
                f"SELECT * FROM audit WHERE evidence_id IN ({','.join('?' * len(ids))}) ORDER BY seq", tuple(ids))
        return [audit.row_to_entry(r) for r in rows]

    def audit_head(self) -> tuple[str, int]:
        """(hash of the newest audit entry, number of entries): quote it to anchor the history."""
        return audit.head(self._store.conn)

    def register_report(self, path: str | os.PathLike[str], analyst: str | None = None, *,
                        printed_head: tuple[str, int] | None = None) -> None:
        """Record a finished report's SHA-256 (verify re-checks it) with an audit entry.

        `printed_head`: the (audit head hash, entry count) the report prints; verify checks
        that this entry is still on the chain. Default: the head at registration."""
        p = Path(path).expanduser().absolute()
        if not p.is_file():
            raise CaseError(f"{p}: no such report file; nothing was registered.")
        digest = sha256_file(p)
        size = p.stat().st_size
        try:
            stored = str(p.relative_to(self.path))
        except ValueError:
            stored = str(p)
        with self._store.write(what="report") as conn:
            head, count = audit.head(conn)
            printed = (head, count) if printed_head is None else (str(printed_head[0]), int(printed_head[1]))
            actor = self._actor(analyst, conn)
            registered_at = audit.now_iso()
            cur = conn.execute("INSERT INTO reports (path, sha256, size, registered_by, registered_at) "
                               "VALUES (?, ?, ?, ?, ?)", (stored, digest, size, actor, registered_at))
            audit.append(conn, actor, "report.registered", f"report:{stored}",
                         {"path": stored, "sha256": digest, "size": size, "report_id": int(cur.lastrowid),
                          "registered_by": actor, "registered_at": registered_at,
                          "audit_head_before": head, "audit_count_before": count,
                          "printed_head": printed[0], "printed_count": printed[1]})

    def reports(self) -> list[dict[str, Any]]:
        return self._store.query("SELECT * FROM reports ORDER BY id")

    # ------------------------------------------------------------------ verify
    def verify(self, anchors: Sequence[str | os.PathLike[str]] = ()) -> VerifyReport:
        """Check everything (reads only). `anchors`: receipts, signature files or PDF reports kept
        outside the case; an unreadable one raises AnchorError (a CaseError) before anything is checked."""
        from declip_desktop.cases.anchors import load_anchor
        from declip_desktop.cases.verify import verify_case

        loaded = [load_anchor(a) for a in anchors]
        with self._store.snapshot():
            return verify_case(self, loaded)

    def check_records(self) -> list[Problem]:
        """Audit chain and replay only (no file hashing; ~0.2 ms per item): does the database still
        hold what its audit trail says? Reports run it before printing anything."""
        from declip_desktop.cases.verify import record_problems

        with self._store.snapshot() as conn:
            return record_problems(conn)

    def integrity_check(self) -> list[str]:
        rows = self._store.conn.execute("PRAGMA integrity_check").fetchall()
        return [] if [r[0] for r in rows] == ["ok"] else [r[0] for r in rows]

    @contextlib.contextmanager
    def snapshot(self):  # noqa: ANN201
        """`with case.snapshot():` every read inside sees one committed state (status, export)."""
        with self._store.snapshot():
            yield self

    @contextlib.contextmanager
    def _write(self):  # for modules of this package (verify, export) that need a transaction
        with self._store.write() as conn:
            yield conn


__all__ = ["Case", "CaseBusyError", "CaseError", "NewerSchemaError"]
