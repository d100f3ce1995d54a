"""A case's history and its checks: the audit trail, the registry of finished reports
(their hashes, re-checked by verify) and verification itself (`cases.verify`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from declip_desktop.cases import audit
from declip_desktop.cases.core import CaseCore
from declip_desktop.cases.errors import CaseError
from declip_desktop.cases.records import AuditEntry, Problem, VerifyReport
from declip_desktop.common.hashing import sha256_file


class CaseHistory(CaseCore):
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
