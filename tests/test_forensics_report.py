"""The report's details page carries the key metadata, the alerts and the C2PA summary; an examination
edited after it was stored is named as not used rather than printed."""

from __future__ import annotations

import json
import os
import re

import pypdf

from declip_desktop.cases import Case
from declip_desktop.examination import import_and_examine, load_examination
from declip_desktop.reports import build_report
from declip_desktop.reports.forensics_rows import rows_from_record
from tests.forensics_files import png_with_text, texture


def _text(path) -> str:
    return re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in pypdf.PdfReader(str(path)).pages))


def test_details_page_lists_metadata_alerts_and_c2pa(tmp_path):
    src = tmp_path / "sd.png"
    src.write_bytes(png_with_text(texture(96, 128, 1), {"parameters": "owl\nSteps: 25, Sampler: Euler a",
                                                         "Software": "Adobe Photoshop 25.0"}))
    with Case.create(tmp_path / "case", number="17", title="Report", analyst="Ana") as case:
        report, _ = import_and_examine(case, [src])
        ev = report.imported[0]
        text = _text(build_report(case).path)
        assert "Alerts (2)" in text and "Generator signature" in text and "Editing software: Adobe Photoshop" in text
        assert "Content Credentials none (proves nothing" in text
        assert "PNG text 'parameters' owl Steps: 25" in text
        assert "Metadata, alerts and Content Credentials" in text  # the method section explains the limits
        exam = load_examination(case, ev.id)
        os.chmod(exam.path, 0o644)
        exam.path.write_text(json.dumps({**exam.record, "alerts": []}))
        text = _text(build_report(case).path)
        assert "NOT USED" in text and "changed after it was stored" in text and "Generator signature" not in text


def test_rows_summarise_c2pa_states():
    record = {"metadata": {}, "alerts": [], "c2pa": {
        "state": "invalid", "failure_codes": ["assertion.dataHash.mismatch"], "active": {"signer": "Cam Co"},
        "actions": [{"digital_source_type": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]}}
    rows = dict(rows_from_record(record))
    assert rows["Content Credentials"] == ("INVALID; signed by Cam Co; failures: assertion.dataHash.mismatch; "
                                           "source: digitalCapture")
    assert rows["Alerts"] == "none found by the metadata checks"


def test_pinned_views_alerts_and_c2pa_appear_with_note_and_explanation(tmp_path):
    import pytest

    from declip_desktop.pins import PinError, pin, pins, unpin

    src = tmp_path / "sd.png"
    src.write_bytes(png_with_text(texture(96, 128, 3), {"parameters": "owl\nSteps: 25, Sampler: Euler a"}))
    with Case.create(tmp_path / "case", number="17", title="Pins", analyst="Ana") as case:
        report, _ = import_and_examine(case, [src])
        eid = report.imported[0].id
        pin(case, eid, "view", "ela", "bright patch top left", {"quality": 80}, analyst="Bo")
        pin(case, eid, "alert", "generator_signature", "SD chunk present")
        pin(case, eid, "c2pa", note="no credentials")
        dropped = pin(case, eid, "view", "noise_level", "not needed")
        pin(case, eid, "declip", note="not analysed yet")
        unpin(case, eid, dropped.pin_id)
        assert [p.kind for p in pins(case, eid)] == ["view", "alert", "c2pa", "declip"]
        assert pins(case, eid)[0].pinned_by == "Bo"
        with pytest.raises(PinError, match="unknown view"):
            pin(case, eid, "view", "nope")
        with pytest.raises(PinError, match="no pin"):
            unpin(case, eid, "feedbeef")
        kept = build_report(case).path
        reader = pypdf.PdfReader(str(kept))
        pages = [re.sub(r"\s+", " ", p.extract_text() or "") for p in reader.pages]
        pinned = [t for t in pages if "pinned by the analyst" in t]
        assert len(pinned) == 2  # four pins, three a page
        text = " ".join(pinned)
        assert "Error level analysis (quality 80)" in text and "Note: bright patch top left" in text
        assert "Pinned by Bo" in text and "How to read it:" in text and "Limits" in text
        assert "Metadata alert: Generator signature" in text and "Note: SD chunk present" in text
        assert "Content Credentials: none" in text and "No successful DeCLIP analysis" in text
        assert "not needed" not in text
        assert [e.action for e in case.audit_entries([eid])].count("forensics.pinned") == 5
