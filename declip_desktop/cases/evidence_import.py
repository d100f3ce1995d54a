"""Importing files into a case: `cases.importer` finds and stages the files (a pool of
threads copying and hashing them); this commits them in batches, each row with its audit
entry, and moves the copies into `evidence/`. A full disk keeps what is complete and
records why the import stopped."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from declip_desktop.cases import audit, db
from declip_desktop.cases.evidence_store import CaseEvidence
from declip_desktop.cases.files import fsync_dir
from declip_desktop.cases.importer import Duplicate, Staged, discover, stage
from declip_desktop.cases.records import ImportReport, Rejection
from declip_desktop.cases.rows import to_json
from declip_desktop.common.hashing import sha256_bytes
from declip_desktop.common.images import DEFAULT_MAX_PIXELS
from declip_desktop.common.outputs import DiskFullError
from declip_desktop.common.progress import StepProgress

#: Import commits at least this often, so other windows see progress and a crash loses little.
_BATCH_FILES = 64
_BATCH_SECONDS = 0.5


def _total_size(paths: Iterable[Path]) -> int:
    total = 0
    for p in paths:
        with contextlib.suppress(OSError):
            total += os.stat(p).st_size
    return total



class CaseImport(CaseEvidence):
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
                     item.width, item.height, item.mode, to_json(item.metadata), actor, now),
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


    def rejections(self) -> list[Rejection]:
        return [Rejection(r["path"], r["reason"]) for r in self._store.query(
            "SELECT path, reason FROM rejections ORDER BY id")]
