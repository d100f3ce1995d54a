"""Tags and bookmarks on evidence: the analyst's own labels ("face swap?", "ask requester") and a
star for items to come back to. No Qt.

Each change of an item's tags or bookmark is one `evidence.tags_changed` audit entry holding the
whole state before and after (`old`/`new`: sorted tags and the bookmark flag), who and when;
`cases/replay.py` rebuilds the `evidence_tags` and `bookmarks` tables from those entries and
`cases/reconcile.py` names every row that differs, so a tag added or removed by hand is caught by
`declip case verify`. Tags are labels, not findings: they never change a result, a verdict or a
threshold.

Tags compare without regard to case ("Suspect" and "suspect" are one tag; the first spelling
stays), surrounding and repeated spaces are dropped, and control characters are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from declip_desktop.cases import audit
from declip_desktop.cases.errors import CaseError

TAGS_ACTION = "evidence.tags_changed"
TAGS_TABLE = "evidence_tags"
BOOKMARKS_TABLE = "bookmarks"
MAX_TAG_CHARS = 64
MAX_TAGS_PER_ITEM = 50
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Marks:
    """An item's tags (sorted, case-insensitively) and whether it is bookmarked."""

    tags: tuple[str, ...] = ()
    bookmarked: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"tags": list(self.tags), "bookmarked": self.bookmarked}

    def has_tag(self, tag: str) -> bool:
        key = tag_key(tag)
        return any(tag_key(t) == key for t in self.tags)

    def describe(self) -> str:
        """One line for lists and reports: "★ bookmarked; tags: a, b" or "" when unmarked."""
        parts = ["★ bookmarked"] if self.bookmarked else []
        if self.tags:
            parts.append("tags: " + ", ".join(self.tags))
        return "; ".join(parts)


def tag_key(tag: str) -> str:
    return tag.casefold()


def clean_tag(tag: Any) -> str:
    """The tag as stored, or CaseError saying what is wrong with it."""
    if not isinstance(tag, str):
        raise CaseError(f"a tag must be text, not {type(tag).__name__}.")
    if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in tag):
        raise CaseError(f"the tag {tag!r} contains control characters. Type it without them.")
    text = _SPACES.sub(" ", tag).strip()
    if not text:
        raise CaseError("a tag cannot be empty. Type a word or a short phrase.")
    if len(text) > MAX_TAG_CHARS:
        raise CaseError(f"the tag {text[:20]!r}… is {len(text)} characters long; the limit is {MAX_TAG_CHARS}. "
                        "Use a shorter tag and put the rest in the item's notes.")
    return text


def _sorted(tags: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(tags, key=lambda t: (tag_key(t), t)))


