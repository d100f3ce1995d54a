"""The window's integrity view and review safety (issue 20 items 1 and 2), offscreen, no model.

Attacks: the evidence file deleted, or changed at the same size, behind the app's back; a stray
threshold key; undo after someone else changed the item; the trail replayed after undo/redo.
"""

from __future__ import annotations

import shutil

import pytest

import pytestqt  # noqa: F401  (dev dependency: missing must fail, never skip)
from PySide6.QtCore import Qt

from declip_desktop.cases import Case
from declip_desktop.gui.background import wait_for_background
from declip_desktop.gui.main_window import MainWindow
from declip_desktop.gui.settings import Settings
from tests.cases_util import noise_image


@pytest.fixture
def case_dir(tmp_path):
    folder = tmp_path / "case"
    with Case.create(folder, "I-20", "Integrity", "Ana") as case:
        for i, name in enumerate(("inpaint_model_output_first.png", "inpaint_model_output_second.png")):
            noise_image(tmp_path / "src" / name, (40, 30), seed=i)
        case.import_paths([tmp_path / "src"])
    return folder


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(Settings(tmp_path / "s.ini"))
    win.settings.analyst = "Ana"
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    yield win
    win.close()
    wait_for_background()


def status_text(win, evidence_id):
    model = win.evidence_panel.model
    return model.data(model.index(model.row_of(evidence_id), 1))


def evidence_path(case_dir, evidence_id):
    with Case.open(case_dir, read_only=True) as case:
        return case.evidence_file(case.get_evidence(evidence_id))


def open_and_show(qtbot, win, case_dir, evidence_id):
    assert win.open_case(case_dir, restore_evidence=False)
    assert win.evidence_panel.select_evidence(evidence_id)
    qtbot.waitUntil(lambda: win.inspector.evidence is not None and win.inspector.evidence.id == evidence_id)


def run_verify(qtbot, win):
    win.verify.start()
    qtbot.waitUntil(lambda: not win.verify.running, timeout=30_000)
    return win.verify.last


def test_a_deleted_evidence_file_shows_missing_locks_the_review_and_verify_names_the_file(qtbot, window, case_dir):
    path = evidence_path(case_dir, 1)
    saved = path.read_bytes()
    path.unlink()
    open_and_show(qtbot, window, case_dir, 1)
    assert status_text(window, 1) == "file missing"  # never "queued"/"done" over a file that is gone
    assert status_text(window, 2) == "queued"
    inspector = window.inspector
    assert not inspector.verdict_combo.isEnabled() and not inspector.notes_edit.isEnabled()
    assert inspector.integrity_banner.isVisible()
    assert "inpaint_model_output_first.png" in inspector.integrity_banner.text()
    # Even a direct call cannot write the review of a locked item.
    errors = []
    inspector.errorOccurred.connect(lambda m, _d: errors.append(m))
    assert not inspector._write_review(verdict="manipulated")
    assert "locked" in errors[-1] and "inpaint_model_output_first.png" in errors[-1]
    with Case.open(case_dir, read_only=True) as case:
        assert case.get_evidence(1).verdict == "not reviewed"

    outcome = run_verify(qtbot, window)
    assert not outcome.report.ok
    tree = window.verify.panel.tree
    rows = [[tree.topLevelItem(i).text(c) for c in range(3)] for i in range(tree.topLevelItemCount())]
    assert ["inpaint_model_output_first.png", "evidence file missing"] in [r[:2] for r in rows]
    assert "problem" in window.verify.status_label.text() and "Verified" in window.verify.status_label.text()
    assert window.verify.dock.isVisible()

    # Restored: verify finds it intact, the state and the lock go away; the result is remembered.
    path.write_bytes(saved)
    outcome = run_verify(qtbot, window)
    assert outcome.report.ok, outcome.report.problems
    assert status_text(window, 1) == "queued"
    assert inspector.verdict_combo.isEnabled() and not inspector.integrity_banner.isVisible()
    assert "all intact" in window.settings.last_verify(str(case_dir.resolve()))


def test_a_file_changed_at_the_same_size_is_caught_when_shown(qtbot, window, case_dir):
    path = evidence_path(case_dir, 2)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # same size: the quick check on opening cannot see it, the hash can
    path.write_bytes(bytes(data))
    open_and_show(qtbot, window, case_dir, 2)
    qtbot.waitUntil(lambda: status_text(window, 2) == "file changed", timeout=10_000)
    assert window.inspector.view.image_size() is None  # not shown as the evidence
    assert not window.inspector.verdict_combo.isEnabled()
    assert any("inpaint_model_output_second.png" in n.message for n in window.notifications.notices)


