"""Every attack of the tampering catalogue (benchmarks/tampering.py) is caught by verify, naming
the item by its file name; entries written by older versions give a notice, not a false alarm."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import tampering  # noqa: E402

from declip_desktop.cases import Case, audit  # noqa: E402


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    work = tmp_path_factory.mktemp("tamper")
    old = os.environ.get("DECLIP_HOME")
    os.environ["DECLIP_HOME"] = str(work / "home")
    try:
        yield tampering.build_case(work)
    finally:
        if old is None:
            os.environ.pop("DECLIP_HOME", None)
        else:
            os.environ["DECLIP_HOME"] = old


def test_the_untouched_case_verifies_clean_with_its_receipt(pristine, tmp_path):
    f = tampering.copy_fixture(pristine, tmp_path)
    with Case.open(f.root, read_only=True) as case:
        report = case.verify(anchors=[f.receipt, f.report, f.report.with_name(f.report.name + ".sig")])
    assert report.ok, report.problems
    assert report.notices == [] and report.anchors_checked == 3
    # verify says who signed: the report (key recorded in the case) and the receipt
    assert any("2026-0141-report.pdf" in s and "signed by ana" in s and "recorded in this case" in s
               for s in report.signed_by)
    assert any("receipt.json: signed by ana" in s for s in report.signed_by)


@pytest.mark.timeout(60)  # the FIFO attack must never hang verify
@pytest.mark.parametrize("attack", tampering.ATTACKS, ids=[a.name for a in tampering.ATTACKS])
def test_attack_is_detected(attack, pristine, tmp_path):
    outcome = tampering.run_attack(attack, pristine, tmp_path)
    assert outcome.detected, f"{attack.name} not caught as expected {attack.expect}; verify said {outcome.problems}"
    # Only a complete, consistent rewrite of the history needs the receipt kept outside the case.
    assert outcome.detected_without_anchor or attack.needs_anchor


def test_catalogue_main_prints_the_tally(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(tampering, "ATTACKS", tampering.ATTACKS[:2])
    assert tampering.main(["--keep", str(tmp_path / "keep")]) == 0
    assert "2 of 2 attacks detected" in capsys.readouterr().out


# ------------------------------------------------------------------------------ legacy entries
_NEW_KEYS = {
    "evidence.imported": ("original_name", "mode", "metadata_sha256", "imported_by", "imported_at"),
    "evidence.rejected": ("rejection_id", "size", "rejected_at"),
    "analysis.stored": ("seconds",),
    "analysis.failed": ("device",),
    "review.changed": ("reviewed_by", "reviewed_at"),
    "report.registered": ("report_id", "registered_by", "registered_at", "printed_head", "printed_count"),
    "case.created": ("created",),
}


@pytest.fixture(scope="module")
def legacy_pristine(tmp_path_factory):
    """The same case, written as older versions did: their entries lack the values added since."""
    work = tmp_path_factory.mktemp("legacy")
    real_append = audit.append

    def old_append(conn, actor, action, obj, details=None, evidence_id=None, user=None):
        details = {k: v for k, v in (details or {}).items() if k not in _NEW_KEYS.get(action, ())}
        return real_append(conn, actor, action, obj, details, evidence_id, user)

    old_home = os.environ.get("DECLIP_HOME")
    os.environ["DECLIP_HOME"] = str(work / "home")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(audit, "append", old_append)
            yield tampering.build_case(work)
    finally:
        if old_home is None:
            os.environ.pop("DECLIP_HOME", None)
        else:
            os.environ["DECLIP_HOME"] = old_home


@pytest.fixture
def legacy(legacy_pristine, tmp_path):
    return tampering.copy_fixture(legacy_pristine, tmp_path)


def test_legacy_entries_give_a_notice_not_a_false_alarm(legacy):
    with Case.open(legacy.root, read_only=True) as case:
        report = case.verify()
    assert report.ok, report.problems
    text = " | ".join(n.detail for n in report.notices)
    assert {n.kind for n in report.notices} == {"legacy_entry"}
    assert "legacy entry, values not recorded" in text
    assert "evidence.imported entries written by an older DeCLIP Desktop do not record the" in text
    assert "metadata" in text and "mode" in text and "duration" not in text  # names the fields it lacks


@pytest.mark.parametrize("name", ["score_edited", "provenance_time", "rejections_deleted", "report_deleted",
                                  "verdict_changed"])
def test_legacy_cases_still_catch_tampering_with_what_was_recorded(legacy, name):
    attack = next(a for a in tampering.ATTACKS if a.name == name)
    attack.apply(legacy)
    with Case.open(legacy.root, read_only=True) as case:
        report = case.verify()
    texts = [f"[{p.kind}] {p.object}: {p.detail}" for p in report.problems]
    assert not report.ok and tampering._detected(texts, attack.expect), texts
