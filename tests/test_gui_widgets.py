"""GUI pieces without a model: display rendering, inspector controls and shortcuts, settings, model cards."""

from __future__ import annotations

import numpy as np
import pytest

import pytestqt  # noqa: F401  (dev dependency: missing must fail, never skip)
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from declip_desktop.gui.image_view import build_pyramid
from declip_desktop.gui.render import DisplayMap, compute_regions, threshold_level
from declip_desktop.gui.settings import Settings


def blob_map(h=300, w=400) -> np.ndarray:
    prob = np.full((h, w), 0.1, np.float32)
    prob[50:150, 60:200] = 0.9  # big region
    prob[200:230, 300:330] = 0.6  # small region, only above low thresholds
    return prob


def test_display_map_mask_follows_the_threshold_and_keeps_full_resolution_stats():
    prob = blob_map()
    dm = DisplayMap(prob, max_side=200)
    assert (dm.width, dm.height) == (200, 150)
    high = dm.mask_image(0.7).convertToFormat(QImage.Format.Format_ARGB32)
    low = dm.mask_image(0.5).convertToFormat(QImage.Format.Format_ARGB32)
    # Small region centre (x=315, y=215 in the image) is at (157, 107) in the display copy.
    assert QImage.pixelColor(high, 157, 107).alpha() == 0
    assert QImage.pixelColor(low, 157, 107).alpha() > 0
    assert QImage.pixelColor(high, 60, 50).alpha() > 0  # inside the big region
    regions = compute_regions(prob, 0.5).regions
    assert [r.area_px for r in regions] == [100 * 140, 30 * 30]
    assert regions[0].bbox == (60, 50, 140, 100)
    assert threshold_level(0.5) == 127


def test_pyramid_halves_down_to_about_a_thousand_pixels():
    image = QImage(6000, 4000, QImage.Format.Format_RGB32)
    image.fill(0xFF808080)
    levels = build_pyramid(image)
    assert [lv.width() for lv in levels] == [6000, 3000, 1500]


@pytest.fixture
def inspector(qtbot):
    from declip_desktop.gui.inspector import Inspector

    widget = Inspector(Settings())
    qtbot.addWidget(widget)
    widget.resize(1100, 700)
    widget.show()
    image = QImage(400, 300, QImage.Format.Format_RGB32)
    image.fill(0xFF406080)
    widget.display(build_pyramid(image), blob_map())
    qtbot.waitUntil(lambda: widget.region_result is not None, timeout=10_000)
    yield widget
    from declip_desktop.gui.background import wait_for_background

    wait_for_background()  # no result of this widget's work may land in the next test


def test_threshold_spin_box_and_slider_stay_in_step(qtbot, inspector):
    inspector.threshold_spin.setValue(0.55)
    assert inspector.threshold_slider.value() == 550
    assert inspector.threshold == pytest.approx(0.55)
    qtbot.waitUntil(lambda: inspector.region_result.threshold == pytest.approx(0.55), timeout=10_000)
    assert inspector.regions_model.rowCount() == 2
    inspector.threshold_slider.setValue(700)
    assert inspector.threshold_spin.value() == pytest.approx(0.7)
    qtbot.waitUntil(lambda: inspector.region_result.threshold == pytest.approx(0.7), timeout=10_000)
    assert inspector.regions_model.rowCount() == 1


def test_region_click_zooms_to_it(qtbot, inspector):
    inspector.fit()
    before = inspector.view.zoom()
    inspector.regions_table.selectRow(0)
    assert inspector.view.selection_item.isVisible()
    assert inspector.view.zoom() > before