def test_a_threshold_change_is_a_view_change_until_saved(qtbot, window, case_dir):
    open_and_show(qtbot, window, case_dir, 1)
    inspector = window.inspector
    inspector.set_threshold(0.7)
    assert inspector.threshold_state_label.text() == "view only: not saved"
    inspector.flush()
    assert window.evidence_panel.select_evidence(2)  # leaving the item does not save it
    with Case.open(case_dir, read_only=True) as case:
        assert case.get_evidence(1).threshold is None and case.get_evidence(1).reviewed_by is None
        assert not [e for e in case.audit_entries() if e.action == "review.changed"]
    assert window.evidence_panel.select_evidence(1)
    assert inspector.threshold == 0.5
    inspector.set_threshold(0.62)
    inspector.verdict_combo.setCurrentText("manipulated")  # a verdict is given at the threshold shown
    with Case.open(case_dir, read_only=True) as case:
        ev = case.get_evidence(1)
        assert (ev.verdict, ev.threshold) == ("manipulated", pytest.approx(0.62))
    assert inspector.threshold_state_label.text() == "saved for this item"


def test_undo_and_redo_of_verdict_notes_and_threshold_are_audit_entries_the_trail_replays(qtbot, window, case_dir):
    open_and_show(qtbot, window, case_dir, 1)
    inspector = window.inspector
    inspector.set_threshold(0.8)
    assert inspector.save_threshold()
    inspector.verdict_combo.setCurrentText("authentic")
    qtbot.keyClicks(inspector.notes_edit, "no trace")
    inspector.flush()
    assert window.undo_action.isEnabled() and "notes of inpaint_model_output_first.png" in window.undo_action.text()

    def record():
        with Case.open(case_dir, read_only=True) as case:
            ev = case.get_evidence(1)
            return ev.threshold, ev.verdict, ev.notes

    assert record() == (0.8, "authentic", "no trace")
    window.undo_action.trigger()
    assert record() == (0.8, "authentic", "")
    window.undo_action.trigger()
    assert record() == (0.8, "not reviewed", "")
    window.undo_action.trigger()  # the first threshold of the item: undo clears it
    assert record() == (None, "not reviewed", "")
    assert inspector.threshold == 0.5 and inspector.verdict_combo.currentText() == "not reviewed"
    assert not window.undo_action.isEnabled()
    window.redo_action.trigger()
    window.redo_action.trigger()
    assert record() == (0.8, "authentic", "")
    assert inspector.threshold == pytest.approx(0.8)
    with Case.open(case_dir, read_only=True) as case:
        steps = [e for e in case.audit_entries() if e.action == "review.changed"]
        assert len(steps) == 3 + 3 + 2  # every change, undo and redo is its own entry
        assert case.check_records() == []  # and the trail replays to exactly this record

    # Someone else changes the item: undo refuses instead of overwriting their change.
    with Case.open(case_dir, analyst="Bob") as other:
        other.set_review(1, verdict="inconclusive")
    errors = []
    inspector.errorOccurred.connect(lambda m, _d: errors.append(m))
    window.undo_action.trigger()
    assert record() == (0.8, "inconclusive", "")
    assert "changed since" in errors[-1] and "Bob" in errors[-1]


def test_undo_of_another_item_selects_it(qtbot, window, case_dir):
    open_and_show(qtbot, window, case_dir, 1)
    window.inspector.verdict_combo.setCurrentText("manipulated")
    assert window.evidence_panel.select_evidence(2)
    window.undo_action.trigger()
    assert window.evidence_panel.current_evidence_id() == 1
    assert window.inspector.verdict_combo.currentText() == "not reviewed"


