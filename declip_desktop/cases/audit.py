"""Tamper-evident audit log: an append-only hash chain inside the case database.

Each entry stores the SHA-256 of the previous entry and the SHA-256 of its own
canonical JSON (which includes the previous hash). Editing, inserting or deleting an
entry in the middle breaks the chain. Deleting entries at the *end* would leave a
valid shorter chain, so the head hash and the entry count are also kept in the
`meta` table, updated in the same transaction as every append, and checked by
`verify_chain`. Someone who rewrites the whole chain and the head consistently can
only be caught by a copy of the head kept elsewhere: reports record it, and
`declip case verify` prints it.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import sqlite3
from datetime import datetime
from typing import Any

from declip_desktop.cases.records import AuditEntry, Problem

GENESIS = "0" * 64
#: Values entries record only so `verify` can replay them (row ids, times and names that repeat
#: the entry's own time and actor, hashes of long values). Reports may leave them out.
REPLAY_ONLY_KEYS = frozenset({
    "original_name", "mode", "metadata_sha256", "imported_by", "imported_at", "rejection_id", "rejected_at",
    "reviewed_by", "reviewed_at", "report_id", "registered_by", "registered_at", "printed_head", "printed_count",
    "created", "seconds", "changed_by", "changed_at",
})
_HEAD_KEY = "audit_head"
_COUNT_KEY = "audit_count"


def canonical(obj: Any) -> str:
    """The one JSON spelling hashed and stored: sorted keys, no spaces, UTF-8 text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)


def now_iso() -> str:
    """Local time with its UTC offset, e.g. 2026-11-28T23:59:38.123+01:00."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


@functools.lru_cache(maxsize=1)
def os_user() -> str:
    """The operating-system account running this program (once per process)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers; the entry still needs a value
        return "unknown"


def entry_hash(
    seq: int, ts: str, actor: str, user: str, action: str, obj: str, evidence_id: int | None, details: str, prev: str
) -> str:
    content = canonical(
        {
            "seq": seq,
            "ts": ts,
            "actor": actor,
            "os_user": user,
            "action": action,
            "object": obj,
            "evidence_id": evidence_id,
            "details": details,  # the stored canonical text, hashed as a string
            "prev_hash": prev,
        }
    )
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def head(conn: sqlite3.Connection) -> tuple[str, int]:
    rows = dict(conn.execute("SELECT key, value FROM meta WHERE key IN (?, ?)", (_HEAD_KEY, _COUNT_KEY)).fetchall())
    return rows.get(_HEAD_KEY, GENESIS), int(rows.get(_COUNT_KEY, 0))


def append(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    obj: str,
    details: dict[str, Any] | None = None,
    evidence_id: int | None = None,
    user: str | None = None,
) -> AuditEntry:
    """Append one entry. Must run inside the write transaction that makes the change."""
    if not conn.in_transaction:
        raise RuntimeError("audit.append() must run inside the write transaction of the change it records")
    prev, count = head(conn)
    seq = count + 1
    ts = now_iso()
    user = os_user() if user is None else user
    details_text = canonical(details or {})
    digest = entry_hash(seq, ts, actor, user, action, obj, evidence_id, details_text, prev)
    conn.execute(
        "INSERT INTO audit (seq, ts, actor, os_user, action, object, evidence_id, details, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, ts, actor, user, action, obj, evidence_id, details_text, prev, digest),
    )
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(_HEAD_KEY, digest), (_COUNT_KEY, str(seq))],
    )
    return AuditEntry(seq, ts, actor, action, obj, evidence_id, details or {}, prev, digest, user)


def row_to_entry(row: dict[str, Any]) -> AuditEntry:
    try:
        details = json.loads(row["details"])
    except (TypeError, ValueError):
        details = {"unreadable": row["details"]}
    return AuditEntry(
        seq=row["seq"],
        timestamp=row["ts"],
        actor=row["actor"],
        action=row["action"],
        object=row["object"],
        evidence_id=row["evidence_id"],
        details=details,
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        os_user=row["os_user"] or "",
    )


def verify_chain(conn: sqlite3.Connection) -> tuple[list[Problem], int, str]:
    """Walk the whole chain. Returns (problems, entries walked, head hash recorded in meta)."""
    problems: list[Problem] = []
    expected_prev = GENESIS
    expected_seq = 1
    walked = 0
    cursor = conn.execute(
        "SELECT seq, ts, actor, os_user, action, object, evidence_id, details, prev_hash, hash FROM audit ORDER BY seq"
    )
    for seq, ts, actor, user, action, obj, evidence_id, details, prev, digest in cursor:
        walked += 1
        where = f"audit:{seq}"
        if seq != expected_seq:
            problems.append(
                Problem(
                    "audit_chain",
                    where,
                    f"history altered: entry {expected_seq} is missing or entries were inserted "
                    f"(found entry {seq} next)",
                )
            )
        if prev != expected_prev:
            problems.append(
                Problem("audit_chain", where, "history altered: entry does not follow the previous entry's hash")
            )
        recomputed = entry_hash(seq, ts, actor, user or "", action, obj, evidence_id, details, prev)
        if recomputed != digest:
            problems.append(
                Problem("audit_chain", where, f"history altered: entry {seq} ({action}) was edited after it was written")
            )
        expected_prev = digest
        expected_seq = seq + 1
    recorded_head, recorded_count = head(conn)
    if walked != recorded_count or expected_prev != recorded_head:
        problems.append(
            Problem(
                "audit_chain",
                "audit",
                f"history altered: the case records {recorded_count} audit entries ending in "
                f"{recorded_head[:12]}…, but {walked} entries ending in {expected_prev[:12]}… are present "
                "(entries deleted or appended outside the application)",
            )
        )
    return problems, walked, recorded_head
