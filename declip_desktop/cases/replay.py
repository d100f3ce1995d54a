"""Replay the audit trail into the state every table should hold (compared with the database by
cases/reconcile.py).

Every change the application makes to a case is one audit entry that carries the values it
set (see `Case`). Replaying the entries in order therefore rebuilds what each row of each
table must hold; any row that differs, is missing, or that no entry explains was changed
outside the application. The chain walk (`audit.verify_chain`) proves the entries
themselves are intact; this module proves the tables agree with them.

Entries written by older versions lack some values (e.g. an import's time or an analysis'
duration). Those values are not compared; the report lists them once as a legacy notice
instead of raising false alarms. A time an old entry did not record is checked against the
entry's own time, within `LEGACY_TIME_TOLERANCE_S` (the two were taken moments apart).
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import Any

from declip_desktop.cases.audit import canonical
from declip_desktop.cases.records import Problem, is_secondary

LEGACY_TIME_TOLERANCE_S = 60.0
#: A status the application sets without an audit entry while it works on an item.
TRANSIENT_STATUS = "analysing"


@dataclass(frozen=True)
class Source:
    seq: int
    ts: str
    action: str


@dataclass(frozen=True)
class Value:
    value: Any
    source: Source
    tolerance_s: float | None = None  # a time an old entry did not record: its entry's time, roughly


@dataclass
class Row:
    fields: dict[str, Value] = field(default_factory=dict)
    created: Source | None = None

    def set(self, name: str, value: Any, src: Source, tolerance_s: float | None = None) -> None:
        self.fields[name] = Value(norm(value), src, tolerance_s)

    def get(self, name: str, default: Any = None) -> Any:
        v = self.fields.get(name)
        return default if v is None else v.value


@dataclass
class Expected:
    """The state the trail describes. Keys: row ids (rejections/reports: ids the entries
    recorded, or ('legacy', n) for old entries that did not)."""

    case_info: Row | None = None
    schema_version: Value | None = None
    evidence: dict[int, Row] = field(default_factory=dict)
    analyses: dict[int, Row] = field(default_factory=dict)
    rejections: dict[Any, Row] = field(default_factory=dict)
    reports: dict[Any, Row] = field(default_factory=dict)
    settings: dict[str, Value] = field(default_factory=dict)
    signers: dict[str, Row] = field(default_factory=dict)
    extra: dict[str, dict[Any, Row]] = field(default_factory=dict)  # tables of other modules, e.g. calibrations
    legacy: dict[str, tuple[int, set[str]]] = field(default_factory=dict)  # action -> (entries, fields)
    problems: list[Problem] = field(default_factory=list)  # the trail contradicting itself

    def name_of(self, evidence_id: int | None, db_name: str | None = None) -> str:
        row = self.evidence.get(evidence_id) if evidence_id is not None else None
        name = row.get("original_name") if row else None
        return str(name or db_name or f"evidence {evidence_id}")

    def evidence_label(self, evidence_id: int, db_name: str | None = None) -> str:
        return f"{self.name_of(evidence_id, db_name)} (evidence {evidence_id})"

    def _legacy(self, action: str, missing: list[str]) -> None:
        if missing:
            n, names = self.legacy.get(action, (0, set()))
            self.legacy[action] = (n + 1, names | set(missing))


def norm(value: Any) -> Any:
    """The JSON form of a value (what the entry stored), so dicts and lists compare equal."""
    if isinstance(value, (dict, list, tuple)):
        return json.loads(canonical(value))
    return value


# ------------------------------------------------------------------------------ values
_LABELS = {
    "original_name": "file name", "original_path": "original path", "imported_by": "importer",
    "imported_at": "import time", "sha256": "SHA-256", "md5": "MD5", "stored_name": "stored file name",
    "number": "case number", "model_sha256": "model SHA-256", "map_sha256": "map SHA-256", "map_file": "map file",
    "reviewed_by": "reviewer", "reviewed_at": "review time", "created_by": "analyst",
    "rejected_by": "rejected by", "rejected_at": "rejection time", "registered_by": "registered by",
    "registered_at": "registration time", "created_with": "creating software", "uuid": "case id",
    "public_key": "public key",
}


def field_label(name: str) -> str:
    return _LABELS.get(name, name.replace("_", " "))


def fmt(value: Any, other: Any = None) -> str:
    if value is None:
        return "empty"
    if isinstance(value, float):
        if isinstance(other, (int, float)) and f"{value:.3f}" != f"{float(other):.3f}":
            return f"{value:.3f}"
        return repr(value)
    if isinstance(value, (dict, list)):
        value = canonical(value)
    text = str(value)
    return repr(text if len(text) <= 80 else text[:77] + "…")


def same(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def parse_time(text: Any) -> datetime | None:
    try:
        t = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


# ------------------------------------------------------------------------------ replay
def replay(conn: sqlite3.Connection) -> Expected:
    from declip_desktop.cases.calibration_trail import HANDLERS as calibration_handlers

    # Annotation entries have their own module, which builds on this one's Row and Source.
    from declip_desktop.cases.annotation_replay import HANDLERS as annotation_handlers

    from declip_desktop.cases.tags_replay import HANDLERS as tag_handlers
    from declip_desktop.cases.stability_records import REPLAY_HANDLERS as stability_handlers

    handlers = {**_HANDLERS, **calibration_handlers, **annotation_handlers, **tag_handlers, **stability_handlers}
    exp = Expected()
    legacy_rejections = legacy_reports = 0
    cursor = conn.execute("SELECT seq, ts, actor, action, object, evidence_id, details FROM audit ORDER BY seq")
    for seq, ts, actor, action, obj, evidence_id, details_text in cursor:
        try:
            d = json.loads(details_text)
        except (TypeError, ValueError):
            continue  # the chain walk reports an unreadable entry as edited
        if not isinstance(d, dict):
            continue
        src = Source(seq, ts, action)
        handler = handlers.get(action)
        if handler is None:
            continue  # entries that change no table: exports, duplicates, GUI notices, …
        if action == "evidence.rejected" and "rejection_id" not in d:
            legacy_rejections += 1
            d = {**d, "rejection_id": ("legacy", legacy_rejections)}
        if action == "report.registered" and "report_id" not in d:
            legacy_reports += 1
            d = {**d, "report_id": ("legacy", legacy_reports)}
        handler(exp, src, actor, obj, evidence_id, d)
    return exp


def _missing(d: dict, *names: str) -> list[str]:
    return [n for n in names if n not in d]


def _time(row: Row, name: str, d: dict, src: Source) -> None:
    if name in d:
        row.set(name, d[name], src)
    else:
        row.set(name, src.ts, src, tolerance_s=LEGACY_TIME_TOLERANCE_S)


def _case_created(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    row = Row(created=src)
    for name in ("number", "title", "analyst", "description", "uuid"):
        if name in d:
            row.set(name, d[name], src)
    if "software" in d:
        row.set("created_with", d["software"], src)
    _time(row, "created", d, src)
    exp.case_info = row
    if "schema_version" in d:
        exp.schema_version = Value(d["schema_version"], src)


def _case_updated(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    if exp.case_info is None:
        exp.case_info = Row()
    _check_old(exp, exp.case_info, d.get("old") or {}, src, "case")
    for name, value in (d.get("new") or {}).items():
        exp.case_info.set(name, value, src)


def _case_migrated(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    if "to_version" in d:
        exp.schema_version = Value(d["to_version"], src)


def _imported(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    if eid is None:
        return
    row = Row(created=src)
    for name in ("sha256", "md5", "size", "original_path", "stored_name", "format", "width", "height",
                 "mode", "metadata"):
        if name in d:
            row.set(name, d[name], src)
    if "metadata_sha256" in d:
        row.set("_metadata_sha256", d["metadata_sha256"], src)
    if "original_name" in d:
        row.set("original_name", d["original_name"], src)
    elif "original_path" in d:  # older entries: the import stored the path's last part as the name
        row.set("original_name", PurePath(str(d["original_path"])).name, src)
    row.set("imported_by", d.get("imported_by", actor), src)
    _time(row, "imported_at", d, src)
    for name, value in (("status", "queued"), ("verdict", "not reviewed"), ("notes", ""), ("threshold", None),
                        ("reviewed_by", None), ("reviewed_at", None)):
        row.set(name, value, src)
    exp._legacy("evidence.imported", ["metadata"] * ("metadata_sha256" not in d and "metadata" not in d)
                + _missing(d, "mode", "imported_at"))
    exp.evidence[int(eid)] = row


def _analysis(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    if not obj.startswith("analysis:") or eid is None:
        return
    ok = src.action == "analysis.stored"
    row = Row(created=src)
    row.set("evidence_id", int(eid), src)
    row.set("created_by", actor, src)
    for name in ("model_name", "model_sha256", "parameters", "software_version", "started", "finished", "device"):
        if name in d:
            row.set(name, d[name], src)
    if ok:
        for name in ("score", "map_file", "map_sha256", "seconds"):
            if name in d:
                row.set(name, d[name], src)
        row.set("error", None, src)
        exp._legacy(src.action, _missing(d, "seconds"))
    else:
        row.set("error", d.get("error"), src)
        for name in ("score", "map_file", "map_sha256", "seconds"):
            row.set(name, None, src)
        exp._legacy(src.action, _missing(d, "device"))
    try:
        exp.analyses[int(obj.split(":", 1)[1])] = row
    except ValueError:
        return
    if not ok and is_secondary(d.get("parameters")) and any(
            r.get("evidence_id") == int(eid) and r.get("error") is None for r in exp.analyses.values()):
        ok = True  # a secondary model's failure leaves a successfully analysed item done (Case.store_failure)
    _set_status(exp, int(eid), "done" if ok else "failed", src)


def _set_status(exp: Expected, eid: int, status: str, src: Source) -> None:
    row = exp.evidence.get(eid)
    if row is not None:
        row.set("status", status, src)


def _queue(status: str):  # noqa: ANN202
    def apply(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
        for evidence_id in d.get("evidence_ids") or []:
            _set_status(exp, int(evidence_id), status, src)

    return apply


def _review(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    row = exp.evidence.get(int(eid)) if eid is not None else None
    if row is None:
        exp.problems.append(Problem("audit_replay", f"audit:{src.seq}",
                                    f"the review entry of {src.ts} (#{src.seq}) names evidence {eid}, "
                                    "which the trail never imported"))
        return
    _check_old(exp, row, d.get("old") or {}, src, exp.evidence_label(int(eid)))
    for name, value in (d.get("new") or {}).items():
        row.set(name, value, src)
    row.set("reviewed_by", d.get("reviewed_by", actor), src)
    _time(row, "reviewed_at", d, src)


def _check_old(exp: Expected, row: Row, old: dict, src: Source, item: str) -> None:
    """A change entry also records the values it replaced: they must be what the trail set before."""
    for name, value in old.items():
        if name in row.fields and not same(row.get(name), norm(value)):
            before = row.fields[name].source
            exp.problems.append(Problem(
                "audit_replay", f"audit:{src.seq}",
                f"{item}: the entry of {src.ts} (#{src.seq}) changed {field_label(name)} from {fmt(value)}, but the "
                f"trail before it set {fmt(row.get(name))} (#{before.seq}); entries were removed or rewritten"))


def _setting(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    key = d.get("key")
    if key is None:
        return
    prev = exp.settings.get(key)
    if "old" in d and prev is not None and not same(prev.value, norm(d["old"])):
        exp.problems.append(Problem(
            "audit_replay", f"audit:{src.seq}",
            f"setting {key}: the entry of {src.ts} (#{src.seq}) changed it from {fmt(d['old'])}, but the trail "
            f"before it set {fmt(prev.value)} (#{prev.source.seq}); entries were removed or rewritten"))
    exp.settings[key] = Value(norm(d.get("new")), src)


def _rejected(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    row = Row(created=src)
    row.set("path", d.get("path"), src)
    row.set("reason", d.get("reason"), src)
    if "size" in d:
        row.set("size", d["size"], src)
    row.set("rejected_by", actor, src)
    _time(row, "rejected_at", d, src)
    exp._legacy(src.action, _missing(d, "size"))
    exp.rejections[d["rejection_id"]] = row


def _report(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    row = Row(created=src)
    for name in ("path", "sha256", "size"):
        if name in d:
            row.set(name, d[name], src)
    row.set("registered_by", d.get("registered_by", actor), src)
    _time(row, "registered_at", d, src)
    for name in ("printed_head", "printed_count", "audit_head_before", "audit_count_before"):
        if name in d:
            row.set("_" + name, d[name], src)  # underscore: not a column; checked against the chain
    exp.reports[d["report_id"]] = row


def _key(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    fp = d.get("fingerprint")
    if not fp:
        return
    row = Row(created=src)
    for name in ("fingerprint", "name", "public_key"):
        row.set(name, d.get(name), src)
    row.set("registered_by", actor, src)
    _time(row, "registered_at", d, src)
    exp.signers[fp] = row


_HANDLERS = {
    "case.created": _case_created,
    "case.updated": _case_updated,
    "case.migrated": _case_migrated,
    "evidence.imported": _imported,
    "evidence.rejected": _rejected,
    "analysis.stored": _analysis,
    "analysis.failed": _analysis,
    "analysis.requeued": _queue("queued"),
    "analysis.interrupted": _queue("queued"),
    "analysis.dequeued": _queue("skipped"),
    "review.changed": _review,
    "setting.changed": _setting,
    "report.registered": _report,
    "key.registered": _key,
}
