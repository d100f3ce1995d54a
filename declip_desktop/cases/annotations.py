"""Analyst annotations: a box or a lasso drawn on one evidence item, with a label and a note.

An annotation is the analyst's statement about a part of the image ("cloned sky", "edge of
the inpainted area"), kept beside the model's regions and printed in the report. Geometry is in
the evidence image's own pixels (`common.shapes`), checked against the size recorded at import.

Every change is one audit entry carrying every value it set, in the same transaction as the
row it writes (`cases/annotation_replay.py` replays them, `case verify` compares):

- `annotation.added`      the whole record (id, kind, geometry, label, note, author, time);
- `annotation.relabelled` old and new label and note, who and when;
- `annotation.deleted`    who and when. The row stays, marked deleted (nothing of the record
                          is erased, and an id is never reused);
- `annotation.restored`   undo of a delete: the mark is cleared again.

An item whose file is missing from the case folder, or no longer has its imported size, cannot
be annotated (a statement about the image must be about the imported image).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from declip_desktop.cases import audit
from declip_desktop.cases.errors import CaseError
from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.shapes import KINDS, MapStats, Shape, ShapeError, check_shape, map_stats
from declip_desktop.common.text import unsafe_characters

MAX_LABEL_CHARS = 200
MAX_NOTE_CHARS = 4000


class AnnotationError(CaseError):
    """An annotation could not be added, changed or found; nothing was changed."""


@dataclass(frozen=True)
class Annotation:
    id: int
    evidence_id: int
    kind: str  # "box" | "lasso"
    geometry: dict  # {"box": [x, y, w, h]} | {"points": [[x, y], …]} in image pixels
    label: str
    note: str
    author: str
    created_at: str
    edited_by: str | None = None
    edited_at: str | None = None
    deleted_by: str | None = None
    deleted_at: str | None = None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def shape(self) -> Shape:
        key = "box" if self.kind == "box" else "points"
        values = self.geometry.get(key) or []
        if self.kind == "box":
            return Shape("box", box=tuple(int(v) for v in values))
        return Shape("lasso", points=tuple((float(x), float(y)) for x, y in values))

    def as_dict(self) -> dict[str, Any]:
        x, y, w, h = self.shape.bbox()
        return {"id": self.id, "evidence_id": self.evidence_id, "kind": self.kind, "geometry": self.geometry,
                "bbox": {"x": x, "y": y, "width": w, "height": h}, "area_px": round(self.shape.area_px(), 2),
                "label": self.label, "note": self.note, "author": self.author, "created_at": self.created_at,
                "edited_by": self.edited_by, "edited_at": self.edited_at,
                "deleted_by": self.deleted_by, "deleted_at": self.deleted_at}


def _row(row: dict[str, Any]) -> Annotation:
    try:
        geometry = json.loads(row["geometry"] or "{}")
    except ValueError:
        geometry = {}  # edited by hand: verify names it; the list still opens
    return Annotation(id=row["id"], evidence_id=row["evidence_id"], kind=row["kind"], geometry=geometry,
                      label=row["label"] or "", note=row["note"] or "", author=row["author"] or "",
                      created_at=row["created_at"], edited_by=row["edited_by"], edited_at=row["edited_at"],
                      deleted_by=row["deleted_by"], deleted_at=row["deleted_at"])


def check_label(label: Any, what: str = "label") -> str:
    if not isinstance(label, str):
        raise AnnotationError(f"the annotation's {what} must be text, not {type(label).__name__}.")
    text = label.replace("\r\n", "\n").strip()  # a note pasted from a Windows program keeps its lines
    limit = MAX_LABEL_CHARS if what == "label" else MAX_NOTE_CHARS
    if what == "label" and not text:
        raise AnnotationError("an annotation needs a label (what the analyst sees there, e.g. \"cloned area\").")
    if len(text) > limit:
        raise AnnotationError(f"the annotation's {what} is {len(text)} characters long; the limit is {limit}. "
                              "Shorten it (a longer text belongs in the item's notes).")
    # A label is one line; a note may have line breaks and tabs. Bidi controls and C1/DEL are
    # refused too: printed in the report they would reorder or hide what the analyst wrote.
    unsafe = unsafe_characters(text, "" if what == "label" else "\n\t")
    if unsafe:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in unsafe[:5])
        raise AnnotationError(f"the annotation's {what} contains control characters ({shown}: line breaks, tabs, "
                              "escape or text-direction controls"
                              + (" are not allowed in a label" if what == "label" else "") + "). Remove them.")
    return text


def _intact_evidence(case: Any, evidence_id: int, hash_check: bool = False) -> Any:
    """The evidence record, if its file is present at its imported size (and, with `hash_check`,
    still has its imported SHA-256: the command line checks it; the GUI hashes what it shows)."""
    try:
        ev = case.get_evidence(int(evidence_id))
    except CaseError:
        raise AnnotationError(f"no evidence with id {evidence_id} in this case; nothing was annotated. "
                              "`declip case status DIR` lists the items.") from None
    path = case.evidence_file(ev)
    try:
        size = path.stat().st_size
    except OSError:
        raise AnnotationError(f"{ev.original_name} (evidence {ev.id}): its file is missing from the case folder, "
                              "so it cannot be annotated. Restore the file, then run `declip case verify`.") from None
    if size != ev.size:
        raise AnnotationError(f"{ev.original_name} (evidence {ev.id}): its file changed since import ({size:,} bytes, "
                              f"{ev.size:,} at import), so it cannot be annotated. Restore the imported file, "
                              "then run `declip case verify`.")
    if hash_check and sha256_file(path) != ev.sha256:
        raise AnnotationError(f"{ev.original_name} (evidence {ev.id}): its file no longer has the SHA-256 recorded at "
                              "import, so it cannot be annotated. Restore the imported file, then run "
                              "`declip case verify`.")
    return ev


def annotations(case: Any, evidence_id: int | None = None, include_deleted: bool = False) -> list[Annotation]:
    """The annotations of one item (or of the case), in the order they were drawn."""
    where, params = [], []
    if evidence_id is not None:
        where.append("evidence_id = ?")
        params.append(int(evidence_id))
    if not include_deleted:
        where.append("deleted_at IS NULL")
    sql = "SELECT * FROM annotations" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
    if case._store.scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'annotations'") is None:
        return []  # an older case opened read-only (not migrated): it has none
    return [_row(r) for r in case._store.query(sql, tuple(params))]


def get_annotation(case: Any, annotation_id: int) -> Annotation:
    row = case._store.one("SELECT * FROM annotations WHERE id = ?", (int(annotation_id),))
    if row is None:
        raise AnnotationError(f"no annotation with id {annotation_id} in this case. "
                              "`declip case annotate DIR EVIDENCE` lists an item's annotations.")
    return _row(row)


def add_annotation(case: Any, evidence_id: int, kind: str, geometry: Any, label: str, note: str = "",
                   analyst: str | None = None, hash_check: bool = False) -> Annotation:
    """Store a new annotation (one `annotation.added` entry). Raises AnnotationError with what to fix."""
    label = check_label(label)
    note = check_label(note or "", "note")
    ev = _intact_evidence(case, evidence_id, hash_check)
    try:
        shape = check_shape(kind, geometry, ev.width, ev.height)
    except ShapeError as exc:
        raise AnnotationError(f"{ev.original_name} (evidence {ev.id}): {exc} Nothing was annotated.") from None
    stored = shape.geometry()
    with case._write() as conn:
        actor = case._actor(analyst, conn)
        created_at = audit.now_iso()
        cur = conn.execute(
            "INSERT INTO annotations (evidence_id, kind, geometry, label, note, author, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ev.id, kind, audit.canonical(stored), label, note, actor, created_at))
        annotation_id = int(cur.lastrowid)
        audit.append(conn, actor, "annotation.added", f"annotation:{annotation_id}",
                     {"annotation_id": annotation_id, "kind": kind, "geometry": stored, "label": label, "note": note,
                      "author": actor, "created_at": created_at, "image_size": [ev.width, ev.height]}, ev.id)
    return get_annotation(case, annotation_id)


def _live(conn: Any, annotation_id: int, deleted: bool = False) -> dict[str, Any]:
    cur = conn.execute("SELECT * FROM annotations WHERE id = ?", (int(annotation_id),))
    names = [c[0] for c in cur.description]
    found = cur.fetchone()
    if found is None:
        raise AnnotationError(f"no annotation with id {annotation_id} in this case; nothing was changed.")
    row = dict(zip(names, found))
    if deleted != (row["deleted_at"] is not None):
        state = "is not deleted" if deleted else f"was deleted by {row['deleted_by']} at {row['deleted_at']}"
        raise AnnotationError(f"annotation {annotation_id} ({row['label']!r}) {state}; nothing was changed.")
    return row


def relabel_annotation(case: Any, annotation_id: int, label: str | None = None, note: str | None = None,
                       analyst: str | None = None, hash_check: bool = False) -> Annotation:
    """Change the label and/or note (one `annotation.relabelled` entry with old and new values)."""
    new: dict[str, str] = {}
    if label is not None:
        new["label"] = check_label(label)
    if note is not None:
        new["note"] = check_label(note, "note")
    if not new:
        raise AnnotationError("give a new label or note; nothing was changed.")
    current = get_annotation(case, annotation_id)
    _intact_evidence(case, current.evidence_id, hash_check)
    with case._write() as conn:
        row = _live(conn, annotation_id)
        old = {k: row[k] or "" for k in new}
        if old == new:
            return _row(row)
        actor = case._actor(analyst, conn)
        edited_at = audit.now_iso()
        conn.execute(f"UPDATE annotations SET {', '.join(f'{k} = ?' for k in new)}, edited_by = ?, edited_at = ? "
                     "WHERE id = ?", (*new.values(), actor, edited_at, int(annotation_id)))
        audit.append(conn, actor, "annotation.relabelled", f"annotation:{int(annotation_id)}",
                     {"annotation_id": int(annotation_id), "old": old, "new": new, "edited_by": actor,
                      "edited_at": edited_at}, row["evidence_id"])
    return get_annotation(case, annotation_id)


def delete_annotation(case: Any, annotation_id: int, analyst: str | None = None,
                      hash_check: bool = False) -> Annotation:
    """Mark an annotation deleted (one `annotation.deleted` entry); the row and its history stay."""
    return _set_deleted(case, annotation_id, True, analyst, hash_check)


def restore_annotation(case: Any, annotation_id: int, analyst: str | None = None) -> Annotation:
    """Undo a delete (one `annotation.restored` entry)."""
    return _set_deleted(case, annotation_id, False, analyst)


def _set_deleted(case: Any, annotation_id: int, delete: bool, analyst: str | None,
                 hash_check: bool = False) -> Annotation:
    current = get_annotation(case, annotation_id)
    _intact_evidence(case, current.evidence_id, hash_check)
    with case._write() as conn:
        row = _live(conn, annotation_id, deleted=not delete)
        actor = case._actor(analyst, conn)
        when = audit.now_iso()
        if delete:
            conn.execute("UPDATE annotations SET deleted_by = ?, deleted_at = ? WHERE id = ?",
                         (actor, when, int(annotation_id)))
            details = {"annotation_id": int(annotation_id), "label": row["label"], "deleted_by": actor,
                       "deleted_at": when}
        else:
            conn.execute("UPDATE annotations SET deleted_by = NULL, deleted_at = NULL WHERE id = ?",
                         (int(annotation_id),))
            details = {"annotation_id": int(annotation_id), "label": row["label"], "restored_by": actor,
                       "restored_at": when}
        audit.append(conn, actor, "annotation.deleted" if delete else "annotation.restored",
                     f"annotation:{int(annotation_id)}", details, row["evidence_id"])
    return get_annotation(case, annotation_id)


def map_statistics(case: Any, evidence: Any, items: list[Annotation]) -> list[MapStats | None]:
    """The latest successful map's pixels / mean / max inside each annotation (None for an item
    without one, or a shape edited into something unreadable). Loads the map once, hash-checked."""
    analysis = case.latest_analysis(evidence.id) if items else None
    if analysis is None or not getattr(analysis, "ok", False):
        return [None] * len(items)
    prob = case.load_map(analysis)
    out: list[MapStats | None] = []
    for item in items:
        try:
            out.append(map_stats(item.shape, prob, evidence.width, evidence.height))
        except (ValueError, TypeError):
            out.append(None)
    return out


__all__ = ["KINDS", "MAX_LABEL_CHARS", "MAX_NOTE_CHARS", "Annotation", "AnnotationError", "add_annotation",
           "annotations", "check_label", "delete_annotation", "get_annotation", "map_statistics", "relabel_annotation",
           "restore_annotation"]
