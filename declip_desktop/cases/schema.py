"""Case database schema and its migrations.

The schema version lives in SQLite's `PRAGMA user_version`. A new case is built by
running every migration from 0, so the migration path is exercised on every
`Case.create`, not only on the rare old case. Rules for adding a version:
append a function to `MIGRATIONS`; never edit a released one; keep each migration
additive so an old case keeps every row it had.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils


def _v1(db: sqlite_utils.Database) -> None:
    """Version 1: case, evidence, rejections, analyses, settings, audit."""
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["case_info"].create(
        {
            "id": int,
            "uuid": str,
            "number": str,
            "title": str,
            "analyst": str,
            "description": str,
            "created": str,
            "created_with": str,
        },
        pk="id",
        not_null={"number", "title", "analyst", "created"},
    )
    db["evidence"].create(
        {
            "id": int,
            "sha256": str,
            "md5": str,
            "size": int,
            "original_name": str,
            "original_path": str,
            "stored_name": str,  # file name inside evidence/
            "format": str,
            "width": int,
            "height": int,
            "mode": str,
            "metadata": str,  # JSON
            "imported_by": str,
            "imported_at": str,
            "status": str,
            "threshold": float,
            "verdict": str,
            "notes": str,
        },
        pk="id",
        not_null={"sha256", "md5", "size", "original_name", "stored_name", "imported_by", "imported_at", "status"},
        defaults={"status": "queued", "verdict": "not reviewed", "notes": "", "metadata": "{}"},
    )
    db["evidence"].create_index(["sha256"], unique=True)
    db["rejections"].create(
        {"id": int, "path": str, "reason": str, "size": int, "rejected_by": str, "rejected_at": str},
        pk="id",
        not_null={"path", "reason", "rejected_at"},
    )
    db["analyses"].create(
        {
            "id": int,
            "evidence_id": int,
            "model_name": str,
            "model_sha256": str,
            "parameters": str,  # JSON
            "score": float,
            "map_file": str,  # relative to the case folder
            "map_sha256": str,
            "device": str,
            "seconds": float,
            "software_version": str,
            "started": str,
            "finished": str,
            "error": str,
            "created_by": str,
        },
        pk="id",
        foreign_keys=[("evidence_id", "evidence", "id")],
        not_null={"evidence_id", "model_name", "model_sha256", "software_version"},
    )
    db["analyses"].create_index(["evidence_id"])
    db["settings"].create({"key": str, "value": str}, pk="key")
    db["audit"].create(
        {
            "seq": int,
            "ts": str,
            "actor": str,
            "os_user": str,
            "action": str,
            "object": str,
            "evidence_id": int,
            "details": str,  # canonical JSON, hashed as stored
            "prev_hash": str,
            "hash": str,
        },
        pk="seq",
        not_null={"ts", "actor", "action", "object", "details", "prev_hash", "hash"},
    )
    db["audit"].create_index(["evidence_id"])


def _v2(db: sqlite_utils.Database) -> None:
    """Version 2: registered reports (hash-checked by verify) and who reviewed when."""
    db["reports"].create(
        {"id": int, "path": str, "sha256": str, "size": int, "registered_by": str, "registered_at": str},
        pk="id",
        not_null={"path", "sha256", "registered_at"},
    )
    db["evidence"].add_column("reviewed_by", str)
    db["evidence"].add_column("reviewed_at", str)
    db["analyses"].create_index(["evidence_id", "model_sha256"])


def _v3(db: sqlite_utils.Database) -> None:
    """Version 3: the public keys of those who signed anchors or reports of the case."""
    db["signers"].create(
        {"fingerprint": str, "name": str, "public_key": str, "registered_by": str, "registered_at": str},
        pk="fingerprint",
        not_null={"name", "public_key", "registered_at"},
    )


def _v4(db: sqlite_utils.Database) -> None:
    """Version 4: evidence roles (reference-authentic) and per-case calibrations (cases/calibration.py)."""
    from declip_desktop.cases.calibration import migrate_v4

    migrate_v4(db)


def _v5(db: sqlite_utils.Database) -> None:
    """Version 5: analyst annotations (box / lasso, label, note) drawn on evidence (cases/annotations.py)."""
    db["annotations"].create(
        {
            "id": int,
            "evidence_id": int,
            "kind": str,  # box | lasso
            "geometry": str,  # canonical JSON, image pixels
            "label": str,
            "note": str,
            "author": str,
            "created_at": str,
            "edited_by": str,
            "edited_at": str,
            "deleted_by": str,  # a delete marks the row; it is never removed
            "deleted_at": str,
        },
        pk="id",
        foreign_keys=[("evidence_id", "evidence", "id")],
        not_null={"evidence_id", "kind", "geometry", "label", "author", "created_at"},
        defaults={"note": ""},
    )
    db["annotations"].create_index(["evidence_id"])


def _v6(db: sqlite_utils.Database) -> None:
    """Version 6: the analyst's tags and bookmarks on evidence (cases/tags.py)."""
    db["evidence_tags"].create(
        {"evidence_id": int, "tag": str, "added_by": str, "added_at": str},
        pk=("evidence_id", "tag"),
        foreign_keys=[("evidence_id", "evidence", "id")],
        not_null={"added_at"},
    )
    db["bookmarks"].create(
        {"evidence_id": int, "added_by": str, "added_at": str},
        pk="evidence_id",
        foreign_keys=[("evidence_id", "evidence", "id")],
        not_null={"added_at"},
    )


def _v7(db: sqlite_utils.Database) -> None:
    """Version 7: stability checks (re-analysis of re-compressed copies; cases.stability_store)."""
    db["stability_checks"].create(
        {
            "id": int,
            "evidence_id": int,
            "analysis_id": int,  # the stored result whose regions were checked
            "model_name": str,
            "model_sha256": str,
            "evidence_sha256": str,  # the file the copies were made from
            "threshold": float,
            "min_iou": float,
            "variants": str,  # JSON: [{name, label, kind, value, sha256, score, seconds}]
            "regions": str,  # JSON: [{index, area_px, bbox, iou: {variant: IoU}, persisted: [variant]}]
            "parameters": str,  # JSON: how the copies were analysed, with the model card's snapshot
            "software_version": str,
            "started": str,
            "finished": str,
            "seconds": float,
            "created_by": str,
        },
        pk="id",
        foreign_keys=[("evidence_id", "evidence", "id"), ("analysis_id", "analyses", "id")],
        not_null={"evidence_id", "analysis_id", "model_sha256", "threshold", "variants", "regions",
                  "software_version"},
    )
    db["stability_checks"].create_index(["evidence_id"])


#: MIGRATIONS[i] brings a database from version i to version i + 1.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7]
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> list[tuple[int, int]]:
    """Run the missing migrations inside the caller's write transaction.

    Returns the steps applied as (from, to) pairs."""
    if not conn.in_transaction:
        raise RuntimeError("migrate() must run inside a write transaction")
    db = sqlite_utils.Database(conn, execute_plugins=False)
    steps = []
    current = user_version(conn)
    while current < upto:
        MIGRATIONS[current](db)
        steps.append((current, current + 1))
        current += 1
        conn.execute(f"PRAGMA user_version = {current}")
    return steps
