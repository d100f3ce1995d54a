"""Replay of the annotation entries (`cases/annotations.py`) and their comparison with the
`annotations` table: hooked into `cases/replay.py` (HANDLERS) and `cases/reconcile.py`
(`compare_annotations`), so `declip case verify` names a hand-edited, deleted or added row.

A row is described by its item's file name and the annotation's label, e.g.
"cat.jpg (evidence 2, annotation 3 'cloned sky'): label 'nothing' in the database, 'cloned sky'
in the audit entry of … (#12)".
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from declip_desktop.cases.records import Problem
from declip_desktop.cases.replay import Expected, Row, Source, field_label, fmt, same

def expected(exp: Expected) -> dict[int, Row]:
    """The annotation rows the trail describes, kept in `Expected.extra["annotations"]`."""
    return exp.extra.setdefault("annotations", {})


#: Columns the entries set; an unknown column (a newer version's) is never compared.
_ADDED_FIELDS = ("kind", "geometry", "label", "note", "author", "created_at")


def _annotation_id(d: dict) -> int | None:
    try:
        return int(d["annotation_id"])
    except (KeyError, TypeError, ValueError):
        return None


def _added(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    aid = _annotation_id(d)
    if aid is None or eid is None:
        return
    row = Row(created=src)
    row.set("evidence_id", int(eid), src)
    for name in _ADDED_FIELDS:
        if name in d:
            row.set(name, d[name], src)
    for name in ("edited_by", "edited_at", "deleted_by", "deleted_at"):
        row.set(name, None, src)
    expected(exp)[aid] = row


def _known(exp: Expected, src: Source, aid: int | None) -> Row | None:
    if aid is None:
        return None
    row = expected(exp).get(aid)
    if row is None:
        exp.problems.append(Problem(
            "audit_replay", f"audit:{src.seq}",
            f"annotation {aid}: the entry of {src.ts} (#{src.seq}) changes an annotation the trail never added; "
            "entries were removed or rewritten"))
    return row


def _relabelled(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    aid = _annotation_id(d)
    row = _known(exp, src, aid)
    if row is None:
        return
    for name, value in (d.get("old") or {}).items():
        if name in row.fields and not same(row.get(name), value):
            exp.problems.append(Problem(
                "audit_replay", f"audit:{src.seq}",
                f"annotation {aid}: the entry of {src.ts} (#{src.seq}) changed its {field_label(name)} from "
                f"{fmt(value)}, but the trail before it set {fmt(row.get(name))} (#{row.fields[name].source.seq}); "
                "entries were removed or rewritten"))
    for name, value in (d.get("new") or {}).items():
        row.set(name, value, src)
    row.set("edited_by", d.get("edited_by", actor), src)
    if "edited_at" in d:
        row.set("edited_at", d["edited_at"], src)


def _deleted(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    row = _known(exp, src, _annotation_id(d))
    if row is not None:
        row.set("deleted_by", d.get("deleted_by", actor), src)
        row.set("deleted_at", d.get("deleted_at", src.ts), src)


def _restored(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    row = _known(exp, src, _annotation_id(d))
    if row is not None:
        row.set("deleted_by", None, src)
        row.set("deleted_at", None, src)


HANDLERS = {
    "annotation.added": _added,
    "annotation.relabelled": _relabelled,
    "annotation.deleted": _deleted,
    "annotation.restored": _restored,
}


def _label(exp: Expected, aid: int, evidence_id: Any, label: Any) -> str:
    return f"{exp.name_of(evidence_id)} (evidence {evidence_id}, annotation {aid} {fmt(label)})"


def compare_annotations(conn: sqlite3.Connection, exp: Expected, present: set[str]) -> list[Problem]:
    """Every difference between the `annotations` table and the replayed entries."""
    problems: list[Problem] = []
    db_rows: dict[int, dict] = {}
    if "annotations" in present:
        cur = conn.execute("SELECT * FROM annotations ORDER BY id")
        names = [c[0] for c in cur.description]
        db_rows = {r[0]: dict(zip(names, r)) for r in cur}
    for aid, want in expected(exp).items():
        row = db_rows.get(aid)
        label = _label(exp, aid, want.get("evidence_id"), want.get("label"))
        if row is None:
            problems.append(Problem("record_missing", f"annotation:{aid}",
                                    f"{label}: drawn at {want.created.ts} (#{want.created.seq}) but missing from the "
                                    "database (deleted outside the application)"))
            continue
        for name, value in want.fields.items():
            if name not in row:
                continue
            have = row[name]
            if name == "geometry" and isinstance(have, str):
                try:
                    have = json.loads(have)
                except ValueError:
                    pass
            if not same(have, value.value):
                problems.append(Problem(
                    "record_changed", f"annotation:{aid}",
                    f"{label}: {field_label(name)} {fmt(have, value.value)} in the database, "
                    f"{fmt(value.value, have)} in the audit entry of {value.source.ts} (#{value.source.seq})"))
    for aid, row in db_rows.items():
        if aid not in expected(exp):
            problems.append(Problem("record_unexplained", f"annotation:{aid}",
                                    f"{_label(exp, aid, row.get('evidence_id'), row.get('label'))}: in the database "
                                    "but never drawn according to the audit trail (added outside the application)"))
    return problems
