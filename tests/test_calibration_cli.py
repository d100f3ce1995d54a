"""`declip case calibrate` end to end with a tiny model: references analysed for real, calibrated,
listed, read in `case status`, cleared; every change verified clean by `case verify`."""

from __future__ import annotations

import json

import pytest

from declip_desktop.cases import Case
from declip_desktop.cases import calibration as cal
from declip_desktop.cli import main
from tests.cases_util import noise_image


@pytest.fixture
def analysed(tmp_path, capsys):
    from tests.factories import install_tiny_model

    d = tmp_path / "case"
    assert main(["case", "create", str(d), "--number", "2026-19", "--title", "phone", "--analyst", "Ana"]) == 0
    src = tmp_path / "src"
    for i in range(12):  # 11 photos "from the same phone" and the questioned one
        noise_image(src / f"p{i:02d}.png", seed=i, size=(40, 32))
    assert main(["case", "import", str(d), str(src)]) == 0
    card = install_tiny_model(name="calib-tiny")
    assert main(["case", "analyze", str(d), "--model", "calib-tiny", "--device", "cpu"]) == 0
    capsys.readouterr()
    return d, card


def test_calibrate_list_status_clear(analysed, capsys):
    d, card = analysed
    refs = [str(i) for i in range(1, 12)]
    assert main(["case", "calibrate", str(d), "--references", *refs, "--false-alarm", "0.1", "--pixel-rate", "0.01",
                 "--seed", "5", "--resamples", "200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    made = out["calibration"]
    assert made["n"] == 11 and made["model_sha256"] == card.sha256 and made["seed"] == 5
    assert made["resamples"] == 200 and made["image_rate"] == 0.1 and made["warning"] is None
    [row] = out["readings"]
    assert row["evidence_id"] == 12 and row["n"] == 11
    assert row["text"].startswith(f"score {row['score']:.2f} — above ")
    assert row["regions_at_pixel_threshold"] >= 0

    assert main(["case", "status", str(d)]) == 0
    text = capsys.readouterr().out
    assert "Reference-authentic evidence: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 (not questioned items)" in text
    assert "pixel threshold" in text and "of this case's authentic references (" in text
    assert main(["case", "status", str(d), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)["calibration"]
    assert status["roles"]["3"] == cal.REFERENCE_ROLE and status["calibrated"][0]["evidence_id"] == 12

    # recalibrating on fewer references is a new calibration with a warning; the list shows both
    assert main(["case", "calibrate", str(d), "--unmark", "9", "10", "11", "--recalibrate", "--resamples", "100"]) == 0
    assert "WARNING: only 8 references (at least 10 recommended)" in capsys.readouterr().out
    assert main(["case", "calibrate", str(d), "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [c["n"] for c in listed["calibrations"]] == [11, 8] and listed["current"] == [2]
    assert main(["case", "calibrate", str(d), "--clear"]) == 0
    assert "Cleared 2 calibration(s)" in capsys.readouterr().out
    assert main(["case", "verify", str(d)]) == 0
    with Case.open(d, read_only=True) as case:
        actions = [e.action for e in case.audit_entries()]
    assert actions.count("calibration.computed") == 2 and actions.count("calibration.cleared") == 2
    assert actions.count("evidence.role_changed") == 14


def test_errors_are_specific_and_change_nothing(analysed, capsys):
    d, _card = analysed
    assert main(["case", "calibrate", str(d)]) == 2
    assert "has no reference-authentic evidence" in capsys.readouterr().err
    assert main(["case", "calibrate", str(d), "--references", "1", "77"]) == 2
    assert "no evidence with ID 77" in capsys.readouterr().err
    assert main(["case", "calibrate", str(d), "--references", "1", "2", "--false-alarm", "5"]) == 2
    assert "(not 5)" in capsys.readouterr().err
    with Case.open(d, read_only=True) as case:
        assert cal.reference_ids(case) == [] and cal.calibrations(case) == []
