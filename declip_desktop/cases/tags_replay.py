"""Replay of the tag entries (`cases/tags.py`, action `evidence.tags_changed`) and their comparison
with the `evidence_tags` and `bookmarks` tables: hooked into `cases/replay.py` (HANDLERS) and
`cases/reconcile.py` (`compare_tags`), so `declip case verify` names a tag or bookmark added,
removed or edited by hand, e.g. "dog.png (evidence 2): tag 'cleared': in the database but never
set according to the audit trail".

Each entry holds the item's whole state before and after (`old`/`new`); rows the entry adds carry
its analyst and time, rows it keeps keep theirs.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from declip_desktop.cases.records import Problem
from declip_desktop.cases.replay import Expected, Row, Source, fmt

TAGS_KEY, BOOKMARKS_KEY = "evidence_tags", "bookmarks"  # Expected.extra keys = the tables' names


def _tables(exp: Expected) -> tuple[dict, dict]:
    return exp.extra.setdefault(TAGS_KEY, {}), exp.extra.setdefault(BOOKMARKS_KEY, {})


def _added_row(d: dict, actor: str, src: Source) -> Row:
    row = Row(created=src)
    row.set("added_by", d.get("changed_by", actor), src)
    if "changed_at" in d:
        row.set("added_at", d["changed_at"], src)
    else:
        row.set("added_at", src.ts, src, tolerance_s=60.0)
    return row


def _tags_changed(exp: Expected, src: Source, actor: str, obj: str, eid: Any, d: dict) -> None:
    if eid is None or not isinstance(d.get("new"), dict):
        return
    tags, bookmarks = _tables(exp)
    eid = int(eid)
    had = sorted(t for (e, t) in tags if e == eid)
    old = d.get("old") if isinstance(d.get("old"), dict) else {}
    if sorted(old.get("tags") or []) != had or bool(old.get("bookmarked")) != (eid in bookmarks):
        exp.problems.append(Problem(
            "audit_replay", f"audit:{src.seq}",
            f"{exp.evidence_label(eid)}: the tag entry of {src.ts} (#{src.seq}) changed tags "
            f"{fmt(old.get('tags') or [])} (bookmarked {bool(old.get('bookmarked'))}), but the trail before it "
            f"set {fmt(had)} (bookmarked {eid in bookmarks}); entries were removed or rewritten"))
    new_tags = [str(t) for t in d["new"].get("tags") or []]
    for tag in had:
        if tag not in new_tags:
            del tags[(eid, tag)]
    for tag in new_tags:
        if (eid, tag) not in tags:
            tags[(eid, tag)] = _added_row(d, actor, src)
    if d["new"].get("bookmarked") and eid not in bookmarks:
        bookmarks[eid] = _added_row(d, actor, src)
    elif not d["new"].get("bookmarked"):
        bookmarks.pop(eid, None)


HANDLERS = {"evidence.tags_changed": _tags_changed}


def compare_tags(conn: sqlite3.Connection, exp: Expected, present: set[str]) -> list[Problem]:
    """Every tag and bookmark row the entries explain, with its analyst and time; and no other."""
    from declip_desktop.cases.reconcile import _compare_row, _rows

    problems: list[Problem] = []
    tags, bookmarks = _tables(exp)
    for table, expected, key_of, what in (
            (TAGS_KEY, tags, lambda r: (r["evidence_id"], r["tag"]), "tag"),
            (BOOKMARKS_KEY, bookmarks, lambda r: r["evidence_id"], "bookmark")):
        if table not in present:
            continue  # an older case opened read-only: never migrated, so it has no tags
        db_rows = {key_of(r): r for r in _rows(conn, table, present, order="evidence_id")}

        def label(key: Any, what: str = what) -> str:
            eid = key[0] if isinstance(key, tuple) else key
            named = f" {key[1]!r}" if isinstance(key, tuple) else ""
            return f"{exp.evidence_label(eid)}: {what}{named}"

        for key, want in expected.items():
            obj = f"evidence:{key[0] if isinstance(key, tuple) else key}"
            row = db_rows.get(key)
            if row is None:
                problems.append(Problem("record_missing", obj, f"{label(key)} set at {want.created.ts} "
                                        f"(#{want.created.seq}) but missing from the database (removed outside "
                                        "the application)"))
            else:
                _compare_row(problems, obj, label(key), "", row, want)
        for key in db_rows.keys() - expected.keys():
            obj = f"evidence:{key[0] if isinstance(key, tuple) else key}"
            problems.append(Problem("record_unexplained", obj, f"{label(key)}: in the database but never set "
                                    "according to the audit trail (added outside the application)"))
    return problems


__all__ = ["HANDLERS", "compare_tags"]
