"""Calibration in the desktop: the inspector's calibrated reading and threshold switch (Qt-free
state), the evidence list's reference marks (audit-logged), and the switch saved by the review flow."""

from __future__ import annotations

import numpy as np
import pytest

import pytestqt  # noqa: F401  (dev dependency: missing must fail, never skip)

from declip_desktop.cases import Case
from declip_desktop.cases import calibration as cal
from declip_desktop.gui.background import wait_for_background
from declip_desktop.gui.calibration_actions import CalibrationState
from declip_desktop.gui.inspector_model import InspectorModel
from declip_desktop.gui.main_window import MainWindow
from declip_desktop.gui.settings import Settings
from tests.cases_util import noise_image

MODEL = "c" * 64


@pytest.fixture
def case_dir(tmp_path):
    folder = tmp_path / "case"
    with Case.create(folder, "C-19", "Calibration", "Ana") as case:
        case.import_paths([noise_image(tmp_path / "src" / f"p{i}.png", (40, 30), seed=i) for i in range(6)])
        rng = np.random.default_rng(0)
        for eid in range(1, 7):
            prob = (rng.beta(2, 20, size=(30, 40)) * (3 if eid == 6 else 1)).clip(0, 1).astype(np.float32)
            case.store_result(eid, model_name="tiny", model_sha256=MODEL, parameters={}, score=0.1 * eid,
                              prob_map=prob, device="cpu", seconds=0.1, started="s", finished="f")
    return folder


def test_the_state_reads_the_item_and_switches_the_threshold_as_a_view_change(case_dir):
    with Case.open(case_dir) as case:
        made = cal.calibrate(case, [1, 2, 3, 4, 5], resamples=100)
        model = InspectorModel()
        model.set_case(case)
        model.select(6)
        state = CalibrationState()
        state.refresh(case, 6)
        assert "above 100 % of this case's authentic references (5 of 5, n = 5)" in state.text
        assert state.pixel_threshold == made.pixel.threshold and "only 5 references" in state.warning
        assert state.apply(model)
        assert model.threshold == made.pixel.threshold and model.threshold_source == "view"
        assert model.threshold_to_save() == made.pixel.threshold  # saved only by the review flow
        assert case.get_evidence(6).threshold is None
        state.refresh(case, 2)
        assert state.text.startswith("Reference-authentic")
        cal.clear_calibration(case)
        state.refresh(case, 6)
        assert state.text == "" and not state.apply(model)


def test_window_marks_references_shows_the_reading_and_saves_the_calibrated_threshold(qtbot, tmp_path, case_dir):
    win = MainWindow(Settings(tmp_path / "s.ini"))
    qtbot.addWidget(win)
    win.show()
    try:
        assert win.open_case(case_dir, restore_evidence=False)
        win.calibration.mark([1, 2, 3, 4, 5], True)
        model = win.evidence_panel.model
        assert model.data(model.index(model.row_of(3), 0)).split("\n")[1].startswith("reference")
        made = cal.calibrate(win.case, resamples=100)
        assert win.evidence_panel.select_evidence(6)
        qtbot.waitUntil(lambda: win.inspector.evidence is not None and win.inspector.evidence.id == 6)
        bar = win.calibration.bar
        assert bar.isVisible() and "authentic references (5 of 5" in bar.label.text()
        bar.use_button.click()
        assert win.inspector.model.threshold == made.pixel.threshold
        win.inspector.save_threshold()
        assert win.case.get_evidence(6).threshold == pytest.approx(made.pixel.threshold)
        win.calibration.mark([5], False)
        assert "reference" not in model.data(model.index(model.row_of(5), 0))
        actions = [e.action for e in win.case.audit_entries()]
        assert actions.count("evidence.role_changed") == 6 and "review.changed" in actions
        assert win.case.verify().ok
    finally:
        win.close()
        wait_for_background()
