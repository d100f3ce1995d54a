"""Per-case calibration stored in the case: roles and calibrations are audit-logged, replayed by
verify (a hand edit of either table is named), recalibration is a new entry, readings are rates."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from declip_desktop.cases import Case, CaseError
from declip_desktop.cases import calibration as cal
from tests.cases_util import noise_image

MODEL = "d" * 64
OTHER = "e" * 64


def _store(case, eid, score, seed, sha=MODEL, size=(40, 48)):
    rng = np.random.default_rng(seed)
    prob = np.clip(rng.beta(2, 12, size=size) * score * 2, 0, 1).astype(np.float32)
    return case.store_result(eid, model_name="tiny", model_sha256=sha, parameters={}, score=float(score),
                             prob_map=prob, device="cpu", seconds=0.1, started="s", finished="f")


@pytest.fixture
def case(tmp_path):
    c = Case.create(tmp_path / "case", number="2026-0190", title="calibration", analyst="ana")
    paths = [noise_image(tmp_path / "in" / f"ref{i:02d}.png", seed=i) for i in range(13)]
    c.import_paths(paths)
    rng = np.random.default_rng(3)
    for eid in range(1, 13):  # 12 references
        _store(c, eid, float(rng.uniform(0.05, 0.4)), eid)
    _store(c, 13, 0.91, 99)  # the questioned item
    yield c
    c.close()


def _problems(case):
    with Case.open(case.path, read_only=True) as again:
        return again.verify().problems


def test_calibrate_marks_references_stores_and_reads_the_questioned_item(case):
    got = cal.calibrate(case, range(1, 11), image_rate=0.05, pixel_rate=0.01, seed=7, resamples=200)
    assert got.n == 10 and got.model_sha256 == MODEL and got.seed == 7 and got.resamples == 200
    assert cal.reference_ids(case) == list(range(1, 11))
    assert got.image.low <= got.image.threshold <= got.image.high
    assert got.pixel.low <= got.pixel.threshold <= got.pixel.high
    # 10 references cannot promise 5 % of images: said, not hidden
    assert not got.image.attainable and "cannot promise" in got.warning
    assert [r.sha256 for r in got.references] == [case.get_evidence(i).sha256 for i in range(1, 11)]
    read = cal.reading(case, 13)
    assert read.standing.below == 10 and read.standing.n == 10 and read.above_image_threshold
    assert "above 100 % of this case's authentic references (10 of 10, n = 10)" in read.text()
    assert read.pixel_threshold == got.pixel.threshold
    assert "references" in cal.reading(case, 1).notes[0]
    entries = [e for e in case.audit_entries() if e.action.startswith(("calibration.", "evidence.role"))]
    assert [e.action for e in entries] == ["evidence.role_changed"] * 10 + ["calibration.computed"]
    assert entries[-1].details["seed"] == 7 and entries[-1].details["resamples"] == 200
    assert _problems(case) == []


def test_fewer_than_ten_references_warn(case):
    got = cal.calibrate(case, [1, 2, 3], image_rate=0.5, resamples=100)
    assert got.image.attainable and got.warning.startswith("only 3 references (at least 10 recommended)")


def test_recalibrating_after_adding_a_reference_is_a_new_entry_and_keeps_the_old(case):
    first = cal.calibrate(case, range(1, 11), resamples=100)
    cal.set_reference(case, [11], analyst="bo")
    second = cal.calibrate(case, resamples=100)  # every marked reference
    assert second.id != first.id and second.n == 11
    assert cal.current_calibration(case, MODEL).id == second.id
    assert [c.id for c in cal.calibrations(case)] == [first.id, second.id]
    computed = [e for e in case.audit_entries() if e.action == "calibration.computed"]
    assert len(computed) == 2 and computed[1].details["n"] == 11
    assert cal.clear_calibration(case) == [first.id, second.id]  # the older must not come back
    assert cal.reading(case, 13) is None  # no current calibration: uncalibrated again
    cal.set_reference(case, [11], reference=False)
    assert 11 not in cal.reference_ids(case)
    assert _problems(case) == []


def test_refusals_change_nothing(case):
    with pytest.raises(CaseError, match="no evidence with ID 99"):
        cal.calibrate(case, [1, 99])
    assert cal.reference_ids(case) == []
    _store(case, 5, 0.2, 5, sha=OTHER)  # only 5 has a result of the other model: the complete one is used
    assert cal.calibrate(case, [4, 5], resamples=100).model_sha256 == MODEL
    cal.clear_calibration(case)
    cal.set_reference(case, [4, 5], reference=False)
    _store(case, 4, 0.2, 4, sha=OTHER)
    with pytest.raises(CaseError, match="several models"):
        cal.calibrate(case, [4, 5])
    with pytest.raises(CaseError, match="false-alarm rate 5 is outside"):
        cal.calibrate(case, [1, 2], image_rate=5, model_sha256=MODEL)
    with pytest.raises(CaseError, match="3 has no result of the model eeee"):
        cal.calibrate(case, [3, 5], model_sha256=OTHER)
    assert len(cal.calibrations(case)) == 1 and cal.current_calibrations(case) == {}
    assert cal.reference_ids(case) == []  # a refused calibration marks nothing


def test_a_reference_whose_map_changed_is_refused(case):
    a = case.latest_analysis(2)
    path = case.map_file(a)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(CaseError, match="changed after it was stored"):
        cal.calibrate(case, [1, 2, 3])
    assert cal.calibrations(case) == []


@pytest.mark.parametrize("attack, expect", [
    ("UPDATE calibrations SET pixel_threshold = 0.9", "pixel threshold"),
    ("UPDATE calibrations SET reference_items = '[]'", "reference items"),
    ("DELETE FROM calibrations", "missing from the database"),
    ("INSERT INTO evidence_roles (evidence_id, role, set_by, set_at) VALUES (13, 'reference-authentic', 'x', 'y')",
     "no audit entry marked it"),
    ("DELETE FROM evidence_roles WHERE evidence_id = 2", "mark is missing"),
    ("UPDATE calibrations SET cleared_at = NULL, cleared_by = NULL", "cleared at"),
])
def test_hand_edits_of_the_calibration_tables_are_named_by_verify(case, attack, expect):
    cal.calibrate(case, range(1, 11), resamples=100)
    if "cleared" in attack:
        cal.clear_calibration(case)
    db = case.db_path
    case.close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(attack)
    conn.close()
    problems = _problems(case)
    assert any(expect in p.detail for p in problems), problems
    named = " ".join(p.detail for p in problems)
    assert "calibration" in named or "ref" in named


def test_calibration_json_is_plain(case):
    got = cal.calibrate(case, range(1, 11), resamples=100)
    text = json.dumps(got.as_dict())
    assert json.loads(text)["pixel"]["threshold"] == got.pixel.threshold


def test_report_has_the_calibration_section_and_each_items_reading(case, qapp):
    import re

    import pypdf

    from declip_desktop.reports import build_report

    made = cal.calibrate(case, range(1, 13), image_rate=0.1, resamples=100)
    built = build_report(case)
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in pypdf.PdfReader(str(built.path)).pages))
    squashed = text.replace(" ", "")
    assert "Calibration on reference-authentic evidence" in text
    assert "Reference-authentic evidence (12)" in text and "What it does not mean" in text
    for ref in made.references:  # by name and hash
        assert ref.name in text and ref.sha256[:32] in squashed
    assert f"{made.pixel.threshold:.4f}" in text and f"seed {made.seed}" in text and "n = 12" in text
    assert "above100%ofthiscase'sauthenticreferences(12of12,n=12)" in squashed
    assert "Atcalibratedthreshold" in squashed
    assert "12reference-authenticitem(s)listedinthecalibrationsection" in squashed
    # references are listed in the section, not given pages as questioned items
    assert [f.evidence_id for f in built.stats.items] == [13]
    # a reference file changed after calibrating is named in the section
    from declip_desktop.reports.calibration_section import collect_calibration

    path = case.evidence_file(case.get_evidence(4))
    path.chmod(0o644)
    path.write_bytes(path.read_bytes() + b"x")
    names = {i: name for i, name, _sha in collect_calibration(case).references}
    assert names[4].endswith("[FILE MISSING OR CHANGED SINCE IMPORT]") and "[" not in names[5]


def test_export_names_the_role_and_the_calibrated_standing(case, tmp_path):
    from declip_desktop.cases.export import result_rows

    made = cal.calibrate(case, range(1, 11), resamples=100)
    rows = {r["evidence_id"]: r for r in result_rows(case)}
    assert rows[1]["role"] == cal.REFERENCE_ROLE and rows[13]["role"] is None
    assert rows[13]["calibration_id"] == made.id and rows[13]["calibrated_above_references"] == 10
    assert rows[13]["calibration_n"] == 10 and rows[12]["role"] is None
