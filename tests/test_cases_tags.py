"""Tags and bookmarks on evidence (cases/tags.py): stored, audit-logged, replayed by verify, and a
hand edit of either table is named by `case verify`."""

from __future__ import annotations

import json
import sqlite3

import pytest

from declip_desktop.cases import Case, CaseError
from declip_desktop.cases.tags import (
    MAX_TAG_CHARS,
    TAGS_ACTION,
    Marks,
    all_marks,
    change_marks,
    get_marks,
    set_marks,
    tag_counts,
)
from tests.cases_util import noise_image


@pytest.fixture
def case(tmp_path):
    c = Case.create(tmp_path / "case", number="T-1", title="tags", analyst="ana")
    c.import_paths([noise_image(tmp_path / "in" / "cat.png", seed=1), noise_image(tmp_path / "in" / "dog.png", seed=2)])
    yield c
    c.close()


def _ids(case):
    return {e.original_name: e.id for e in case.evidence_list()}


def test_tags_and_bookmark_are_stored_and_each_change_is_one_entry(case):
    cat = _ids(case)["cat.png"]
    before = case.audit_head()[1]
    marks = change_marks(case, cat, add=["  face   swap? ", "Ask requester"], bookmarked=True, analyst="bo")
    assert marks == Marks(("Ask requester", "face swap?"), True)
    assert case.audit_head()[1] == before + 1
    entry = case.audit_entries([cat])[-1]
    assert entry.action == TAGS_ACTION and entry.actor == "bo"
    assert entry.details["old"] == {"tags": [], "bookmarked": False}
    assert entry.details["new"] == {"tags": ["Ask requester", "face swap?"], "bookmarked": True}
    # the same tag in another case is the same tag; nothing changes, so nothing is logged
    assert change_marks(case, cat, add=["FACE SWAP?"]) == marks
    assert case.audit_head()[1] == before + 1
    change_marks(case, cat, remove=["ask REQUESTER"], bookmarked=False)
    assert get_marks(case, cat) == Marks(("face swap?",), False)
    assert tag_counts(case) == [("face swap?", 1)]
    assert case.verify().ok


def test_bad_tags_are_refused_and_nothing_changes(case):
    cat = _ids(case)["cat.png"]
    change_marks(case, cat, add=["keep"])
    count = case.audit_head()[1]
    for bad, words in ((dict(add=["a\x00b"]), "control characters"), (dict(add=["   "]), "empty"),
                       (dict(add=["x" * (MAX_TAG_CHARS + 1)]), "limit"), (dict(remove=["absent"]), "no tag 'absent'"),
                       (dict(add=["k"], remove=["K"]), "both added and removed")):
        with pytest.raises(CaseError, match=words):
            change_marks(case, cat, **bad)
    with pytest.raises(CaseError, match="no evidence with id 999"):
        change_marks(case, 999, add=["x"])
    assert get_marks(case, cat) == Marks(("keep",), False) and case.audit_head()[1] == count


def test_set_marks_restores_a_state_for_undo(case):
    cat = _ids(case)["cat.png"]
    change_marks(case, cat, add=["suspect"], bookmarked=True)
    set_marks(case, cat, Marks(("Suspect", "new"), False))
    assert get_marks(case, cat) == Marks(("new", "Suspect"), False)
    set_marks(case, cat, Marks())
    assert all_marks(case) == {}
    assert case.verify().ok


def _tamper(case, sql, params=()):
    conn = sqlite3.connect(case.db_path)
    conn.execute(sql, params)
    conn.commit()
    conn.close()


@pytest.mark.parametrize("attack, words", [
    ("INSERT INTO evidence_tags (evidence_id, tag, added_by, added_at) VALUES ({dog}, 'cleared', 'ana', "
     "'2026-12-01T10:00:00.000+00:00')", "dog.png (evidence {dog}): tag 'cleared': in the database but never set"),
    ("DELETE FROM evidence_tags WHERE tag = 'suspect'", "cat.png (evidence {cat}): tag 'suspect' set at"),
    ("UPDATE evidence_tags SET added_by = 'mallory'", "added by 'mallory' in the database, 'ana'"),
    ("DELETE FROM bookmarks", "cat.png (evidence {cat}): bookmark set at"),
    ("INSERT INTO bookmarks (evidence_id, added_by, added_at) VALUES ({dog}, 'ana', '2026-12-01T10:00:00+00:00')",
     "dog.png (evidence {dog}): bookmark: in the database but never set"),
])
def test_a_hand_edit_of_tags_or_bookmarks_is_named_by_verify(case, attack, words):
    ids = _ids(case)
    change_marks(case, ids["cat.png"], add=["suspect"], bookmarked=True)
    assert case.verify().ok
    _tamper(case, attack.format(cat=ids["cat.png"], dog=ids["dog.png"]))
    report = case.verify()
    assert not report.ok
    details = [p.detail for p in report.problems]
    assert any(words.format(cat=ids["cat.png"], dog=ids["dog.png"]) in d for d in details), details