def test_view_controls_overlay_flicker_and_zoom(qtbot, inspector):
    assert inspector.view.heat_item.isVisible()
    inspector.toggle_overlay()
    assert not inspector.overlay_visible
    inspector.toggle_overlay()
    assert inspector.overlay_visible
    inspector.toggle_flicker()
    qtbot.waitUntil(lambda: not inspector.view.heat_item.isVisible(), timeout=3000)
    inspector.toggle_flicker()
    assert inspector.view.heat_item.isVisible()
    inspector.fit()
    fit_zoom = inspector.view.zoom()
    inspector.zoom_by(2.0)
    assert inspector.view.zoom() == pytest.approx(fit_zoom * 2.0)
    inspector.actual_size()
    assert inspector.view.zoom() == pytest.approx(1.0)
    inspector.set_side_by_side(True)
    assert inspector.compare_view.isVisible()


def test_keyboard_shortcuts_reach_the_inspector(qtbot):
    from declip_desktop.desktop import engine_services
    from declip_desktop.gui.main_window import MainWindow

    win = MainWindow(Settings(), device="cpu", services=engine_services())
    qtbot.addWidget(win)
    win.show()
    image = QImage(400, 300, QImage.Format.Format_RGB32)
    image.fill(0xFF406080)
    win.stack.setCurrentWidget(win.case_view)
    win.inspector.display(build_pyramid(image), blob_map())
    start = win.inspector.threshold
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)  # window shortcuts need the active window
    # Threshold keys do nothing unless the image view has focus ...
    win.evidence_panel.view.setFocus()
    qtbot.keyClick(win.evidence_panel.view, Qt.Key.Key_BracketRight)
    assert win.inspector.threshold == pytest.approx(start)
    # ... and move it there.
    win.inspector.view.setFocus()
    qtbot.waitUntil(win.inspector.view.hasFocus, timeout=3000)
    qtbot.keyClick(win.inspector.view, Qt.Key.Key_BracketRight)
    assert win.inspector.threshold == pytest.approx(start + 0.01)
    qtbot.keyClick(win.inspector.view, Qt.Key.Key_BracketLeft)
    assert win.inspector.threshold == pytest.approx(start)
    qtbot.keyClick(win.evidence_panel.view, Qt.Key.Key_O)
    assert not win.inspector.overlay_visible
    # Typing in the notes never triggers single-key shortcuts.
    win.inspector.notes_edit.setEnabled(True)
    qtbot.keyClicks(win.inspector.notes_edit, "o]")
    assert win.inspector.notes_edit.toPlainText() == "o]"
    assert not win.inspector.overlay_visible
    win.close()


def test_settings_persist_across_instances(tmp_path):
    first = Settings(tmp_path / "s.ini")
    first.colormap = "viridis"
    first.opacity = 0.3
    first.device = "cpu"
    first.add_recent_case(tmp_path / "a")
    first.add_recent_case(tmp_path / "b")
    first.set_last_evidence(str(tmp_path / "b"), 7)
    second = Settings(tmp_path / "s.ini")
    assert (second.colormap, second.opacity, second.device) == ("viridis", 0.3, "cpu")
    # Thresholds are case facts (audit-logged in the case), never a per-machine preference.
    assert not hasattr(second, "threshold") and "view/threshold" not in second.qsettings.allKeys()
    assert second.recent_cases() == [str((tmp_path / "b").resolve()), str((tmp_path / "a").resolve())]
    assert second.last_evidence(str(tmp_path / "b")) == 7
    second.colormap = "no-such-map"
    assert Settings(tmp_path / "s.ini").colormap == "inferno"


def test_demo_models_are_marked_not_for_casework():
    from declip_desktop.common.model_card import ModelCard
    from declip_desktop.gui.models_dialog import card_html, describe_model

    card = ModelCard(name="starter", kind="starter", demo=True, label="demo model — not for casework", sha256="ab" * 32)
    assert "not for casework" in describe_model(card)
    assert "not for casework" in card_html(card)
    real = ModelCard(name="vit-ldm", backbone="ViT-L/14", layer="layer20", decoder="conv-20", training_set="ldm",
                     sha256="cd" * 32)
    html = card_html(real)
    assert "casework" not in describe_model(real)
    for text in ("ViT-L/14", "layer20", "conv-20", "ldm", "cd" * 32):
        assert text in html


