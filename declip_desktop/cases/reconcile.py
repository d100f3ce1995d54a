"""Compare the state the audit trail describes (cases/replay.py) with the database's tables.

Every row that differs, is missing, or that no entry explains becomes a named problem that
names the item by its file name and quotes both values and the entry they come from, e.g.
"cat.jpg (evidence 2, analysis 1): analysis score 0.010 in the database, 0.982 in the audit
entry of 2026-12-01T20:25:11.163+01:00 (#7)". Columns the replay does not know are not
compared, so a newer column is never a false alarm.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from declip_desktop.cases.annotation_replay import compare_annotations
from declip_desktop.cases.audit import canonical
from declip_desktop.cases.records import Problem
from declip_desktop.cases.stability_records import compare_stability
from declip_desktop.cases.replay import TRANSIENT_STATUS, Expected, Row, Value, field_label, fmt, norm, parse_time, same


def _differs(db_value: Any, want: Value) -> bool:
    if want.tolerance_s is None:
        return not same(db_value, want.value)
    a, b = parse_time(db_value), parse_time(want.value)
    return a is None or b is None or abs((a - b).total_seconds()) > want.tolerance_s


def _compare_row(problems: list[Problem], obj: str, label: str, what: str, db_row: dict, want: Row,
                 json_columns: tuple[str, ...] = ()) -> None:
    for name, value in want.fields.items():
        if name.startswith("_") or name not in db_row:
            continue
        have = db_row[name]
        if name in json_columns and isinstance(have, str):
            try:
                have = json.loads(have)
            except ValueError:
                pass
        if name == "status" and have == TRANSIENT_STATUS and value.value != "skipped":
            continue  # being analysed right now (or by a run that stopped; opening the case requeues it)
        if _differs(have, value):
            approx = " (an older entry without this value: checked to within a minute of its time)" \
                if value.tolerance_s else ""
            problems.append(Problem(
                "record_changed", obj,
                f"{label}: {what}{field_label(name)} {fmt(have, value.value)} in the database, "
                f"{fmt(value.value, have)} in the audit entry of {value.source.ts} (#{value.source.seq}){approx}"))


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _rows(conn: sqlite3.Connection, table: str, tables: set[str], order: str = "id") -> list[dict]:
    if table not in tables:
        return []
    cur = conn.execute(f"SELECT * FROM {table} ORDER BY {order}")  # noqa: S608 - fixed table names
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r)) for r in cur]


def compare(conn: sqlite3.Connection, exp: Expected) -> list[Problem]:
    """Every difference between the tables and the replayed trail, as named problems."""
    problems = list(exp.problems)
    present = tables(conn)

    # case_info and the case format
    info_rows = _rows(conn, "case_info", present)
    if exp.case_info is not None:
        if not info_rows:
            problems.append(Problem("record_missing", "case", "the case record is missing from the database"))
        else:
            number = info_rows[0].get("number")
            _compare_row(problems, "case", f"case {exp.case_info.get('number', number)}", "", info_rows[0],
                         exp.case_info)
    elif info_rows:
        problems.append(Problem("record_unexplained", "case", "the case record has no creation entry in the trail"))
    if exp.schema_version is not None:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version != exp.schema_version.value:
            src = exp.schema_version.source
            problems.append(Problem("record_changed", "case",
                                    f"case format {version} in the database, {exp.schema_version.value} in the "
                                    f"audit entry of {src.ts} (#{src.seq})"))

    # evidence
    db_evidence = {r["id"]: r for r in _rows(conn, "evidence", present)}
    for eid, want in exp.evidence.items():
        row = db_evidence.get(eid)
        label = exp.evidence_label(eid)
        if row is None:
            problems.append(Problem("record_missing", f"evidence:{eid}",
                                    f"{label}: imported at {want.created.ts} (#{want.created.seq}) but missing "
                                    "from the database (deleted outside the application)"))
        else:
            _compare_row(problems, f"evidence:{eid}", label, "", row, want, ("metadata",))
            _compare_metadata(problems, f"evidence:{eid}", label, row, want)
    for eid, row in db_evidence.items():
        if eid not in exp.evidence:
            problems.append(Problem("record_unexplained", f"evidence:{eid}",
                                    f"{row.get('original_name')} (evidence {eid}): in the database but never "
                                    "imported according to the audit trail (added outside the application)"))

    # analyses
    db_analyses = {r["id"]: r for r in _rows(conn, "analyses", present)}
    for aid, want in exp.analyses.items():
        eid = want.get("evidence_id")
        label = f"{exp.name_of(eid)} (evidence {eid}, analysis {aid})"
        row = db_analyses.get(aid)
        if row is None:
            problems.append(Problem("record_missing", f"analysis:{aid}",
                                    f"{label}: stored at {want.created.ts} (#{want.created.seq}) but missing from "
                                    "the database (deleted outside the application)"))
        else:
            _compare_row(problems, f"analysis:{aid}", label, "analysis ", row, want, ("parameters",))
    for aid, row in db_analyses.items():
        if aid not in exp.analyses:
            eid = row.get("evidence_id")
            problems.append(Problem("record_unexplained", f"analysis:{aid}",
                                    f"{exp.name_of(eid)} (evidence {eid}, analysis {aid}): a result with score "
                                    f"{fmt(row.get('score'))} that no audit entry stored (added outside the "
                                    "application)"))

    _compare_keyed(problems, exp.rejections, _rows(conn, "rejections", present), "rejection",
                   lambda r: f"rejected file {r.get('path')}")
    _compare_keyed(problems, exp.reports, _rows(conn, "reports", present), "report",
                   lambda r: f"report {r.get('path')}")

    # settings
    db_settings = {r["key"]: r["value"] for r in _rows(conn, "settings", present, order="key")}
    for key, want in exp.settings.items():
        if key not in db_settings:
            problems.append(Problem("record_missing", f"setting:{key}",
                                    f"setting {key}: set to {fmt(want.value)} at {want.source.ts} "
                                    f"(#{want.source.seq}) but missing from the database"))
            continue
        try:
            have = json.loads(db_settings[key])
        except ValueError:
            have = db_settings[key]
        if not same(norm(have), want.value):
            problems.append(Problem("record_changed", f"setting:{key}",
                                    f"setting {key}: {fmt(have)} in the database, {fmt(want.value)} in the audit "
                                    f"entry of {want.source.ts} (#{want.source.seq})"))
    for key in db_settings.keys() - exp.settings.keys():
        problems.append(Problem("record_unexplained", f"setting:{key}",
                                f"setting {key}: in the database but never set according to the audit trail"))

    db_signers = {r["fingerprint"]: r for r in _rows(conn, "signers", present, order="fingerprint")}
    for fp, want in exp.signers.items():
        row = db_signers.get(fp)
        label = f"key {want.get('name')} ({fp[:16]})"
        if row is None:
            problems.append(Problem("record_missing", f"key:{fp[:16]}", f"{label}: recorded at {want.created.ts} "
                                    f"(#{want.created.seq}) but missing from the database"))
        else:
            _compare_row(problems, f"key:{fp[:16]}", label, "", row, want)
    for fp, row in db_signers.items():
        if fp not in exp.signers:
            problems.append(Problem("record_unexplained", f"key:{fp[:16]}",
                                    f"key {row.get('name')} ({fp[:16]}): in the database but never recorded in "
                                    "the audit trail"))
    from declip_desktop.cases.calibration_trail import compare as compare_calibration

    compare_calibration(conn, exp, problems)  # evidence roles and calibrations
    problems.extend(compare_annotations(conn, exp, present))
    from declip_desktop.cases.tags_replay import compare_tags

    problems.extend(compare_tags(conn, exp, present))  # the analyst's tags and bookmarks
    problems += compare_stability(conn, exp, present)
    return problems


def _compare_metadata(problems: list[Problem], obj: str, label: str, db_row: dict, want: Row) -> None:
    recorded = want.fields.get("_metadata_sha256")
    if recorded is None or "metadata" not in db_row:
        return
    try:
        have = hashlib.sha256(canonical(json.loads(db_row["metadata"] or "{}")).encode("utf-8")).hexdigest()
    except ValueError:
        have = "unreadable"
    if have != recorded.value:
        problems.append(Problem("record_changed", obj,
                                f"{label}: the image metadata (EXIF etc.) in the database is not what was read at "
                                f"import (audit entry of {recorded.source.ts}, #{recorded.source.seq})"))


def _compare_keyed(problems: list[Problem], expected: dict[Any, Row], db_rows: list[dict], kind: str,
                   describe) -> None:  # noqa: ANN001
    """Rows whose entries recorded their id match by id; older entries match by content, in order."""
    by_id = {r["id"]: r for r in db_rows}
    matched: set[int] = set()
    legacy = [(k, w) for k, w in expected.items() if isinstance(k, tuple)]
    for rid, want in expected.items():
        if isinstance(rid, tuple):
            continue
        row = by_id.get(rid)
        label = describe({"path": want.get("path")}) + f" ({kind} {rid})"
        if row is None:
            problems.append(Problem("record_missing", f"{kind}:{rid}", f"{label}: recorded at {want.created.ts} "
                                    f"(#{want.created.seq}) but missing from the database (deleted outside the "
                                    "application)"))
            continue
        matched.add(rid)
        _compare_row(problems, f"{kind}:{rid}", label, "", row, want)
    for _key, want in legacy:
        candidates = [r for r in db_rows if r["id"] not in matched and r.get("path") == want.get("path")]
        label = describe({"path": want.get("path")})
        if not candidates:
            problems.append(Problem("record_missing", f"{kind}:{want.get('path')}",
                                    f"{label}: recorded at {want.created.ts} (#{want.created.seq}) but missing "
                                    "from the database (deleted outside the application)"))
            continue
        row = candidates[0]
        matched.add(row["id"])
        _compare_row(problems, f"{kind}:{row['id']}", f"{label} ({kind} {row['id']})", "", row, want)
    for row in db_rows:
        if row["id"] not in matched:
            problems.append(Problem("record_unexplained", f"{kind}:{row['id']}",
                                    f"{describe(row)} ({kind} {row['id']}): in the database but not in the audit "
                                    "trail (added outside the application)"))


def legacy_notices(exp: Expected) -> list[Problem]:
    """One notice per kind of old entry: which values it does not record (and so are not checked)."""
    out = []
    for action, (count, names) in sorted(exp.legacy.items()):
        listed = ", ".join(field_label(n) for n in sorted(names))
        out.append(Problem("legacy_entry", action,
                           f"legacy entry, values not recorded: {count} {action} entr{'y' if count == 1 else 'ies'} "
                           f"written by an older DeCLIP Desktop do{'es' if count == 1 else ''} not record the {listed}; those values are not "
                           "checked against the trail (times: to within a minute of the entry)"))
    return out
