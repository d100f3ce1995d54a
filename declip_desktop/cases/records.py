"""Plain records returned by the cases layer. No behaviour, no database handles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("queued", "analysing", "done", "failed", "skipped")
VERDICTS = ("not reviewed", "authentic", "manipulated", "inconclusive")
#: `parameters["agreement"]["role"]` of a secondary model's result in a multi-model run (analysis.multi_model).
SECONDARY_ROLE = "secondary"


def is_secondary(parameters: Any) -> bool:
    """A secondary model's result: stored for agreement, never shown before the primary's."""
    role = parameters.get("agreement") if isinstance(parameters, dict) else None
    return isinstance(role, dict) and role.get("role") == SECONDARY_ROLE


@dataclass(frozen=True)
class CaseInfo:
    number: str
    title: str
    analyst: str
    description: str
    created: str
    path: Path
    uuid: str = ""
    schema_version: int = 0


@dataclass(frozen=True)
class Evidence:
    id: int
    original_name: str
    original_path: str
    sha256: str
    md5: str
    size: int
    format: str
    width: int
    height: int
    metadata: dict[str, Any]
    imported_by: str
    imported_at: str
    status: str
    threshold: float | None
    verdict: str
    notes: str
    score: float | None = None
    error: str | None = None
    stored_name: str = ""
    mode: str = ""
    reviewed_by: str | None = None
    reviewed_at: str | None = None


@dataclass(frozen=True)
class Analysis:
    id: int
    evidence_id: int
    model_name: str
    model_sha256: str
    parameters: dict[str, Any]
    score: float | None
    map_file: str | None  # relative to the case folder
    map_sha256: str | None
    device: str | None
    seconds: float | None
    software_version: str
    started: str | None
    finished: str | None
    error: str | None
    created_by: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Rejection:
    path: str
    reason: str


@dataclass
class ImportReport:
    imported: list[Evidence] = field(default_factory=list)
    duplicates: list[tuple[str, int]] = field(default_factory=list)  # (path, id of the evidence it duplicates)
    rejected: list[Rejection] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # hidden/system files skipped while walking folders
    stopped: bool = False  # should_stop() asked to stop before every file was seen


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    timestamp: str
    actor: str
    action: str
    object: str
    evidence_id: int | None
    details: dict[str, Any]
    prev_hash: str
    hash: str
    os_user: str = ""


@dataclass(frozen=True)
class Problem:
    kind: str  # e.g. record_changed, evidence_changed, not_a_file, audit_chain, anchor_mismatch (ARCHITECTURE.md)
    object: str  # what it is about: a relative path, "evidence:12", "audit:37", "database"
    detail: str  # a plain sentence


@dataclass
class VerifyReport:
    ok: bool
    problems: list[Problem]
    evidence_checked: int = 0
    maps_checked: int = 0
    reports_checked: int = 0
    audit_entries: int = 0
    audit_head: str = ""
    notices: list[Problem] = field(default_factory=list)  # worth knowing, not a problem (e.g. legacy entries)
    signed_by: list[str] = field(default_factory=list)  # "report … : signed by NAME (key …)", valid ones only
    anchors_checked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "evidence_checked": self.evidence_checked,
            "maps_checked": self.maps_checked,
            "reports_checked": self.reports_checked,
            "audit_entries": self.audit_entries,
            "audit_head": self.audit_head,
            "anchors_checked": self.anchors_checked,
            "problems": [{"kind": p.kind, "object": p.object, "detail": p.detail} for p in self.problems],
            "notices": [{"kind": p.kind, "object": p.object, "detail": p.detail} for p in self.notices],
            "signed_by": list(self.signed_by),
        }
