"""Replay and comparison of stability checks (`cases.stability_store`) for `declip case verify`.

`stability.stored` entries rebuild the rows of `stability_checks` (`REPLAY_HANDLERS`, joined to
`cases.replay`; kept in `Expected.extra["stability_checks"]`); `compare_stability` names every row that differs from its entry, is missing,
or that no entry explains (`cases.reconcile`). Imports of replay/reconcile are deferred: those
modules import this one.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from declip_desktop.cases.records import Problem
from declip_desktop.cases.stability_store import ACTION, FIELDS, JSON_FIELDS


def _stored(exp: Any, src: Any, actor: str, obj: str, eid: Any, d: dict) -> None:
    from declip_desktop.cases.replay import Row

    if not obj.startswith("stability:") or eid is None:
        return
    try:
        check_id = int(obj.split(":", 1)[1])
    except ValueError:
        return
    row = Row(created=src)
    row.set("evidence_id", int(eid), src)
    row.set("created_by", actor, src)
    for name in FIELDS:
        if name in d:
            row.set(name, d[name], src)
    checks_of(exp)[check_id] = row


def checks_of(exp: Any) -> dict:
    """The stability-check rows the trail describes, kept in `Expected.extra["stability_checks"]`."""
    return exp.extra.setdefault("stability_checks", {})


REPLAY_HANDLERS = {ACTION: _stored}


def compare_stability(conn: sqlite3.Connection, exp: Any, present: set[str]) -> list[Problem]:
    from declip_desktop.cases.reconcile import _compare_row, _rows
    from declip_desktop.cases.replay import fmt

    problems: list[Problem] = []
    db_rows = {r["id"]: r for r in _rows(conn, "stability_checks", present)}
    expected = checks_of(exp)
    for cid, want in expected.items():
        eid = want.get("evidence_id")
        label = f"{exp.name_of(eid)} (evidence {eid}, stability check {cid})"
        row = db_rows.get(cid)
        if row is None:
            problems.append(Problem("record_missing", f"stability:{cid}",
                                    f"{label}: stored at {want.created.ts} (#{want.created.seq}) but missing from "
                                    "the database (deleted outside the application)"))
            continue
        _compare_row(problems, f"stability:{cid}", label, "stability check ", row, want, JSON_FIELDS)
    for cid, row in db_rows.items():
        if cid not in expected:
            eid = row.get("evidence_id")
            problems.append(Problem("record_unexplained", f"stability:{cid}",
                                    f"{exp.name_of(eid)} (evidence {eid}, stability check {cid}): a check at "
                                    f"threshold {fmt(row.get('threshold'))} that no audit entry stored (added "
                                    "outside the application)"))
    return problems


__all__ = ["REPLAY_HANDLERS", "compare_stability"]
