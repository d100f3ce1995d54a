"""Reading a case's evidence: the list, one item, its stored original, counts by status,
and the derived thumbnail previews."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from declip_desktop.cases.core import CaseCore
from declip_desktop.cases.errors import CaseError
from declip_desktop.cases.records import STATUSES, Evidence
from declip_desktop.cases.rows import EVIDENCE_SELECT, evidence_from_row

THUMBNAIL_DIR = "results/thumbnails"
THUMBNAIL_SIZE = 256


class CaseEvidence(CaseCore):
    def _evidence_by_ids(self, ids: Sequence[int]) -> list[Evidence]:
        marks = ",".join("?" * len(ids))
        rows = self._store.query(f"{EVIDENCE_SELECT} WHERE e.id IN ({marks}) ORDER BY e.id", tuple(ids))
        return [evidence_from_row(r) for r in rows]


    # ------------------------------------------------------------------ evidence
    def evidence_list(self, status: str | None = None) -> list[Evidence]:
        if status is not None:
            rows = self._store.query(f"{EVIDENCE_SELECT} WHERE e.status = ? ORDER BY e.id", (status,))
        else:
            rows = self._store.query(f"{EVIDENCE_SELECT} ORDER BY e.id")
        return [evidence_from_row(r) for r in rows]

    def get_evidence(self, evidence_id: int) -> Evidence:
        row = self._store.one(f"{EVIDENCE_SELECT} WHERE e.id = ?", (int(evidence_id),))
        if row is None:
            raise CaseError(f"no evidence with id {evidence_id} in case {self.info.number}.")
        return evidence_from_row(row)

    def evidence_file(self, evidence: Evidence | int) -> Path:
        ev = evidence if isinstance(evidence, Evidence) else self.get_evidence(evidence)
        return self.path / "evidence" / ev.stored_name

    def status_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for status, n in self._store.conn.execute("SELECT status, count(*) FROM evidence GROUP BY status"):
            counts[status] = n
        return counts

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
