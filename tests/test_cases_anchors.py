"""Anchors outside the case: receipts, the head printed in every report, Ed25519 signatures."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pypdf
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import tampering  # noqa: E402

from declip_desktop.cases import Case, signing  # noqa: E402
from declip_desktop.cases.anchors import PDF_HEAD_KEY  # noqa: E402
from tests.cases_util import noise_image  # noqa: E402


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "declip_desktop", *map(str, args)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd(), **(env or {})},
                          stdin=subprocess.DEVNULL)


def _case(root: Path) -> Case:
    case = Case.create(root, number="A-7", title="Anchors", analyst="Ana")
    noise_image(root.parent / "src" / "cat.jpg", seed=3, fmt="JPEG")
    case.import_paths([root.parent / "src"])
    case.store_result(1, model_name="m", model_sha256="a" * 64, parameters={}, score=0.982,
                      prob_map=np.full((40, 48), 0.5, np.float32), device="cpu", seconds=0.1,
                      started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:00:01+00:00")
    return case


def test_keys_are_made_once_kept_private_and_protected_by_their_passphrase(tmp_path, isolated_home):
    secret = tmp_path / "pass.txt"
    secret.write_text("correct horse\n")
    made = _cli("key", "create", "ana", "--passphrase-file", secret)
    assert made.returncode == 0, made.stderr
    key_file = isolated_home / "keys" / "ana.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and b"ENCRYPTED" in key_file.read_bytes()
    fp = re.search(r"Fingerprint: ([0-9a-f]{64})", made.stdout).group(1)
    assert fp in _cli("key", "list").stdout
    again = _cli("key", "create", "ana")
    assert again.returncode == 2 and "never replaced" in again.stderr
    assert signing.load_key("ana", b"correct horse").fingerprint == fp
    with pytest.raises(signing.SigningError, match="wrong passphrase"):
        signing.load_key("ana", b"wrong")
    with pytest.raises(signing.SigningError, match="protected by a passphrase"):
        signing.load_key("ana")
    assert _cli("key", "create", "../evil").returncode == 2


def test_receipts_prove_the_history_and_say_who_signed(tmp_path):
    _case(tmp_path / "case").close()
    assert _cli("key", "create", "ana").returncode == 0
    receipt = tmp_path / "receipt.json"
    made = _cli("case", "anchor", tmp_path / "case", "--out", receipt, "--sign")
    assert made.returncode == 0, made.stderr
    doc = json.loads(receipt.read_text())
    assert doc["audit_count"] > 0 and len(doc["audit_head"]) == 64 and doc["signature"]["name"] == "ana"
    assert _cli("case", "anchor", tmp_path / "case", "--out", receipt).returncode == 2  # never replaced

    ok = _cli("case", "verify", tmp_path / "case", "--anchor", receipt)
    assert ok.returncode == 0, ok.stdout
    assert "SIGNED anchor" in ok.stdout and "signed by ana" in ok.stdout and "does not record" in ok.stdout
    reg = _cli("key", "register", tmp_path / "case")
    assert reg.returncode == 0 and "Recorded: key ana" in reg.stdout
    assert "Already recorded" in _cli("key", "register", tmp_path / "case").stdout
    known = _cli("case", "verify", tmp_path / "case", "--anchor", receipt)
    assert known.returncode == 0 and "a key recorded in this case" in known.stdout

    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**doc, "audit_count": doc["audit_count"] - 1}))
    bad = _cli("case", "verify", tmp_path / "case", "--anchor", forged)
    assert bad.returncode == 1 and "signature_invalid" in bad.stdout

    _case(tmp_path / "other" / "case").close()
    other = tmp_path / "other.json"
    assert _cli("case", "anchor", tmp_path / "other" / "case", "--out", other).returncode == 0
    wrong = _cli("case", "verify", tmp_path / "case", "--anchor", other)
    assert wrong.returncode == 1 and "belongs to case" in wrong.stdout

    # The forger rewrites the whole history consistently: only the receipt kept elsewhere catches it.
    with Case.open(tmp_path / "case") as case:
        case.set_review(1, verdict="manipulated")
    assert _cli("case", "verify", tmp_path / "case", "--anchor", receipt).returncode == 0  # appending is fine
    f = tampering.Fixture(tmp_path / "case", {"cat.jpg": 1}, {"cat.jpg": 1}, tmp_path / "none.pdf", receipt)
    conn = f.db()
    conn.execute("DELETE FROM audit WHERE action = 'case.created'")
    tampering.renumber(conn)
    tampering.rehash_chain(conn)
    conn.close()
    rewritten = _cli("case", "verify", tmp_path / "case", "--anchor", receipt)
    assert rewritten.returncode == 1 and "history rewritten" in rewritten.stdout


def test_an_encrypted_key_needs_its_passphrase_to_sign(tmp_path):
    _case(tmp_path / "case").close()
    secret = tmp_path / "pass.txt"
    secret.write_text("s3cret")
    assert _cli("key", "create", "ana", "--passphrase-file", secret).returncode == 0
    no_pass = _cli("case", "anchor", tmp_path / "case", "--out", tmp_path / "r1.json", "--sign")
    assert no_pass.returncode == 2 and "passphrase" in no_pass.stderr and not (tmp_path / "r1.json").exists()
    signed = _cli("case", "anchor", tmp_path / "case", "--out", tmp_path / "r2.json", "--sign",
                  env={"DECLIP_KEY_PASSPHRASE": "s3cret"})
    assert signed.returncode == 0, signed.stderr


def test_every_report_prints_its_head_is_signed_and_anchors_the_history(tmp_path, qapp):
    from declip_desktop.reports.build import build_report

    signing.create_key("ana")
    copy = tmp_path / "for-court.pdf"
    with _case(tmp_path / "case") as case:
        head, count = case.audit_head()
        kept = build_report(case, out_path=copy, signer=signing.load_key("ana")).path
        report = case.verify(anchors=[copy])
    assert report.ok, report.problems
    assert any("signed by ana" in s and "recorded in this case" in s for s in report.signed_by)
    reader = pypdf.PdfReader(str(copy))
    assert reader.metadata[PDF_HEAD_KEY] == f"{count}:{head}"
    text = re.sub(r"\s+", "", " ".join(p.extract_text() or "" for p in reader.pages))
    assert head in text and f"had{count}entries" in text
    assert kept.with_name(kept.name + ".sig").is_file()

    # Rewrite the history whole (score lowered, report and signature removed, rehashed):
    # the case is self-consistent again, but the copy handed out still names the old head.
    f = tampering.Fixture(tmp_path / "case", {"cat.jpg": 1}, {"cat.jpg": 1}, kept, tmp_path / "r.json")
    tampering._full_rewrite(f)
    with Case.open(tmp_path / "case", read_only=True) as case:
        assert case.verify().ok  # the limit docs/INTEGRITY.md states: nothing inside the case can tell
        problems = case.verify(anchors=[copy]).problems
    assert [p.kind for p in problems] == ["anchor_mismatch"] and "history rewritten" in problems[0].detail


def test_key_sign_signs_a_registered_report_and_refuses_others(tmp_path):
    with _case(tmp_path / "case") as case:
        pdf = case.path / "reports" / "r.pdf"
        pdf.write_bytes(b"%PDF-1.4 minimal\n%%EOF\n")
        case.register_report(pdf)
    assert _cli("key", "create", "ana").returncode == 0
    signed = _cli("key", "sign", tmp_path / "case", pdf)
    assert signed.returncode == 0, signed.stderr
    out = _cli("case", "verify", tmp_path / "case")
    assert out.returncode == 0 and "reports/r.pdf (report 1): signed by ana" in out.stdout
    stray = tmp_path / "stray.pdf"
    stray.write_bytes(b"%PDF-1.4 other\n")
    refused = _cli("key", "sign", tmp_path / "case", stray)
    assert refused.returncode == 2 and "not a report registered" in refused.stderr
    # a signature file deleted is named
    pdf.with_name("r.pdf.sig").unlink()
    gone = _cli("case", "verify", tmp_path / "case")
    assert gone.returncode == 1 and "signature_missing" in gone.stdout


def test_no_report_prints_values_edited_outside_the_application(tmp_path, qapp):
    from declip_desktop.reports.build import build_report
    from declip_desktop.reports.pdf import ReportError

    with _case(tmp_path / "case") as case:
        f = tampering.Fixture(case.path, {"cat.jpg": 1}, {"cat.jpg": 1}, tmp_path / "none.pdf", tmp_path / "r.json")
        f.sql("UPDATE analyses SET score = 0.01 WHERE id = 1")
        with pytest.raises(ReportError, match=r"does not match its audit trail .*score 0\.010 in the database"):
            build_report(case, out_path=tmp_path / "forged.pdf")
        assert not (tmp_path / "forged.pdf").exists() and not list((case.path / "reports").iterdir())
