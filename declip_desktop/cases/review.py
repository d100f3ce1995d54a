"""The analyst's review of each item (threshold, verdict, notes) and the case's settings
store; every change is one audit entry with the old and new values. What settings mean
(threshold, pinned model) is `cases.case_settings`."""

from __future__ import annotations

import json
from typing import Any

from declip_desktop.cases import audit
from declip_desktop.cases.errors import CaseError
from declip_desktop.cases.evidence_store import CaseEvidence
from declip_desktop.cases.records import VERDICTS, Evidence
from declip_desktop.cases.rows import to_json


class CaseReview(CaseEvidence):
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
        text = to_json(value)
        with self._store.write(what=f"setting {key}") as conn:
            old = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            if old is not None and old[0] == text:
                return
            conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, text))
            audit.append(conn, self._actor(analyst, conn), "setting.changed", f"setting:{key}",
                         {"key": key, "old": None if old is None else json.loads(old[0]), "new": value})
