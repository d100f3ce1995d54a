"""`case export` (CSV, JSON) and `case bundle` carry what an opposing expert needs beside the maps:
the analyst's annotations, the references (roles) and the calibrations with every stored value,
and each item's calibrated reading. A hand-edited annotation stops the export."""

from __future__ import annotations

import csv
import json
import sqlite3
import zipfile

import numpy as np

from declip_desktop.cases import Case
from declip_desktop.cases import annotations as ann
from declip_desktop.cases import calibration as cal
from declip_desktop.cli import main
from tests.annotation_util import CARD, analysed_case, ramp_map


def _case(tmp_path):
    d = analysed_case(tmp_path, count=3)
    with Case.open(d) as c:
        c.store_result(3, model_name="fake-model", model_sha256="f" * 64, parameters={"model_card": CARD},
                       score=0.9, prob_map=np.flipud(ramp_map()).copy(), device="cpu", seconds=0.01,
                       started="2026-12-01T10:00:00+00:00", finished="2026-12-01T10:00:01+00:00")
        cal.calibrate(c, [1, 2], resamples=100)
        ann.add_annotation(c, 3, "box", {"box": [10, 20, 30, 20]}, "=cloned sky", "seen at 400 %")
        gone = ann.add_annotation(c, 3, "lasso", {"points": [[1, 1], [50, 1], [20, 40]]}, "withdrawn")
        ann.delete_annotation(c, gone.id)
    return d


def test_csv_and_json_exports_hold_annotations_roles_and_calibration(tmp_path, capsys):
    d = _case(tmp_path)
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    assert main(["case", "export", str(d), "--out", str(out_csv)]) == 0
    assert main(["case", "export", str(d), "--out", str(out_json)]) == 0
    rows = {r["evidence_id"]: r for r in csv.DictReader(out_csv.open(encoding="utf-8"))}
    assert rows["1"]["role"] == cal.REFERENCE_ROLE and rows["3"]["role"] == ""
    assert rows["3"]["annotation_count"] == "1"
    assert rows["3"]["annotations"] == "#1 '=cloned sky' box 10, 20  30×20"  # withdrawn one left out
    assert rows["3"]["calibration_id"] == "1" and float(rows["3"]["calibrated_pixel_threshold"]) > 0
    assert rows["1"]["calibration_note"] == "this item is one of the calibration's references"

    doc = json.loads(out_json.read_text(encoding="utf-8"))
    assert doc["roles"] == {"1": cal.REFERENCE_ROLE, "2": cal.REFERENCE_ROLE}
    [made] = doc["calibrations"]
    assert made["current"] and made["n"] == 2 and [r["evidence_id"] for r in made["references"]] == [1, 2]
    item = {r["evidence_id"]: r for r in doc["evidence"]}[3]
    records = item["annotation_records"]
    assert [(a["label"], a["deleted_at"] is not None) for a in records] == [("=cloned sky", False),
                                                                            ("withdrawn", True)]
    assert records[0]["geometry"] == {"box": [10, 20, 30, 20]} and records[0]["note"] == "seen at 400 %"
    assert records[0]["author"] == "Ana"


def test_bundle_holds_annotations_roles_and_calibration(tmp_path, capsys):
    d = _case(tmp_path)
    out = tmp_path / "b.zip"
    assert main(["case", "bundle", str(d), "--out", str(out), "--evidence", "3"]) == 0
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    [item] = manifest["items"]
    assert [a["label"] for a in item["annotations"]] == ["=cloned sky"] and item["role"] is None
    assert item["calibration"]["calibration_id"] == 1 and item["calibration"]["n"] == 2
    assert manifest["roles"] == {"1": cal.REFERENCE_ROLE, "2": cal.REFERENCE_ROLE}
    [made] = manifest["calibrations"]
    assert [r["sha256"] for r in made["references"]] and made["pixel"]["threshold"] == item["calibration"][
        "pixel_threshold"]


def test_a_hand_edited_annotation_stops_the_export(tmp_path, capsys):
    d = _case(tmp_path)
    con = sqlite3.connect(d / "case.sqlite")
    with con:
        con.execute("UPDATE annotations SET evidence_id = 1 WHERE id = 1")  # re-pointed to a reference
    con.close()
    out = tmp_path / "r.json"
    assert main(["case", "export", str(d), "--out", str(out)]) == 2
    assert "does not match its audit trail" in capsys.readouterr().err and not out.exists()