def _has_tables(case: Any) -> bool:
    """Cases opened read-only are never migrated: an older one has no tag tables (so no tags)."""
    names = {r["name"] for r in case._store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return TAGS_TABLE in names and BOOKMARKS_TABLE in names


def all_marks(case: Any) -> dict[int, Marks]:
    """{evidence id: Marks} of every tagged or bookmarked item (others are absent)."""
    if not _has_tables(case):
        return {}
    with case.snapshot():
        tags: dict[int, list[str]] = {}
        for row in case._store.query(f"SELECT evidence_id, tag FROM {TAGS_TABLE}"):  # noqa: S608 - fixed names
            tags.setdefault(int(row["evidence_id"]), []).append(row["tag"])
        starred = {int(r["evidence_id"]) for r in case._store.query(f"SELECT evidence_id FROM {BOOKMARKS_TABLE}")}  # noqa: S608
    return {eid: Marks(_sorted(tags.get(eid, ())), eid in starred) for eid in sorted(set(tags) | starred)}


def get_marks(case: Any, evidence_id: int) -> Marks:
    return all_marks(case).get(int(evidence_id), Marks())


def tag_counts(case: Any) -> list[tuple[str, int]]:
    """Every tag used in the case with the number of items carrying it, sorted by tag."""
    counts: dict[str, tuple[str, int]] = {}
    for marks in all_marks(case).values():
        for tag in marks.tags:
            spelling, n = counts.get(tag_key(tag), (tag, 0))
            counts[tag_key(tag)] = (spelling, n + 1)
    return [counts[k] for k in sorted(counts)]


def _read(conn: Any, evidence_id: int) -> Marks:
    tags = [r[0] for r in conn.execute(f"SELECT tag FROM {TAGS_TABLE} WHERE evidence_id = ?", (evidence_id,))]  # noqa: S608
    starred = conn.execute(f"SELECT 1 FROM {BOOKMARKS_TABLE} WHERE evidence_id = ?", (evidence_id,)).fetchone()  # noqa: S608
    return Marks(_sorted(tags), starred is not None)


def change_marks(case: Any, evidence_id: int, *, add: Iterable[str] = (), remove: Iterable[str] = (),
                 bookmarked: bool | None = None, analyst: str | None = None) -> Marks:
    """Add and remove tags and set or clear the bookmark of one item: one audit entry (none when
    nothing changes). Removing a tag the item does not carry is refused, and nothing changes."""
    add = [clean_tag(t) for t in add]
    remove = [clean_tag(t) for t in remove]
    clash = {tag_key(t) for t in add} & {tag_key(t) for t in remove}
    if clash:
        raise CaseError(f"the tag {sorted(clash)[0]!r} is both added and removed; choose one.")
    return _write(case, evidence_id, analyst, lambda old: _apply(old, add, remove, bookmarked))


def set_marks(case: Any, evidence_id: int, marks: Marks, analyst: str | None = None) -> Marks:
    """Make the item's tags and bookmark exactly `marks` (undo and redo use it)."""
    wanted = Marks(_sorted(clean_tag(t) for t in marks.tags), bool(marks.bookmarked))
    return _write(case, evidence_id, analyst, lambda old: wanted)


def _apply(old: Marks, add: list[str], remove: list[str], bookmarked: bool | None) -> Marks:
    tags = list(old.tags)
    for tag in remove:
        if not old.has_tag(tag):
            carried = ", ".join(old.tags) or "none"
            raise CaseError(f"the item has no tag {tag!r} (its tags: {carried}); nothing was changed.")
        tags = [t for t in tags if tag_key(t) != tag_key(tag)]
    for tag in add:
        if not any(tag_key(t) == tag_key(tag) for t in tags):
            tags.append(tag)
    return Marks(_sorted(tags), old.bookmarked if bookmarked is None else bool(bookmarked))


def _write(case: Any, evidence_id: int, analyst: str | None, change: Any) -> Marks:
    evidence_id = int(evidence_id)
    with case._write() as conn:
        row = conn.execute("SELECT original_name FROM evidence WHERE id = ?", (evidence_id,)).fetchone()
        if row is None:
            raise CaseError(f"no evidence with id {evidence_id} in this case; nothing was changed.")
        old = _read(conn, evidence_id)
        new = change(old)
        keys = {tag_key(t) for t in new.tags}
        if len(keys) != len(new.tags):
            raise CaseError("the same tag is given twice in different spellings; give it once.")
        if len(new.tags) > MAX_TAGS_PER_ITEM:
            raise CaseError(f"{row[0]} would carry {len(new.tags)} tags; the limit is {MAX_TAGS_PER_ITEM}. "
                            "Remove some first.")
        if new == old:
            return old
        actor = case._actor(analyst, conn)
        at = audit.now_iso()
        old_keys = {tag_key(t) for t in old.tags}
        added = [t for t in new.tags if tag_key(t) not in old_keys]
        removed = [t for t in old.tags if tag_key(t) not in keys]
        kept = {tag_key(t): t for t in old.tags}
        # A tag kept under a new spelling (set_marks with "Suspect" over "suspect") is rewritten too.
        respelled = [t for t in new.tags if tag_key(t) in kept and kept[tag_key(t)] != t]
        for tag in removed + [kept[tag_key(t)] for t in respelled]:
            conn.execute(f"DELETE FROM {TAGS_TABLE} WHERE evidence_id = ? AND tag = ?", (evidence_id, tag))  # noqa: S608
        for tag in added + respelled:
            conn.execute(f"INSERT INTO {TAGS_TABLE} (evidence_id, tag, added_by, added_at) VALUES (?, ?, ?, ?)",  # noqa: S608
                         (evidence_id, tag, actor, at))
        if new.bookmarked and not old.bookmarked:
            conn.execute(f"INSERT INTO {BOOKMARKS_TABLE} (evidence_id, added_by, added_at) VALUES (?, ?, ?)",  # noqa: S608
                         (evidence_id, actor, at))
        elif old.bookmarked and not new.bookmarked:
            conn.execute(f"DELETE FROM {BOOKMARKS_TABLE} WHERE evidence_id = ?", (evidence_id,))  # noqa: S608
        audit.append(conn, actor, TAGS_ACTION, f"evidence:{evidence_id}",
                     {"old": old.as_dict(), "new": new.as_dict(), "added": added, "removed": removed,
                      "changed_by": actor, "changed_at": at}, evidence_id)
    return new


__all__ = ["BOOKMARKS_TABLE", "MAX_TAGS_PER_ITEM", "MAX_TAG_CHARS", "TAGS_ACTION", "TAGS_TABLE", "Marks",
           "all_marks", "change_marks", "clean_tag", "get_marks", "set_marks", "tag_counts", "tag_key"]
