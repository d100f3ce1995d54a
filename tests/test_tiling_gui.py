"""Tiled analysis in the window: the estimate before starting, the squash/tiled switch, stable regions."""

from __future__ import annotations

import pytestqt  # noqa: F401  (dev dependency: missing must fail, never skip)

from declip_desktop.analysis.tiling import analysis_mode
from declip_desktop.desktop import engine_services
from declip_desktop.gui.background import wait_for_background
from declip_desktop.gui.main_window import MainWindow
from declip_desktop.gui.settings import Settings
from tests.test_gui_app import WAIT_MS, drop, make_images, model_installed, new_case, tiny_model_dir  # noqa: F401


def _window(qtbot):
    win = MainWindow(Settings(), device="cpu", fast=False, services=engine_services())
    qtbot.addWidget(win)
    win.show()
    return win


def test_estimate_is_shown_first_then_both_maps_and_the_switch(qtbot, model_installed, tmp_path):
    win = _window(qtbot)
    try:
        asked = []
        win.tiled_action.setChecked(True)
        win.confirm_tiled = lambda text: asked.append(text) or True
        new_case(win, tmp_path)
        drop(qtbot, win, make_images(tmp_path / "src", 1, size=(300, 290)))
        qtbot.waitUntil(lambda: len(win.case.analyses()) == 2, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: not win.controller.running, timeout=WAIT_MS)
        assert asked and "Tiled analysis of 1 image: 5 forward passes (4 tiles of 224 px" in asked[0]
        assert [analysis_mode(a) for a in win.case.analyses()] == ["tiled", "squash"]

        ev = win.case.evidence_list()[0]
        win.inspector.show_evidence(ev.id)
        assert win.inspector.map_mode_combo.isEnabled()
        assert analysis_mode(win.inspector.analysis) == "squash"
        win.inspector.set_map_mode("tiled")
        assert analysis_mode(win.inspector.analysis) == "tiled"
        qtbot.waitUntil(lambda: win.inspector.prob_map is not None, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: "Tiled analysis:" in win.inspector.stable_label.text(), timeout=WAIT_MS)
        assert "stable (also in the squash map" in win.inspector.stable_label.text()
        win.inspector.set_map_mode("squash")
        assert analysis_mode(win.inspector.analysis) == "squash"
    finally:
        win.close()
        wait_for_background()


def test_declining_the_estimate_analyses_nothing(qtbot, model_installed, tmp_path):
    win = _window(qtbot)
    try:
        asked = []
        win.tiled_action.setChecked(True)
        win.confirm_tiled = lambda text: asked.append(text) or False
        new_case(win, tmp_path)
        drop(qtbot, win, make_images(tmp_path / "src", 1, size=(100, 80)))
        qtbot.waitUntil(lambda: bool(asked), timeout=WAIT_MS)
        qtbot.waitUntil(lambda: not win.controller.running, timeout=WAIT_MS)
        assert win.case.analyses() == [] and win.case.evidence_list()[0].status == "queued"
        assert "1 forward passes" not in asked[0] and "2 forward passes (1 tile of 224 px" in asked[0]
        win.inspector.show_evidence(win.case.evidence_list()[0].id)
        assert not win.inspector.map_mode_combo.isEnabled()  # no tiled map: the switch is off
    finally:
        win.close()
        wait_for_background()
