"""The analysis queue and the results store of a case: which evidence waits, claiming an
item, storing a finished map (written durably, hash-checked, then its row) or a failure,
and reading results back with their hashes checked."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from declip_desktop.cases import audit
from declip_desktop.cases.errors import CaseError
from declip_desktop.cases.evidence_store import CaseEvidence
from declip_desktop.cases.files import PARTIAL_SUFFIX, fsync_dir, make_read_only, staged_name, write_durable
from declip_desktop.cases.records import Analysis, Evidence, is_secondary
from declip_desktop.cases.rows import EVIDENCE_SELECT, SHOWN_FIRST, analysis_from_row, evidence_from_row, to_json
from declip_desktop.common.hashing import sha256_bytes, sha256_file
from declip_desktop.common.outputs import DiskFullError, disk_full_as_error
from declip_desktop.common.probmaps import decode_png16, encode_png16
from declip_desktop.common.version import SOFTWARE_VERSION


class CaseAnalyses(CaseEvidence):
    # ------------------------------------------------------------------ queue
    def queued_evidence(self, model_sha256: str | None = None) -> list[Evidence]:
        """Evidence waiting for analysis: status 'queued', plus, when a model is given,
        done/failed evidence never analysed with that model."""
        if model_sha256 is None:
            rows = self._store.query(f"{EVIDENCE_SELECT} WHERE e.status = 'queued' ORDER BY e.id")
        else:
            rows = self._store.query(
                f"{EVIDENCE_SELECT} WHERE e.status = 'queued' OR (e.status IN ('done', 'failed') AND NOT EXISTS "
                "(SELECT 1 FROM analyses x WHERE x.evidence_id = e.id AND x.model_sha256 = ?)) ORDER BY e.id",
                (model_sha256,),
            )
        return [evidence_from_row(r) for r in rows]

    def mark_analysing(self, evidence_id: int) -> bool:
        """Claim one evidence for analysis. False if it is already being analysed or skipped.

        Not audited: 'analysing' is a transient working state; the outcome is audited."""
        with self._store.write(what="analysis") as conn:
            cur = conn.execute("UPDATE evidence SET status = 'analysing' WHERE id = ? "
                               "AND status NOT IN ('analysing', 'skipped')", (int(evidence_id),))
            return cur.rowcount == 1

    def release_claim(self, claims: Iterable[tuple[int, str]]) -> int:
        """Undo `mark_analysing` for items whose computed result is dropped before anything was
        stored (the run paused or stopped before it would have started them): each gets back the
        status it had, (evidence id, status) 'queued', 'done' or 'failed'. Not audited, as the
        claim was not: for the case nothing happened to them."""
        with self._store.write(what="analysis") as conn:
            released = 0
            for evidence_id, status in claims:
                cur = conn.execute("UPDATE evidence SET status = ? WHERE id = ? AND status = 'analysing'",
                                   (status if status in ("queued", "done", "failed") else "queued", int(evidence_id)))
                released += cur.rowcount
            return released

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
                     finished: str, analyst: str | None = None, finishes_item: bool = True) -> Analysis:
        """Store a finished analysis: the map (16-bit PNG, atomically), its hash and the row.

        `finishes_item=False` stores it without marking the item done: the first of two analyses
        that belong together (a tiled map before its squash map), so a process killed between
        them leaves the item 'analysing', which goes back to the queue, not 'done' with half a pair."""
        prob_map = np.asarray(prob_map)
        if prob_map.ndim != 2 or prob_map.size == 0:
            raise CaseError(f"evidence {evidence_id}: a probability map must be a non-empty 2-D array, "
                            f"got shape {prob_map.shape}. Nothing was stored.")
        if not np.all(np.isfinite(prob_map)):
            raise CaseError(f"evidence {evidence_id}: the probability map holds NaN or infinite values. "
                            "Nothing was stored.")
        with self._store.operation("analysis", analyst or self._analyst_override):
            return self._store_result(evidence_id, model_name, model_sha256, parameters, score, prob_map, device,
                                      seconds, started, finished, analyst, finishes_item)

    def _store_result(self, evidence_id: int, model_name: str, model_sha256: str, parameters: dict[str, Any],
                      score: float, prob_map: np.ndarray, device: str, seconds: float, started: str,
                      finished: str, analyst: str | None, finishes_item: bool = True) -> Analysis:
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
                        (ev.id, model_name, model_sha256, to_json(parameters), float(score), rel, map_sha, device,
                         float(seconds), SOFTWARE_VERSION, started, finished, actor),
                    )
                    analysis_id = int(cur.lastrowid)
                    if finishes_item:
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
                (ev.id, model_name, model_sha256, to_json(parameters), device, SOFTWARE_VERSION, started, finished,
                 str(error), actor),
            )
            analysis_id = int(cur.lastrowid)
            # A secondary model failing (analysis.multi_model) does not undo the item's results.
            status = "done" if is_secondary(parameters) and conn.execute(
                "SELECT 1 FROM analyses WHERE evidence_id = ? AND error IS NULL LIMIT 1", (ev.id,)).fetchone() \
                else "failed"
            conn.execute("UPDATE evidence SET status = ? WHERE id = ?", (status, ev.id))
            audit.append(conn, actor, "analysis.failed", f"analysis:{analysis_id}",
                         {"model_name": model_name, "model_sha256": model_sha256, "error": str(error),
                          "device": device, "software_version": SOFTWARE_VERSION, "parameters": parameters,
                          "started": started, "finished": finished}, ev.id)
        return self.get_analysis(analysis_id)

    def get_analysis(self, analysis_id: int) -> Analysis:
        row = self._store.one("SELECT * FROM analyses WHERE id = ?", (int(analysis_id),))
        if row is None:
            raise CaseError(f"no analysis with id {analysis_id} in this case.")
        return analysis_from_row(row)

    def analyses(self, evidence_id: int | None = None) -> list[Analysis]:
        if evidence_id is None:
            rows = self._store.query("SELECT * FROM analyses ORDER BY id")
        else:
            rows = self._store.query("SELECT * FROM analyses WHERE evidence_id = ? ORDER BY id", (int(evidence_id),))
        return [analysis_from_row(r) for r in rows]

    def latest_analysis(self, evidence_id: int, successful: bool = False) -> Analysis | None:
        cond = " AND error IS NULL" if successful else ""
        row = self._store.one(f"SELECT * FROM analyses WHERE evidence_id = ?{cond} ORDER BY {SHOWN_FIRST} LIMIT 1",
                              (int(evidence_id),))
        return analysis_from_row(row) if row else None

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