def test_outline_path_matches_the_contours():
    from declip_desktop.gui.render import path_from_contours

    square = np.array([[10, 10], [20, 10], [20, 20], [10, 20]])
    triangle = np.array([[50, 5], [60, 5], [55, 15]])
    path = path_from_contours([square, triangle])
    assert path.elementCount() == 5 + 4
    first, second = path.elementAt(0), path.elementAt(5)
    assert (first.type, first.x, first.y) == (first.type.MoveToElement, 10.5, 10.5)
    assert (second.type, second.x, second.y) == (second.type.MoveToElement, 50.5, 5.5)
    assert path.elementAt(4).x == 10.5 and path.elementAt(4).y == 10.5  # closed
    rect = path.boundingRect()
    assert (rect.left(), rect.top(), rect.right(), rect.bottom()) == (10.5, 5.5, 60.5, 20.5)
    assert path_from_contours([]).isEmpty()


def test_importing_the_window_does_not_import_torch():
    """The window must open fast: torch is imported later, off the UI thread."""
    import subprocess
    import sys

    code = ("import sys, declip_desktop.gui.app, declip_desktop.gui.main_window; "
            "print(sorted(m for m in ('torch', 'open_clip', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_case_default_threshold_is_set_from_the_window_and_audit_logged(qtbot, tmp_path):
    from declip_desktop.cases.case_settings import case_threshold
    from declip_desktop.desktop import engine_services
    from declip_desktop.gui.main_window import MainWindow
    from tests.cases_util import noise_image

    win = MainWindow(Settings(tmp_path / "s.ini"), device="cpu", services=engine_services())
    qtbot.addWidget(win)
    assert win.create_case(str(tmp_path / "case"), "T-1", "Thresholds", "Ana")
    for i in range(2):
        noise_image(tmp_path / "src" / f"{i}.png", (32, 24), seed=i)
    win.case.import_paths([tmp_path / "src"])
    win.reload_evidence()
    win.inspector.show_evidence(1)
    assert (win.inspector.threshold, win.inspector.model.threshold_source) == (0.5, "default")
    win.inspector.set_threshold(0.3)
    win._set_default_threshold()  # View → Use this threshold as the case's default
    assert case_threshold(win.case) == (0.3, "case")
    change = [e for e in win.case.audit_entries() if e.action == "setting.changed"][-1]
    assert change.details == {"key": "threshold", "old": None, "new": 0.3} and change.actor == "Ana"
    win.inspector.show_evidence(2)  # never reviewed: opens at the case's default
    assert (win.inspector.threshold, win.inspector.model.threshold_source) == (0.3, "case")
    assert win.inspector.threshold_spin.value() == pytest.approx(0.3)
    # Moving the slider was a view change: item 1 has no threshold of its own, it follows the default.
    assert win.case.get_evidence(1).threshold is None
    win.close()


def test_a_new_overlay_layer_gets_its_check_box_and_follows_the_overlay_rules(qtbot):
    from PySide6.QtWidgets import QGraphicsRectItem

    from declip_desktop.gui.inspector import Inspector
    from declip_desktop.gui.inspector_model import Layer

    inspector = Inspector(Settings(path=__import__("pathlib").Path(__import__("tempfile").mkdtemp()) / "s.ini"))
    qtbot.addWidget(inspector)
    inspector.display(build_pyramid(QImage(80, 60, QImage.Format.Format_RGB32)), blob_map(60, 80))
    item = QGraphicsRectItem(0, 0, 10, 10)
    inspector.view.scene().addItem(item)
    box = inspector.add_overlay_layer(Layer("ela", "Error level", visible=True), item, before="mask")
    assert box.text() == "Error level" and item.isVisible()
    bar = inspector._layer_bar
    assert bar.indexOf(inspector.heat_check) < bar.indexOf(box) < bar.indexOf(inspector.mask_check)
    box.setChecked(False)
    assert not item.isVisible() and not inspector.model.layer("ela").visible
    box.setChecked(True)
    inspector.toggle_overlay()  # O hides every overlay, the new one too
    assert not item.isVisible()
