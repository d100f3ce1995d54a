"""Calibration read by an adversary: an item that is one of the calibration's own references but
is no longer marked (so it reads as questioned), a result of a model the case is not calibrated
for, a mistyped model to clear, a single reference."""

from __future__ import annotations

import numpy as np
import pytest

from declip_desktop.cases import Case, CaseError
from declip_desktop.cases import calibration as cal
from declip_desktop.cli import main
from tests.cases_util import noise_image

MODEL, OTHER = "d" * 64, "e" * 64


def _store(case, eid, score, sha=MODEL):
    prob = np.full((32, 40), score * 0.5, dtype=np.float32)
    case.store_result(eid, model_name="tiny" if sha == MODEL else "other", model_sha256=sha, parameters={},
                      score=float(score), prob_map=prob, device="cpu", seconds=0.1, started="s", finished="f")


@pytest.fixture
def case_dir(tmp_path):
    d = tmp_path / "case"
    with Case.create(d, number="2026-0191", title="edges", analyst="ana") as c:
        c.import_paths([noise_image(tmp_path / "in" / f"p{i:02d}.png", seed=i, size=(40, 32)) for i in range(5)])
        for eid in range(1, 6):
            _store(c, eid, 0.1 + 0.05 * eid)
    return d


def test_an_unmarked_reference_reads_with_a_note_everywhere(case_dir, capsys):
    from declip_desktop.reports.calibration_section import collect_calibration

    with Case.open(case_dir) as c:
        cal.calibrate(c, [1, 2, 3, 4], resamples=100)
        cal.set_reference(c, [4], False)  # no longer marked: a questioned item again, but still in the calibration
        read = cal.reading(c, 4)
        assert "NOTE: this item is one of the calibration's references" in read.text()
        rows = dict(collect_calibration(c).rows_for(c, c.get_evidence(4)))
        assert "NOTE: this item is one of the calibration's references" in rows["Calibrated reading"]
        assert "NOTE" not in cal.reading(c, 5).text()
    assert main(["case", "status", str(case_dir)]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("4 ") and "references" in ln][0]
    assert "NOTE: this item is one of the calibration's references" in line


def test_a_result_of_another_model_says_why_it_is_not_calibrated(case_dir, capsys):
    from declip_desktop.reports.calibration_section import collect_calibration

    with Case.open(case_dir) as c:
        cal.calibrate(c, [1, 2, 3], resamples=100)
        _store(c, 5, 0.9, sha=OTHER)
        assert cal.reading(c, 5) is None
        why = cal.uncalibrated_reason(c, 5)
        assert "other" in why and "eeeeeeeeeeee" in why and "tiny" in why
        rows = dict(collect_calibration(c).rows_for(c, c.get_evidence(5)))
        assert rows["Calibrated reading"] == why
        assert cal.uncalibrated_reason(c, 4) is None  # calibrated: nothing to explain
    assert main(["case", "status", str(case_dir)]) == 0
    assert f"p04.png: calibrated reading {why}" in capsys.readouterr().out
    with Case.open(case_dir) as c:
        from declip_desktop.gui.calibration_actions import CalibrationState

        state = CalibrationState()
        state.refresh(c, 5)
        assert why in state.text and state.pixel_threshold is None


def test_clearing_a_model_without_calibration_is_an_error(case_dir, capsys):
    assert main(["case", "calibrate", str(case_dir), "--references", "1", "2", "--resamples", "100"]) == 0
    capsys.readouterr()
    assert main(["case", "calibrate", str(case_dir), "--clear", "--model-sha256", "abc"]) == 2
    assert "no calibration of the model abc… is in force; nothing was cleared" in capsys.readouterr().err
    with Case.open(case_dir, read_only=True) as c:
        assert len(cal.current_calibrations(c)) == 1


def test_one_reference_warning_is_grammatical(case_dir):
    with Case.open(case_dir) as c:
        made = cal.calibrate(c, [1], resamples=100)
    assert "1 reference cannot promise" in made.warning and "1 references" not in made.warning


def test_calibrating_on_an_item_never_analysed_names_it(tmp_path):
    d = tmp_path / "case"
    with Case.create(d, number="2026-0192", title="none", analyst="ana") as c:
        c.import_paths([noise_image(tmp_path / "in" / f"p{i}.png", seed=i) for i in range(2)])
        _store(c, 1, 0.2)
        with pytest.raises(CaseError, match="reference 2 has no result of the model"):
            cal.calibrate(c, [1, 2], resamples=100)
        assert cal.reference_ids(c) == [] and cal.calibrations(c) == []


def test_a_process_killed_while_storing_a_calibration_leaves_no_half_of_it(case_dir):
    import subprocess
    import sys

    script = (
        "import os, signal\n"
        "from declip_desktop.cases import Case, audit\n"
        "from declip_desktop.cases import calibration as cal\n"
        "real = audit.append\n"
        "def append(conn, actor, action, *a, **k):\n"
        "    out = real(conn, actor, action, *a, **k)\n"
        "    if action == 'calibration.computed':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)  # row and entry written, not committed\n"
        "    return out\n"
        "audit.append = append\n"
        f"with Case.open({str(case_dir)!r}) as c:\n"
        "    cal.calibrate(c, [1, 2, 3], resamples=100)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    with Case.open(case_dir) as c:
        assert cal.calibrations(c) == [] and cal.reference_ids(c) == [1, 2, 3]  # the marks were their own step
        assert c.verify().problems == []
        assert cal.calibrate(c, resamples=100).n == 3  # and calibrating again works


def test_an_item_judged_manipulated_cannot_be_a_reference(case_dir, capsys):
    with Case.open(case_dir) as c:
        c.set_review(2, verdict="manipulated")
    assert main(["case", "calibrate", str(case_dir), "--references", "1", "2", "3", "--resamples", "100"]) == 2
    err = capsys.readouterr().err
    assert "p01.png (evidence 2) is 'manipulated'; nothing was marked" in err
    with Case.open(case_dir) as c:
        assert cal.reference_ids(c) == [] and cal.calibrations(c) == []
        with pytest.raises(CaseError, match="must be known to be authentic"):
            cal.set_reference(c, [2])
        cal.set_reference(c, [2], False)  # unmarking is always possible
