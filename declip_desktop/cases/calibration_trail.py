"""The audit trail of calibration state: replay of its entries and comparison with its tables.

`cases.replay.replay` hands `evidence.role_changed`, `calibration.computed` and
`calibration.cleared` entries to `HANDLERS`; `cases.reconcile.compare` calls `compare` so that a
hand edit of `evidence_roles` or `calibrations` (a reference added or removed, a threshold
lowered, a calibration un-cleared) is named by `declip case verify`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from declip_desktop.cases.calibration import CALIBRATION_COLUMNS, JSON_COLUMNS
from declip_desktop.cases.records import Problem


def _rows(exp: Any, kind: str) -> dict[int, Any]:
    return exp.extra.setdefault(kind, {})


def _role_changed(exp: Any, src: Any, actor: str, obj: str, eid: Any, d: dict) -> None:
    from declip_desktop.cases.replay import Row

    if eid is None:
        return
    roles = _rows(exp, "evidence_roles")
    before = roles.get(int(eid))
    had = before.get("role") if before is not None else None
    if d.get("old") != had:
        exp.problems.append(Problem(
            "audit_replay", f"audit:{src.seq}",
            f"{exp.evidence_label(int(eid))}: the entry of {src.ts} (#{src.seq}) changed its role from "
            f"{d.get('old')!r}, but the trail before it set {had!r}; entries were removed or rewritten"))
    if d.get("new") is None:
        roles.pop(int(eid), None)
        return
    row = Row(created=src)
    row.set("evidence_id", int(eid), src)
    row.set("role", d.get("new"), src)
    row.set("set_by", d.get("set_by", actor), src)
    row.set("set_at", d.get("set_at", src.ts), src)
    roles[int(eid)] = row


def _computed(exp: Any, src: Any, actor: str, obj: str, eid: Any, d: dict) -> None:
    from declip_desktop.cases.replay import Row

    cal_id = d.get("calibration_id")
    if cal_id is None:
        return
    row = Row(created=src)
    for name in CALIBRATION_COLUMNS:
        if name in d:
            row.set(name, d[name], src)
    row.set("cleared_by", None, src)
    row.set("cleared_at", None, src)
    _rows(exp, "calibrations")[int(cal_id)] = row


def _cleared(exp: Any, src: Any, actor: str, obj: str, eid: Any, d: dict) -> None:
    row = _rows(exp, "calibrations").get(int(d.get("calibration_id", -1)))
    if row is None:
        exp.problems.append(Problem("audit_replay", f"audit:{src.seq}",
                                    f"the entry of {src.ts} (#{src.seq}) clears calibration "
                                    f"{d.get('calibration_id')}, which the trail never computed"))
        return
    row.set("cleared_by", d.get("cleared_by", actor), src)
    row.set("cleared_at", d.get("cleared_at", src.ts), src)


HANDLERS = {
    "evidence.role_changed": _role_changed,
    "calibration.computed": _computed,
    "calibration.cleared": _cleared,
}


def _table(conn: sqlite3.Connection, table: str, key: str) -> dict[int, dict] | None:
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if table not in present:
        return None
    cur = conn.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
    names = [c[0] for c in cur.description]
    return {int(r[names.index(key)]): dict(zip(names, r)) for r in cur}


def compare(conn: sqlite3.Connection, exp: Any, problems: list[Problem]) -> None:
    """Append a problem for every role or calibration row that differs from, lacks or is not in the trail."""
    from declip_desktop.cases.reconcile import _compare_row

    db_roles = _table(conn, "evidence_roles", "evidence_id")
    want_roles = exp.extra.get("evidence_roles", {})
    if db_roles is not None:
        for eid, want in want_roles.items():
            label = exp.evidence_label(eid)
            if eid not in db_roles:
                problems.append(Problem("record_missing", f"evidence:{eid}",
                                        f"{label}: marked {want.get('role')} at {want.created.ts} "
                                        f"(#{want.created.seq}) but the mark is missing from the database"))
            else:
                _compare_row(problems, f"evidence:{eid}", label, "role's ", db_roles[eid], want)
        for eid, row in db_roles.items():
            if eid not in want_roles:
                problems.append(Problem("record_unexplained", f"evidence:{eid}",
                                        f"{exp.evidence_label(eid)}: marked {row.get('role')} in the database, but "
                                        "no audit entry marked it (changed outside the application)"))
    db_cals = _table(conn, "calibrations", "id")
    want_cals = exp.extra.get("calibrations", {})
    if db_cals is None:
        return
    for cid, want in want_cals.items():
        label = f"calibration {cid} (model {str(want.get('model_sha256'))[:12]}…)"
        if cid not in db_cals:
            problems.append(Problem("record_missing", f"calibration:{cid}",
                                    f"{label}: computed at {want.created.ts} (#{want.created.seq}) but missing from "
                                    "the database (deleted outside the application)"))
        else:
            _compare_row(problems, f"calibration:{cid}", label, "", db_cals[cid], want, JSON_COLUMNS)
    for cid, row in db_cals.items():
        if cid not in want_cals:
            problems.append(Problem("record_unexplained", f"calibration:{cid}",
                                    f"calibration {cid}: a threshold of {row.get('pixel_threshold')} that no audit "
                                    "entry computed (added outside the application)"))
