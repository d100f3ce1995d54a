"""verify(): tampering with evidence, maps, reports, the database or the audit history is found."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from declip_desktop.cases import Case, CaseError
from declip_desktop.cases.case import DB_NAME
from tests.cases_util import noise_image


@pytest.fixture
def case(tmp_path):
    c = Case.create(tmp_path / "case", number="9", title="Verify", analyst="Ana")
    src = tmp_path / "src"
    for i in range(3):
        noise_image(src / f"{i}.png", seed=i)
    c.import_paths([src])
    for ev in c.evidence_list()[:2]:
        c.store_result(ev.id, model_name="m", model_sha256="a" * 64, parameters={}, score=0.5,
                       prob_map=np.linspace(0, 1, 40 * 48, dtype=np.float32).reshape(40, 48), device="cpu",
                       seconds=0.1, started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:00:01+00:00")
    c.set_review(1, verdict="authentic")
    yield c
    c.close()


def kinds(case) -> list[str]:
    return sorted(p.kind for p in case.verify().problems)


def _sql(case, sql, *params):
    conn = sqlite3.connect(case.path / DB_NAME)
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def test_an_untouched_case_verifies(case):
    report = case.verify()
    assert report.ok and report.problems == []
    assert (report.evidence_checked, report.maps_checked) == (3, 2)
    assert report.audit_entries == len(case.audit_entries()) and report.audit_head == case.audit_head()[0]


def test_changed_evidence_is_detected(case):
    path = case.evidence_file(2)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-20] ^= 1
    path.write_bytes(bytes(data))
    [problem] = case.verify().problems
    assert problem.kind == "evidence_changed" and problem.object == "evidence:2"


def test_missing_and_unknown_files_are_detected(case):
    os.chmod(case.evidence_file(3), 0o644)
    os.remove(case.evidence_file(3))
    noise_image(case.path / "evidence" / "planted.png", seed=99)
    (case.path / "results" / "extra.png").write_bytes(b"x")
    assert kinds(case) == ["evidence_missing", "unknown_file", "unknown_file"]


def test_changed_or_missing_map_is_detected_and_not_loaded(case):
    analysis = case.latest_analysis(1)
    path = case.map_file(analysis)
    os.chmod(path, 0o644)
    from declip_desktop.common.probmaps import encode_png16

    path.write_bytes(encode_png16(np.zeros((40, 48), np.float32)))
    assert kinds(case) == ["map_changed"]
    with pytest.raises(CaseError, match="changed after it was stored"):
        case.load_map(analysis)
    os.remove(case.map_file(case.latest_analysis(2)))
    assert kinds(case) == ["map_changed", "map_missing"]


def test_registered_report_is_rechecked(case):
    report = case.path / "reports" / "case-9.pdf"
    report.write_bytes(b"%PDF-1.7 original")
    case.register_report(report)
    entry = case.audit_entries()[-1]
    assert entry.action == "report.registered" and len(entry.details["sha256"]) == 64
    assert case.verify().ok and case.verify().reports_checked == 1
    report.write_bytes(b"%PDF-1.7 edited")
    assert kinds(case) == ["report_changed"]
    report.unlink()
    assert kinds(case) == ["report_missing"]
    with pytest.raises(CaseError, match="no such report"):
        case.register_report(report)


def test_edited_audit_entry_is_detected(case):
    _sql(case, "UPDATE audit SET details = replace(details, 'authentic', 'manipulated') WHERE action = 'review.changed'")
    problems = case.verify().problems
    # The chain walk names the edited entry; the replay then finds the row no longer matches it.
    assert [p.kind for p in problems] == ["audit_chain", "record_changed"] and "edited" in problems[0].detail
    assert "verdict 'authentic' in the database, 'manipulated'" in problems[1].detail


def test_deleted_audit_entry_in_the_middle_is_detected(case):
    _sql(case, "DELETE FROM audit WHERE seq = 3")
    assert "audit_chain" in kinds(case)


def test_truncated_audit_tail_is_detected(case):
    last = case.audit_head()[1]
    _sql(case, "DELETE FROM audit WHERE seq = ?", last)
    problems = case.verify().problems
    assert problems[0].kind == "audit_chain" and "deleted" in problems[0].detail
    # the deleted entry was the review: the verdict it set is now unexplained by the trail
    assert {p.kind for p in problems[1:]} == {"record_changed"}
    assert any("verdict 'authentic' in the database, 'not reviewed'" in p.detail for p in problems[1:])


def test_inserted_audit_entry_is_detected(case):
    from declip_desktop.cases import audit

    # A forger who appends a well-formed entry with a correct hash, but outside the app:
    # the head recorded in the meta row does not move with it.
    head, count = case.audit_head()
    details = audit.canonical({"note": "backdated"})
    digest = audit.entry_hash(count + 1, "2020-01-01T00:00:00+00:00", "Mallory", "m", "review.changed",
                              "evidence:1", 1, details, head)
    _sql(case, "INSERT INTO audit (seq, ts, actor, os_user, action, object, evidence_id, details, prev_hash, hash) "
               "VALUES (?, '2020-01-01T00:00:00+00:00', 'Mallory', 'm', 'review.changed', 'evidence:1', 1, ?, ?, ?)",
         count + 1, details, head, digest)
    found = kinds(case)
    assert "audit_chain" in found and "audit_time" in found  # not on the recorded head; dated before its predecessor


def test_evidence_row_rewritten_with_its_file_is_caught_by_the_audit_trail(case):
    ev = case.get_evidence(1)
    other = noise_image(case.path.parent / "forged.png", seed=42)
    import hashlib

    forged_sha = hashlib.sha256(other.read_bytes()).hexdigest()
    path = case.evidence_file(ev)
    os.chmod(path, 0o644)
    path.write_bytes(other.read_bytes())
    _sql(case, "UPDATE evidence SET sha256 = ? WHERE id = 1", forged_sha)
    assert kinds(case) == ["record_changed"]


def test_cli_verify_exit_code_and_json(case, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    ok = subprocess.run([sys.executable, "-m", "declip_desktop", "case", "verify", str(case.path)],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "OK" in ok.stdout
    os.chmod(case.evidence_file(1), 0o644)
    case.evidence_file(1).write_bytes(b"tampered")
    bad = subprocess.run([sys.executable, "-m", "declip_desktop", "case", "verify", str(case.path), "--json"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 1
    import json

    report = json.loads(bad.stdout)
    assert report["ok"] is False and report["problems"][0]["kind"] == "evidence_changed"
