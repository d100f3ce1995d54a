"""Opening a case finishes or discards what a killed process left behind: staged files
whose rows were committed go into place, scratch files go, interrupted analyses are queued again."""

from __future__ import annotations

import os
from pathlib import Path

from declip_desktop.cases import audit
from declip_desktop.cases.core import CaseCore
from declip_desktop.cases.files import PARTIAL_SUFFIX, STAGED_SUFFIX, FileLock, final_name_of_staged, fsync_dir
from declip_desktop.cases.stability_store import discard_scratch
from declip_desktop.common.hashing import sha256_file


class CaseRecovery(CaseCore):
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
                # Copies a killed stability check left (cases.stability_store): no check runs now.
                done["discarded"] += discard_scratch(self._tmp)
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
