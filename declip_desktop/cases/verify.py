"""`Case.verify()`: re-check everything a court could ask about.

- every evidence file exists and still has the SHA-256 recorded at import;
- every result map exists and still has its recorded SHA-256;
- every registered report still has its recorded SHA-256;
- no file in evidence/ or results/ that the database does not know;
- SQLite's own integrity check;
- the audit chain (edits, insertions, deletions, truncation), and that the hashes in
  the evidence and analysis rows agree with the audit entries written when they were
  created (so changing a row *and* its file is caught too).
"""

from __future__ import annotations

import json
from pathlib import Path

from declip_desktop.cases import audit
from declip_desktop.cases.files import TMP_DIR
from declip_desktop.cases.records import Problem, VerifyReport
from declip_desktop.common.hashing import sha256_file

# Files the application itself may leave in results/: derived previews, not results.
_DERIVED_DIRS = {"thumbnails"}


def _hash(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except FileNotFoundError:
        return None


def verify_case(case) -> VerifyReport:  # noqa: ANN001 - Case, imported lazily to avoid a cycle
    store = case._store
    conn = store.conn
    root: Path = case.path
    problems: list[Problem] = []

    for line in case.integrity_check():
        problems.append(Problem("database_integrity", "case.sqlite", f"SQLite integrity check: {line}"))

    chain_problems, walked, head = audit.verify_chain(conn)
    problems.extend(chain_problems)

    # What the audit trail says each row should hold (first entry wins: it was written at creation).
    imported: dict[int, dict] = {}
    stored_maps: dict[int, dict] = {}
    for evidence_id, obj, action, details in conn.execute(
        "SELECT evidence_id, object, action, details FROM audit "
        "WHERE action IN ('evidence.imported', 'analysis.stored') ORDER BY seq"
    ):
        try:
            d = json.loads(details)
        except ValueError:
            continue  # the chain walk above already reports an unreadable entry as edited
        if action == "evidence.imported" and evidence_id is not None:
            imported.setdefault(int(evidence_id), d)
        elif action == "analysis.stored" and obj.startswith("analysis:"):
            stored_maps.setdefault(int(obj.split(":", 1)[1]), d)

    known_evidence: set[str] = set()
    evidence_checked = 0
    for ev_id, stored_name, sha in conn.execute("SELECT id, stored_name, sha256 FROM evidence ORDER BY id"):
        evidence_checked += 1
        rel = f"evidence/{stored_name}"
        known_evidence.add(stored_name)
        obj = f"evidence:{ev_id}"
        logged = imported.get(ev_id)
        if logged is None:
            problems.append(Problem("record_mismatch", obj, f"{rel} has no import entry in the audit trail "
                                                              "(added to the database outside the application)"))
        elif logged.get("sha256") != sha or logged.get("stored_name") != stored_name:
            problems.append(Problem("record_mismatch", obj, f"the hash recorded for {rel} differs from the one "
                                                              "logged at import (database edited)"))
        actual = _hash(root / rel)
        if actual is None:
            problems.append(Problem("evidence_missing", obj, f"{rel} is missing from the case folder"))
        elif actual != sha:
            problems.append(Problem("evidence_changed", obj, f"{rel} changed after import: SHA-256 is now "
                                                               f"{actual}, was {sha}"))

    known_maps: set[str] = set()
    maps_checked = 0
    for a_id, ev_id, map_file, map_sha in conn.execute(
        "SELECT id, evidence_id, map_file, map_sha256 FROM analyses WHERE map_file IS NOT NULL ORDER BY id"
    ):
        maps_checked += 1
        known_maps.add(map_file)
        obj = f"analysis:{a_id}"
        logged = stored_maps.get(a_id)
        if logged is None or logged.get("map_sha256") != map_sha or logged.get("map_file") != map_file:
            problems.append(Problem("record_mismatch", obj, f"the map hash recorded for {map_file} differs from "
                                                              "the one logged when it was stored (database edited)"))
        actual = _hash(root / map_file)
        if actual is None:
            problems.append(Problem("map_missing", obj, f"{map_file} (result of evidence {ev_id}) is missing"))
        elif actual != map_sha:
            problems.append(Problem("map_changed", obj, f"{map_file} (result of evidence {ev_id}) changed after "
                                                          "it was stored"))

    reports_checked = 0
    for rep_id, path, sha in conn.execute("SELECT id, path, sha256 FROM reports ORDER BY id"):
        reports_checked += 1
        p = Path(path)
        full = p if p.is_absolute() else root / p
        actual = _hash(full)
        if actual is None:
            problems.append(Problem("report_missing", f"report:{rep_id}", f"registered report {path} is missing"))
        elif actual != sha:
            problems.append(Problem("report_changed", f"report:{rep_id}",
                                    f"registered report {path} changed after it was registered"))

    evidence_dir = root / "evidence"
    if evidence_dir.is_dir():
        for p in sorted(evidence_dir.rglob("*")):
            if p.is_file() and str(p.relative_to(evidence_dir)) not in known_evidence:
                problems.append(Problem("unknown_file", str(p.relative_to(root)),
                                        "file in evidence/ that the case database does not list"))
    results_dir = root / "results"
    if results_dir.is_dir():
        for p in sorted(results_dir.rglob("*")):
            rel_parts = p.relative_to(results_dir).parts
            if not p.is_file() or rel_parts[0] in _DERIVED_DIRS:
                continue
            if str(p.relative_to(root).as_posix()) not in known_maps:
                problems.append(Problem("unknown_file", str(p.relative_to(root)),
                                        "file in results/ that the case database does not list"))
    # Staged files for committed rows mean a program stopped mid-import and the case was
    # not reopened since; opening it finishes the job.
    tmp = root / TMP_DIR
    if tmp.is_dir():
        for p in sorted(tmp.glob("*.staged")):
            name = p.name[: p.name.rindex("~")] if "~" in p.name else ""
            if name in known_evidence or any(m.endswith("/" + name) for m in known_maps):
                problems.append(Problem("interrupted", str(p.relative_to(root)),
                                        "an interrupted import or analysis left this file; open the case "
                                        "(e.g. `declip case status`) to finish it, then verify again"))

    return VerifyReport(ok=not problems, problems=problems, evidence_checked=evidence_checked,
                        maps_checked=maps_checked, reports_checked=reports_checked, audit_entries=walked,
                        audit_head=head)