def test_the_name_filter_and_middle_elided_names(qtbot, window, case_dir):
    open_and_show(qtbot, window, case_dir, 1)
    panel = window.evidence_panel
    assert panel.view.textElideMode() == Qt.TextElideMode.ElideMiddle
    panel.name_filter.setText("SECOND")
    assert panel.proxy.rowCount() == 1
    index = panel.proxy.index(0, 0)
    assert panel.proxy.data(index) == "inpaint_model_output_second.png"
    assert "inpaint_model_output_second.png" in panel.proxy.data(index, Qt.ItemDataRole.ToolTipRole)
    panel.name_filter.setText("")
    assert panel.proxy.rowCount() == 2
    # A narrow name column keeps both ends of each name: the two files stay distinguishable.
    from PySide6.QtWidgets import QStyleOptionViewItem

    panel.view.setColumnWidth(0, 150)
    delegate = panel.view.itemDelegateForColumn(0)
    shown = []
    for row in range(2):
        option = QStyleOptionViewItem()
        option.initFrom(panel.view)
        index = panel.proxy.index(row, 0)
        option.rect = panel.view.visualRect(index)
        delegate.initStyleOption(option, index)
        shown.append(option.text)
    assert all("…" in text for text in shown), shown
    assert {text.split("…")[-1][-6:] for text in shown} == {"st.png", "nd.png"}


def test_dark_mode_is_a_remembered_setting_and_the_heat_scale_never_stretches(qtbot, window, tmp_path):
    import numpy as np
    from PySide6.QtGui import QImage

    from declip_desktop.gui.appearance import is_dark
    from declip_desktop.gui.render import DisplayMap, colormap_table

    window.set_appearance("dark")
    qtbot.waitUntil(is_dark, timeout=3000)
    assert Settings(tmp_path / "s.ini").appearance == "dark"
    window.set_appearance("light")
    qtbot.waitUntil(lambda: not is_dark(), timeout=3000)
    window.set_appearance("system")
    # An authentic-looking map (nothing above 0.2) keeps the colours of 0…0.2 on the fixed 0…1 scale:
    # its brightest pixel is the colour of 0.2, not the top of the colour map.
    prob = np.linspace(0.0, 0.2, 64 * 48, dtype=np.float32).reshape(48, 64)
    heat = DisplayMap(prob).heat_image("inferno").convertToFormat(QImage.Format.Format_RGB32)
    table = colormap_table("inferno")
    assert heat.pixel(63, 47) == table[51] != table[255]
    assert heat.pixel(0, 0) == table[0]


def test_at_1280_by_800_messages_float_over_the_content_and_the_toolbar_overflows(qtbot, window, case_dir):
    from PySide6.QtWidgets import QToolButton

    open_and_show(qtbot, window, case_dir, 1)
    qtbot.waitUntil(lambda: window.controller is not None and not window.controller.running, timeout=10_000)
    window.notification_bar.hide()
    before = window.stack.geometry()
    window.notifications.error("A long message " * 20, "detail")
    assert window.notification_bar.isVisible()
    assert window.stack.geometry() == before  # an overlay: nothing moved
    bar = window.notification_bar.geometry()
    central = window.centralWidget().rect()
    assert central.contains(bar) and bar.bottom() > central.height() * 0.8  # a toast at the bottom
    assert bar.height() < 120  # the long message wraps into a few lines, not a tall block
    window.resize(1920, 1080)
    qtbot.waitUntil(lambda: window.notification_bar.geometry().bottom() > 1080 * 0.8, timeout=3000)
    # Narrow the inspector: the tool bar's » menu takes what does not fit (nothing is clipped).
    toolbar = window.inspector.view_toolbar
    window.resize(1280, 800)
    window.case_view.setSizes([700, 580])
    qtbot.waitUntil(lambda: toolbar.width() < toolbar.sizeHint().width(), timeout=3000)
    extension = toolbar.findChild(QToolButton, "qt_toolbar_ext_button")
    assert extension is not None and extension.isVisible()


def test_a_fifo_in_place_of_the_evidence_is_named_and_never_opened(qtbot, window, case_dir):
    import os

    path = evidence_path(case_dir, 1)
    path.unlink()
    os.mkfifo(path)  # reading this would block forever: the app must not try
    open_and_show(qtbot, window, case_dir, 1)
    assert status_text(window, 1) == "file replaced"
    qtbot.waitUntil(lambda: "not the evidence" in window.inspector.regions_note.text(), timeout=10_000)
    assert not window.inspector.verdict_combo.isEnabled()
    outcome = run_verify(qtbot, window)  # verify names it too, without opening it
    assert any(p.kind == "not_a_file" and p.object == "evidence:1" for p in outcome.report.problems)
