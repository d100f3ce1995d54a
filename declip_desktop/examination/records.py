"""Examination records: metadata, alerts and Content Credentials of an evidence item, computed
from its file, stored read-only in the case folder and hash-logged in the audit trail.

    CASE/forensics/<evidence id>/examination-<sha256[:16]>.json   one file per distinct record
    CASE/forensics/<evidence id>/c2pa-<sha256[:16]>.json          the C2PA manifest store as read

Each examination appends `forensics.examined` to the audit log with the SHA-256 of both
files, the C2PA state and the alert codes; `load_examination` refuses a file whose hash
no longer matches (`ExaminationChanged`), and `verify_examinations` checks them all.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declip_desktop.cases import Case
from declip_desktop.cases.files import fsync_dir, make_read_only, write_durable
from declip_desktop.common.hashing import sha256_bytes, sha256_file
from declip_desktop.common.progress import StepProgress
from declip_desktop.common.version import SOFTWARE_VERSION
from declip_desktop.forensics.alerts import find_alerts
from declip_desktop.forensics.metadata import read_metadata
from declip_desktop.forensics.provenance import read_c2pa

FORENSICS_DIR = "forensics"
RECORD_VERSION = 1
ACTION = "forensics.examined"
#: Case setting: PEM roots whose C2PA signers count as trusted in this case (set by the analyst).
TRUST_SETTING = "c2pa_trust_anchors_pem"
FAILED_ACTION = "forensics.failed"


class ExaminationError(Exception):
    """An examination could not be made or read; the message says what to do."""


class ExaminationChanged(ExaminationError):
    """A stored examination file no longer matches the hash in the audit log."""


@dataclass(frozen=True)
class Examination:
    evidence_id: int
    record: dict[str, Any]  # evidence_sha256, software_version, metadata, c2pa, alerts, …
    path: Path
    sha256: str

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return self.record.get("alerts") or []

    @property
    def c2pa(self) -> dict[str, Any]:
        return self.record.get("c2pa") or {}

    @property
    def metadata(self) -> dict[str, Any]:
        return self.record.get("metadata") or {}


def folder_of(case: Case, evidence_id: int) -> Path:
    return case.path / FORENSICS_DIR / str(int(evidence_id))


def _store_file(folder: Path, stem: str, data: bytes) -> tuple[Path, str]:
    """Write `data` durably as `<stem>-<sha[:16]>.json` (read-only); an identical file is reused."""
    sha = sha256_bytes(data)
    final = folder / f"{stem}-{sha[:16]}.json"
    if final.exists():
        if sha256_file(final) == sha:
            return final, sha
        # Someone changed the stored file: keep their version for review, never overwrite it.
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        os.replace(final, final.with_name(f"{final.name}.altered-{stamp}"))
    # Staged beside its final name (not in .tmp/, which opening a case clears), then renamed.
    staging = folder / f".{stem}-{uuid.uuid4().hex}.partial"
    try:
        write_durable(staging, data)
        make_read_only(staging)
        os.replace(staging, final)
    except BaseException:
        staging.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
        raise
    fsync_dir(folder)
    return final, sha


def _tool_versions() -> dict[str, str]:
    """Versions of the parsers that produced a record, so another examiner can reproduce it."""
    from importlib import metadata as md

    out = {}
    for dist in ("exifread", "defusedxml", "pillow", "c2pa-python", "opencv-python-headless", "numpy"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def examine_evidence(case: Case, evidence_id: int, *, analyst: str | None = None,
                     trust_anchors_pem: str | None = None) -> Examination:
    """Examine one evidence item (file hash-checked first), store the record and log it.

    C2PA signers are judged against `trust_anchors_pem`, else the case's TRUST_SETTING.
    Raises ExaminationError when the evidence file is missing or changed since import, or the
    trust anchors are unusable."""
    ev = case.get_evidence(evidence_id)
    path = case.evidence_file(ev)
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise ExaminationError(f"evidence {ev.id} ({ev.original_name}) cannot be read: {exc}. "
                               "Run `declip case verify` to see what happened to the case folder.") from exc
    if actual != ev.sha256:
        raise ExaminationError(f"evidence {ev.id} ({ev.original_name}) no longer matches its import hash; "
                               "it is not examined. Run `declip case verify`.")
    meta = read_metadata(path)
    pem = trust_anchors_pem or case.get_setting(TRUST_SETTING) or None
    try:
        c2pa = read_c2pa(path, ev.format, trust_anchors_pem=pem)
    except ValueError as exc:
        raise ExaminationError(f"{exc}. Fix or remove the case's C2PA trust anchors "
                               "(`declip case examine DIR --trust-anchors FILE.pem`)") from exc
    manifest_json = c2pa.pop("manifest_json", None)
    alerts = [a.as_dict() for a in find_alerts(meta, c2pa)]
    folder = folder_of(case, ev.id)
    folder.mkdir(parents=True, exist_ok=True)
    c2pa_file = c2pa_sha = None
    if manifest_json:
        c2pa_path, c2pa_sha = _store_file(folder, "c2pa", manifest_json.encode("utf-8"))
        c2pa_file = c2pa_path.relative_to(case.path).as_posix()
    record = {"record_version": RECORD_VERSION, "evidence_id": ev.id, "evidence_sha256": ev.sha256,
              "software_version": SOFTWARE_VERSION, "tools": _tool_versions(), "metadata": meta, "c2pa": c2pa, "alerts": alerts,
              "c2pa_manifest_file": c2pa_file, "c2pa_manifest_sha256": c2pa_sha}
    data = json.dumps(record, sort_keys=True, ensure_ascii=False, indent=1).encode("utf-8")
    out, sha = _store_file(folder, "examination", data)
    rel = out.relative_to(case.path).as_posix()
    case.log_event(ACTION, f"evidence:{ev.id}", {
        "file": rel, "sha256": sha, "c2pa_manifest_file": c2pa_file, "c2pa_manifest_sha256": c2pa_sha,
        "c2pa_state": c2pa.get("state"), "alerts": sorted({a["code"] for a in alerts}),
        "trust_anchors_sha256": sha256_bytes(pem.encode()) if pem else None,
        "alert_count": len(alerts), "warning_count": sum(a["severity"] == "warning" for a in alerts),
        "software_version": SOFTWARE_VERSION}, analyst=analyst, evidence_id=ev.id)
    return Examination(ev.id, record, out, sha)


def examine_many(case: Case, evidence_ids: Iterable[int], *, analyst: str | None = None,
                 progress: StepProgress | None = None) -> dict[int, str | None]:
    """Examine each item; a failure is audit-logged and returned ({id: error or None}), never raised."""
    ids = list(evidence_ids)
    out: dict[int, str | None] = {}
    for i, evidence_id in enumerate(ids, 1):
        try:
            examine_evidence(case, evidence_id, analyst=analyst)
            out[evidence_id] = None
        except Exception as exc:  # noqa: BLE001 - one bad item must not stop the others; each is logged
            out[evidence_id] = f"{type(exc).__name__}: {exc}"
            try:
                case.log_event(FAILED_ACTION, f"evidence:{evidence_id}", {"error": out[evidence_id]},
                               analyst=analyst, evidence_id=evidence_id)
            except Exception as log_exc:  # noqa: BLE001 - e.g. the disk is full for the database too
                out[evidence_id] += f" (and the failure could not be written to the audit log: {log_exc})"
        if progress:
            progress(i, len(ids), f"evidence {evidence_id}")
    return out


def import_and_examine(case: Case, paths: Iterable[str | os.PathLike[str]], analyst: str | None = None,
                       examine_progress: StepProgress | None = None, **import_options: Any):
    """`case.import_paths(...)`, then the examination of every newly imported item (the import hook
    shared by the CLI and the GUI). Returns (ImportReport, {id: error or None})."""
    report = case.import_paths(paths, analyst=analyst, **import_options)
    return report, examine_many(case, [e.id for e in report.imported], analyst=analyst, progress=examine_progress)


def _latest_entry(case: Case, evidence_id: int):
    entries = [e for e in case.audit_entries([evidence_id]) if e.action == ACTION]
    return entries[-1] if entries else None


def load_examination(case: Case, evidence_id: int) -> Examination | None:
    """The latest stored examination of an item (hash-checked), or None if it was never examined.

    Raises ExaminationChanged if the file is missing or differs from its audit-logged hash."""
    entry = _latest_entry(case, evidence_id)
    if entry is None:
        return None
    path = case.path / entry.details["file"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExaminationChanged(f"the examination of evidence {evidence_id} ({entry.details['file']}) is missing; "
                                 "re-examine the item (`declip case examine`)") from exc
    sha = sha256_bytes(data)
    if sha != entry.details["sha256"]:
        raise ExaminationChanged(f"the examination of evidence {evidence_id} ({entry.details['file']}) changed "
                                 "after it was stored; re-examine the item (the altered file is then set aside "
                                 "for review)")
    return Examination(evidence_id, json.loads(data), path, sha)


def load_c2pa_manifest(case: Case, examination: Examination) -> str | None:
    """The stored C2PA manifest store JSON of an examination (hash-checked), or None."""
    rel, sha = examination.record.get("c2pa_manifest_file"), examination.record.get("c2pa_manifest_sha256")
    if not rel:
        return None
    data = (case.path / rel).read_bytes()
    if sha256_bytes(data) != sha:
        raise ExaminationChanged(f"the stored C2PA manifest {rel} changed after it was stored")
    return data.decode("utf-8")


def alert_summaries(case: Case) -> dict[int, dict[str, Any]]:
    """Per evidence id, from the audit log alone (no files read; for list badges):
    {alerts, warnings, codes, c2pa_state} of the latest examination, or {error} if it failed."""
    out: dict[int, dict[str, Any]] = {}
    for entry in case.audit_entries():
        if entry.evidence_id is None:
            continue
        if entry.action == ACTION:
            d = entry.details
            out[entry.evidence_id] = {"alerts": d.get("alert_count", len(d.get("alerts") or [])),
                                      "warnings": d.get("warning_count", 0), "codes": d.get("alerts") or [],
                                      "c2pa_state": d.get("c2pa_state")}
        elif entry.action == FAILED_ACTION:
            out[entry.evidence_id] = {"error": entry.details.get("error")}
    return out


def verify_examinations(case: Case) -> list[tuple[str, str]]:
    """[(file, problem)] for every logged examination whose files are missing or changed, and for
    examination files the audit log does not know (placed by hand, or left by a killed process)."""
    problems = []
    logged: set[str] = set()
    for entry in case.audit_entries():
        if entry.action != ACTION:
            continue
        for key, sha_key in (("file", "sha256"), ("c2pa_manifest_file", "c2pa_manifest_sha256")):
            rel = entry.details.get(key)
            if not rel:
                continue
            logged.add(rel)
            p = case.path / rel
            if not p.is_file():
                problems.append((rel, "missing"))
            elif sha256_file(p) != entry.details.get(sha_key):
                problems.append((rel, "changed after it was stored"))
    root = case.path / FORENSICS_DIR
    if root.is_dir():
        for p in sorted(root.glob("*/*.json")):
            rel = p.relative_to(case.path).as_posix()
            if rel not in logged:
                problems.append((rel, "not in the audit log (placed by hand, or left by an interrupted "
                                      "examination); it is never used"))
        for p in sorted(root.glob("*/*.altered-*")):
            problems.append((p.relative_to(case.path).as_posix(),
                             "an examination file that was changed after it was stored, set aside for review "
                             "when the item was examined again"))
    return problems