def test_a_removed_tag_entry_is_caught_by_the_next_entry_old_values(case):
    """Deleting the entry that added a tag (and the row) leaves the later entry's `old` unexplained."""
    cat = _ids(case)["cat.png"]
    change_marks(case, cat, add=["first"])
    change_marks(case, cat, add=["second"])
    conn = sqlite3.connect(case.db_path)
    rows = conn.execute("SELECT seq, details FROM audit WHERE action = ? ORDER BY seq", (TAGS_ACTION,)).fetchall()
    assert json.loads(rows[1][1])["old"]["tags"] == ["first"]
    conn.close()
    from declip_desktop.cases.reconcile import compare
    from declip_desktop.cases.replay import replay

    conn = sqlite3.connect(case.db_path)
    conn.execute("DELETE FROM audit WHERE seq = ?", (rows[0][0],))  # the chain walk sees it too; replay must as well
    problems = compare(conn, replay(conn))
    conn.close()
    assert any("the tag entry of" in p.detail and "entries were removed or rewritten" in p.detail for p in problems)


def test_an_older_case_opened_read_only_has_no_tags_and_no_error(tmp_path):
    from declip_desktop.cases import schema

    path = tmp_path / "old"
    Case.create(path, number="O-1", title="old", analyst="ana").close()
    # The case as the version before the tags' migration left it (later migrations' tables too go:
    # the lead renumbers migrations at merge, so nothing here assumes the tags' is the last one).
    before = next(i for i, m in enumerate(schema.MIGRATIONS) if "tags" in (m.__doc__ or ""))
    older = sqlite3.connect(":memory:")
    older.execute("BEGIN")
    schema.migrate(older, upto=before)
    keep = {r[0] for r in older.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn = sqlite3.connect(path / "case.sqlite")
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        if name not in keep and not name.startswith("sqlite_"):
            conn.execute(f"DROP TABLE {name}")
    conn.execute(f"PRAGMA user_version = {before}")
    conn.commit()
    conn.close()
    with Case.open(path, read_only=True) as case:
        assert all_marks(case) == {}
    with Case.open(path) as case:  # opening for writing migrates: the tables are back
        assert all_marks(case) == {}
        assert {"evidence_tags", "bookmarks"} <= {r[0] for r in sqlite3.connect(path / "case.sqlite").execute(
            "SELECT name FROM sqlite_master")}


# ------------------------------------------------------------------------------ command line
def test_cli_tag_then_status_shows_the_tags(case, capsys):
    from declip_desktop.cli import main

    root = str(case.path)
    cat = _ids(case)["cat.png"]
    case.close()
    assert main(["case", "tag", root, "cat.png", "--add", "suspect", "--add", "ask requester", "--bookmark",
                 "--analyst", "bo"]) == 0
    assert "cat.png (evidence %d): ★ bookmarked; tags: ask requester, suspect" % cat in capsys.readouterr().out
    assert main(["case", "tag", root, str(cat), "--remove", "ask requester", "--no-bookmark"]) == 0
    capsys.readouterr()
    assert main(["case", "status", root]) == 0
    out = capsys.readouterr().out
    assert any("cat.png  [suspect]" in line for line in out.splitlines()), out
    assert main(["case", "status", root, "--json"]) == 0
    items = {e["name"]: e for e in json.loads(capsys.readouterr().out)["evidence"]}
    assert items["cat.png"]["tags"] == ["suspect"] and items["cat.png"]["bookmarked"] is False
    assert items["dog.png"]["tags"] == []
    # errors: exit 2, a message that says what to do, nothing changed
    assert main(["case", "tag", root, "cow.png", "--add", "x"]) == 2
    assert "no evidence named cow.png" in capsys.readouterr().err
    assert main(["case", "tag", root, "cat.png", "--remove", "absent"]) == 2
    assert "no tag 'absent' (its tags: suspect)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["case", "tag", root, "cat.png", "--bookmark", "--no-bookmark"])
    assert usage.value.code == 2 and "not allowed with" in capsys.readouterr().err
    with Case.open(root, read_only=True) as again:
        assert get_marks(again, cat) == Marks(("suspect",), False)
        assert [e.actor for e in again.audit_entries([cat]) if e.action == TAGS_ACTION] == ["bo", "ana"]
        assert again.verify().ok


def test_the_results_export_carries_tags_and_bookmark(case, tmp_path):
    import csv

    from declip_desktop.cases.export import export_results

    cat = _ids(case)["cat.png"]
    change_marks(case, cat, add=["=cmd|x", "suspect"], bookmarked=True)  # a tag a spreadsheet would run
    out = export_results(case, tmp_path / "out" / "results.csv")
    rows = {r["original_name"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert rows["cat.png"]["tags"] == "'=cmd|x; suspect" and rows["cat.png"]["bookmarked"] == "True"
    assert rows["dog.png"]["tags"] == "" and rows["dog.png"]["bookmarked"] == "False"
    data = json.loads(export_results(case, tmp_path / "out" / "results.json").read_text())
    assert {e["original_name"]: e["tags"] for e in data["evidence"]} == {"cat.png": ["=cmd|x", "suspect"],
                                                                         "dog.png": []}
