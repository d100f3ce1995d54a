"""Case folder basics: create/open, schema versions and migrations, settings, review, audit."""

from __future__ import annotations

import hashlib
import os
import sqlite3

import pytest

from declip_desktop.cases import Case, CaseError, NewerSchemaError, schema
from declip_desktop.cases.case import DB_NAME, FOLDERS
from declip_desktop.cases import db as case_db
from tests.cases_util import noise_image


@pytest.fixture
def case(tmp_path):
    c = Case.create(tmp_path / "case", number="2026-0141", title="Harbour photos", analyst="Ana Pop",
                    description="Photos from the tip line")
    yield c
    c.close()


def test_create_makes_the_folder_layout_in_wal_mode(case):
    for folder in FOLDERS:
        assert (case.path / folder).is_dir()
    info = case.info
    assert (info.number, info.title, info.analyst, info.description) == (
        "2026-0141", "Harbour photos", "Ana Pop", "Photos from the tip line")
    assert info.created.endswith(("+00:00", "Z")) or info.created[-6] in "+-"  # carries its UTC offset
    assert info.schema_version == schema.SCHEMA_VERSION
    conn = sqlite3.connect(case.path / DB_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    [entry] = case.audit_entries()
    assert entry.action == "case.created" and entry.actor == "Ana Pop"


def test_create_refuses_an_existing_case_or_a_non_empty_folder(tmp_path, case):
    with pytest.raises(CaseError, match="already holds a case"):
        Case.create(case.path, number="1", title="t", analyst="a")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    with pytest.raises(CaseError, match="not empty"):
        Case.create(tmp_path / "busy", number="1", title="t", analyst="a")
    with pytest.raises(CaseError, match=r"cannot create a case without a analyst\. Give one"):
        Case.create(tmp_path / "new", number="1", title="t", analyst=" ")


def test_open_a_folder_that_is_not_a_case_says_so(tmp_path):
    with pytest.raises(CaseError, match="not a case folder"):
        Case.open(tmp_path)


def test_open_accepts_the_database_file_and_is_a_context_manager(case):
    case.close()
    with Case.open(case.path / DB_NAME) as again:
        assert again.info.number == "2026-0141"


def _make_v1_case(root):
    """A case as version 1 of the app wrote it (only the first migration)."""
    root.mkdir()
    for f in FOLDERS:
        (root / f).mkdir()
    conn = case_db.connect(root / DB_NAME)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    schema.migrate(conn, upto=1)
    from declip_desktop.cases import audit

    # Version 1 took the creation time just before writing the entry, as here.
    conn.execute("INSERT INTO case_info (id, uuid, number, title, analyst, description, created, created_with) "
                 "VALUES (1, 'u', 'OLD-1', 'Old case', 'Ion', '', ?, 'DeCLIP 0.0.1')", (audit.now_iso(),))

    audit.append(conn, "Ion", "case.created", "case", {"number": "OLD-1"})
    conn.execute("COMMIT")
    conn.close()


def test_an_older_case_opens_and_is_migrated_with_an_audit_entry(tmp_path):
    root = tmp_path / "old"
    _make_v1_case(root)
    with Case.open(root) as case:
        assert case.info.schema_version == schema.SCHEMA_VERSION
        assert case.info.number == "OLD-1"
        actions = [e.action for e in case.audit_entries()]
        assert actions == ["case.created", "case.migrated"]
        assert case.audit_entries()[-1].details["from_version"] == 1
        # version-2 features work on the migrated case
        report = case.path / "reports" / "r.pdf"
        report.write_bytes(b"%PDF-1.4 test")
        case.register_report(report)
        assert case.verify().ok


def test_a_newer_case_is_refused_and_left_untouched(tmp_path, case):
    root = case.path
    case.close()
    conn = sqlite3.connect(root / DB_NAME)
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.close()
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.iterdir() if p.is_file()}
    with pytest.raises(NewerSchemaError, match="newer DeCLIP Desktop.*not changed"):
        Case.open(root)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.iterdir() if p.is_file()}
    assert after == before
    conn = sqlite3.connect(root / DB_NAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION + 1
    conn.close()


def test_settings_round_trip_and_are_audited(case):
    assert case.get_setting("model", "none") == "none"
    case.set_setting("model", "declip-ldm")
    case.set_setting("model", "declip-ldm")  # unchanged: no second entry
    case.set_setting("colormap", {"name": "inferno", "opacity": 0.5}, analyst="Dan")
    assert case.get_setting("model") == "declip-ldm"
    assert case.settings()["colormap"] == {"name": "inferno", "opacity": 0.5}
    entries = [e for e in case.audit_entries() if e.action == "setting.changed"]
    assert [(e.details["key"], e.actor) for e in entries] == [("model", "Ana Pop"), ("colormap", "Dan")]


def test_review_is_validated_recorded_and_audited(tmp_path, case):
    [ev] = case.import_paths([noise_image(tmp_path / "a.png")]).imported
    with pytest.raises(CaseError, match="unknown verdict"):
        case.set_review(ev.id, verdict="fake")
    with pytest.raises(CaseError, match="outside 0"):
        case.set_review(ev.id, threshold=1.5)
    reviewed = case.set_review(ev.id, threshold=0.35, verdict="manipulated", notes="sky replaced", analyst="Dan")
    assert (reviewed.threshold, reviewed.verdict, reviewed.notes, reviewed.reviewed_by) == (
        0.35, "manipulated", "sky replaced", "Dan")
    [entry] = case.audit_entries(evidence_ids=[ev.id])[-1:]
    assert entry.action == "review.changed"
    assert entry.details["old"]["verdict"] == "not reviewed" and entry.details["new"]["verdict"] == "manipulated"
    assert entry.timestamp[-6] in "+-"


def test_update_info_and_log_event_append_to_the_chain(case):
    case.update_info(title="Harbour photos (2)")
    case.log_event("image.exported", "evidence:1", {"path": "/x.png"})
    entries = case.audit_entries()
    assert [e.action for e in entries][-2:] == ["case.updated", "image.exported"]
    assert entries[-1].prev_hash == entries[-2].hash
    assert case.audit_head() == (entries[-1].hash, len(entries))
    assert case.info.title == "Harbour photos (2)"


def test_closed_case_refuses_further_use(case):
    case.close()
    with pytest.raises(CaseError, match="closed"):
        case.evidence_list()


def test_case_folder_can_be_moved_whole(tmp_path, case):
    [ev] = case.import_paths([noise_image(tmp_path / "a.png")]).imported
    case.close()
    moved = tmp_path / "archive" / "moved"
    moved.parent.mkdir()
    os.rename(case.path, moved)
    with Case.open(moved) as c:
        assert c.evidence_file(ev.id).is_file()
        assert c.verify().ok
