"""Agreement and stability in the desktop app (issue 19 items 3–4): the Qt-free state on constructed
maps, then the real window with two tiny models."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest

import pytestqt  # noqa: F401  (dev dependency: missing must fail, never skip)
from PySide6.QtWidgets import QApplication

# At collection, before any report test makes the process's Qt application a QGuiApplication
# (reports.fonts), which cannot host the window's widgets.
app = QApplication.instance() or QApplication([])

from declip_desktop.cases.stability_store import checks
from declip_desktop.common.stability import RegionStability
from declip_desktop.gui.agreement_view import ALL_RGBA, ONE_RGBA, ItemMaps, RobustnessState, count_rgba
from tests.robustness_util import _two_tiny_model_files, two_tiny_models  # noqa: F401 (fixtures)
from tests.test_gui_app import make_images, wait_idle

WAIT_MS = 120_000


def test_state_counts_colours_and_cells_on_constructed_maps():
    a = np.zeros((20, 30), np.float32)
    a[2:7, 2:7] = 0.9
    a[10:15, 20:26] = 0.8
    b = np.zeros_like(a)
    b[2:7, 2:7] = 0.7
    state = RobustnessState()
    state.set_item(ItemMaps(names=["ldm", "lama"], maps=[a, b]))
    view = state.compute(0.5)
    assert view.rgba.shape == (20, 30, 4)
    assert tuple(view.rgba[3, 3]) == ALL_RGBA and tuple(view.rgba[12, 22]) == ONE_RGBA and view.rgba[0, 0, 3] == 0
    state.view = view
    small = SimpleNamespace(bbox=(2, 2, 5, 5), area_px=25)
    big = SimpleNamespace(bbox=(20, 10, 6, 5), area_px=30)
    assert state.agreement_cell(small)[:1] == ("all 2",)
    text, tip, alert = state.agreement_cell(big)
    assert text == "only ldm" and alert and "one checkpoint only" in tip and "lama: 0 %" in tip
    assert "agreement" in view.note and "2 models (ldm, lama)" in view.note
    state.set_mode("spread")
    spread = state.compute(0.5).rgba
    assert spread[12, 22, 3] > spread[3, 3, 3] > 0 and spread[0, 0, 3] == 0  # 0.8 vs 0: large; 0.9 vs 0.7: small
    with pytest.raises(ValueError):
        state.set_mode("votes")
    # Stability: shown for the check's threshold only.
    region = RegionStability(1, 30, (20, 10, 6, 5), {"jpeg90": 1.0, "blur1": 0.2}, ("jpeg90",))
    check = SimpleNamespace(threshold=0.5, region_for=lambda bbox, area: region if bbox == (20, 10, 6, 5) else None,
                            variant_labels=lambda: {"jpeg90": "JPEG 90", "blur1": "blur"})
    state.item.stability = check
    assert state.stability_cell(big, 0.5)[0] == "1/2" and state.stability_cell(big, 0.5)[2]
    assert "blur: IoU 0.20 (lost)" in state.stability_cell(big, 0.5)[1]
    assert state.stability_cell(big, 0.4)[0] == "—" and "threshold 0.500" in state.stability_cell(big, 0.4)[1]
    assert count_rgba(np.array([[0, 1, 2, 3]], np.uint8), 3)[0, 2, 3] > 0


def test_window_analyses_with_two_models_shows_agreement_and_checks_stability(qtbot, two_tiny_models, tmp_path):
    from declip_desktop.desktop import engine_services
    from declip_desktop.gui.background import wait_for_background
    from declip_desktop.gui.main_window import MainWindow
    from declip_desktop.gui.settings import Settings

    win = MainWindow(Settings(), device="cpu", fast=False, services=engine_services())
    qtbot.addWidget(win)
    win.show()
    try:
        assert win.create_case(str(tmp_path / "case"), "19", "Agreement", "Ana")
        wait_idle(qtbot, win)
        win.case.import_paths(make_images(tmp_path / "img", 1))
        win.reload_evidence()
        assert win.robustness_actions.start(["tiny-a", "tiny-b"], None)
        wait_idle(qtbot, win)
        results = win.case.analyses(1)
        assert sorted(a.model_name for a in results) == ["tiny-a", "tiny-b"]
        assert win.case.latest_analysis(1).model_name == "tiny-a"  # the first ticked: the primary
        panel = win.inspector.robustness
        win.inspector.show_evidence(1)
        win.inspector.set_threshold(0.0)  # every pixel above: one region, flagged by both
        qtbot.waitUntil(lambda: panel.state.view is not None and bool(panel.state.view.cells), timeout=WAIT_MS)
        model = win.inspector.regions_model
        headers = [model.headerData(c, pytestqt.qt_compat.qt_api.QtCore.Qt.Orientation.Horizontal)
                   for c in range(model.columnCount())]
        assert headers[-2:] == ["Flagged by", "Stable in"]
        qtbot.waitUntil(lambda: model.rowCount() > 0 and model.data(model.index(0, len(headers) - 2)) == "all 2",
                        timeout=WAIT_MS)
        win.inspector.model.set_layer_visible("agreement", True)
        assert panel.layer.isVisible() and not panel.layer.pixmap().isNull()

        assert win.robustness_actions.check_stability()  # at the threshold on screen (0.0), not the saved one
        qtbot.waitUntil(lambda: bool(checks(win.case, 1)), timeout=WAIT_MS)
        assert checks(win.case, 1)[0].threshold == 0.0
        wait_for_background()
        win.inspector.set_threshold(0.0)
        qtbot.waitUntil(lambda: panel.state.item is not None and panel.state.item.stability is not None,
                        timeout=WAIT_MS)
        qtbot.waitUntil(lambda: model.rowCount() > 0 and model.data(model.index(0, len(headers) - 1)) == "4/4",
                        timeout=WAIT_MS)
        assert win.case.verify().ok
    finally:
        win.close()
        wait_for_background()
        shutil.rmtree(tmp_path / "img", ignore_errors=True)


def test_the_models_dialog_needs_two_ticks(qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QDialogButtonBox

    from declip_desktop.gui.robustness_actions import ModelsChoice

    cards = [SimpleNamespace(name=n, sha256=n * 64, demo=False, label="", kind="declip") for n in "abc"]
    dialog = ModelsChoice(cards, {"b"})
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert dialog.names() == ["b"] and not ok.isEnabled()
    dialog.list.item(2).setCheckState(Qt.CheckState.Checked)
    assert dialog.names() == ["b", "c"] and ok.isEnabled()


def test_added_columns_line_up_in_the_table_with_annotation_rows():
    from PySide6.QtCore import Qt

    from declip_desktop.common.regions import Region
    from declip_desktop.gui.annotation_rows import RegionsTableModel

    model = RegionsTableModel()
    model.add_column("Flagged by", lambda r: (f"flags {r.index}", "tip", r.index == 2))
    shape = SimpleNamespace(bbox=lambda: (1, 2, 3, 4), area_px=lambda: 12.0, describe=lambda: "box")
    note = SimpleNamespace(id=1, label="sky", kind="box", note="", author="Ana", created_at="t", edited_by=None,
                           edited_at=None, shape=shape)
    model.set_annotations([note], {}, (10, 10))
    model.set_regions([Region(1, 30, 30.0, (0, 0, 5, 6), 0.8, 0.9), Region(2, 5, 5.0, (7, 7, 1, 5), 0.6, 0.7)])
    last = model.columnCount() - 1
    assert model.headerData(last, Qt.Orientation.Horizontal) == "Flagged by"
    assert model.data(model.index(0, last)) is None  # the annotation row: not a map region
    assert [model.data(model.index(r, last)) for r in (1, 2)] == ["flags 1", "flags 2"]
    assert model.data(model.index(2, last), Qt.ItemDataRole.ForegroundRole) is not None  # alert: red
    assert model.data(model.index(1, 1)) == "map region" and model.data(model.index(1, 0)) == "1"
    for row in range(model.rowCount()):  # every cell answers every role without raising
        for col in range(model.columnCount()):
            for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.UserRole):
                model.data(model.index(row, col), role)
