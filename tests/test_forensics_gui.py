"""The inspector's Metadata and Views tabs and the evidence-list badges, driven on a real case."""

from __future__ import annotations

import pytest

from declip_desktop.cases import Case
from declip_desktop.examination import import_and_examine
from declip_desktop.gui.settings import Settings
from tests.forensics_files import png_with_text, texture


@pytest.fixture
def examined_case(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "sd.png").write_bytes(png_with_text(texture(120, 160, 1), {"parameters": "fox\nSteps: 20, Sampler: Euler"}))
    (src / "plain.png").write_bytes(png_with_text(texture(120, 160, 2), {}))
    (src / "comfy.png").write_bytes(png_with_text(texture(120, 160, 3), {
        "prompt": '{"3": {"class_type": "KSampler", "inputs": {"seed": 5}}}'}))
    case = Case.create(tmp_path / "case", number="17", title="GUI", analyst="Ana")
    report, _ = import_and_examine(case, [src])
    yield case, {e.original_name: e.id for e in report.imported}
    case.close()


@pytest.fixture
def inspector(qtbot, examined_case):
    from declip_desktop.gui.inspector import Inspector

    widget = Inspector(Settings())
    qtbot.addWidget(widget)
    widget.resize(1100, 700)
    widget.show()
    widget.set_case(examined_case[0])
    return widget


def test_metadata_tab_shows_alerts_tree_search_and_raw(qtbot, inspector, examined_case):
    _, ids = examined_case
    tab = inspector.forensics.metadata_tab
    inspector.show_evidence(ids["sd.png"])
    qtbot.waitUntil(lambda: tab.record is not None, timeout=10_000)
    assert "Generator signature" in tab.alerts.toPlainText()
    assert "Content Credentials (C2PA): none" in tab.alerts.toPlainText()
    assert "proves nothing" in tab.alerts.toPlainText()
    assert "Steps: 20" in tab.raw.toPlainText()
    tab.search.setText("sampler")
    visible = []

    def walk(item):
        if not item.isHidden():
            visible.append((item.text(0), item.text(1)))
        for i in range(item.childCount()):
            walk(item.child(i))

    for i in range(tab.tree.topLevelItemCount()):
        walk(tab.tree.topLevelItem(i))
    assert ("parameters", "fox ⏎ Steps: 20, Sampler: Euler") in visible
    assert all(name in ("png_text", "parameters") for name, _ in visible)
    inspector.show_evidence(ids["comfy.png"])
    qtbot.waitUntil(lambda: tab.record is not None and "ComfyUI" in tab.alerts.toPlainText(), timeout=10_000)
    tab.search.setText("KSampler")  # inside the JSON of the prompt chunk, shown as a tree
    found = []

    def walk2(item, path):
        if not item.isHidden() and item.text(1) == "KSampler":
            found.append(path + [item.text(0)])
        for i in range(item.childCount()):
            walk2(item.child(i), path + [item.text(0)])

    for i in range(tab.tree.topLevelItemCount()):
        walk2(tab.tree.topLevelItem(i), [])
    assert found == [["png_text", "prompt", "3", "class_type"]]
    inspector.show_evidence(ids["plain.png"])
    qtbot.waitUntil(lambda: tab.record is not None and "Generator" not in tab.alerts.toPlainText(), timeout=10_000)


def test_views_tab_computes_off_the_ui_thread_and_toggles_like_a_layer(qtbot, inspector, examined_case):
    case, ids = examined_case
    inspector.show_evidence(ids["sd.png"])
    views = inspector.forensics.views_tab
    views.view_combo.setCurrentIndex(views.view_combo.findData("ela"))
    assert views.status.text().startswith("Computing")  # returned before the work was done
    qtbot.waitUntil(lambda: views.last_result is not None, timeout=10_000)
    assert views.last_result.name == "ela" and views.layer.isVisible()
    assert "Limits" in views.explanation.toPlainText()
    rect = views.layer.mapRectToScene(views.layer.boundingRect())
    assert (round(rect.width()), round(rect.height())) == (160, 120)  # stretched over the photo
    toggle = inspector.layer_checks["forensic_view"]  # in the inspector's bar, like Heat and Mask
    toggle.setChecked(False)
    assert not views.layer.isVisible()
    toggle.setChecked(True)
    assert views.layer.isVisible()
    inspector.toggle_overlay()  # the overlay key hides it with the other overlays
    assert not views.layer.isVisible()
    inspector.toggle_overlay()
    views_dir = case.path / "forensics" / str(ids["sd.png"]) / "views"
    qtbot.waitUntil(lambda: any(views_dir.glob("ela-*.json")), timeout=10_000)  # cached after it was shown
    views.view_combo.setCurrentIndex(0)
    views.view_combo.setCurrentIndex(views.view_combo.findData("ela"))
    qtbot.waitUntil(lambda: views.last_result is not None, timeout=10_000)
    assert views.last_result.cached and "from the case's cache" in views.status.text()
    views.view_combo.setCurrentIndex(views.view_combo.findData("copy_move"))
    qtbot.waitUntil(lambda: views.last_result is not None and views.last_result.name == "copy_move", timeout=10_000)
    inspector.show_evidence(None)
    assert views.layer.pixmap().isNull()


def test_evidence_list_badges(qtbot, examined_case):
    from declip_desktop.gui.evidence_panel import EvidencePanel
    from declip_desktop.gui.forensics_panel import refresh_badges

    case, ids = examined_case
    panel = EvidencePanel()
    qtbot.addWidget(panel)
    panel.set_content(case.evidence_list(), [])
    refresh_badges(panel, case)
    qtbot.waitUntil(lambda: bool(panel.model.badges), timeout=10_000)
    row = panel.model.row_of(ids["sd.png"])
    text = panel.model.data(panel.model.index(row, 0))
    assert text.startswith("sd.png") and "⚠1" in text
    plain = panel.model.data(panel.model.index(panel.model.row_of(ids["plain.png"]), 0))
    assert plain == "plain.png"  # nothing to flag: no badge
    tip = panel.model.data(panel.model.index(row, 0), role=3)  # ToolTipRole
    assert "generator_signature" in tip


def test_pinning_from_the_views_tab(qtbot, inspector, examined_case):
    from declip_desktop.pins import pins

    case, ids = examined_case
    eid = ids["sd.png"]
    inspector.show_evidence(eid)
    views = inspector.forensics.views_tab
    box = views.pins
    errors = []
    box.failed.connect(lambda m, d: errors.append(m))
    box.pin_selected()  # nothing shown yet: refused with a clear message
    assert errors and "Choose a classical view first" in errors[0] and pins(case, eid) == []
    views.view_combo.setCurrentIndex(views.view_combo.findData("ela"))
    qtbot.waitUntil(lambda: views.last_result is not None, timeout=10_000)
    box.note.setText("look at the sky")
    box.pin_selected()
    qtbot.waitUntil(lambda: any(a.get("code") == "generator_signature" for a in box.alerts), timeout=10_000)
    box.what.setCurrentIndex(box.what.findData("alert:generator_signature"))
    box.pin_selected()
    got = pins(case, eid)
    assert [(p.kind, p.ref, p.note) for p in got] == [("view", "ela", "look at the sky"), ("alert", "generator_signature", "")]
    assert got[0].params == {"quality": 90} and box.list.count() == 2
    box.list.setCurrentRow(0)
    box.remove_selected()
    assert [p.kind for p in pins(case, eid)] == ["alert"] and box.list.count() == 1


def test_c2pa_summary_regions_and_badge(qtbot, tmp_path):
    from tests.c2pa_files import MANIFEST, make_credentials, sign
    from declip_desktop.gui.evidence_panel import EvidencePanel
    from declip_desktop.gui.forensics_panel import refresh_badges
    from declip_desktop.gui.inspector import Inspector
    from tests.forensics_files import jpeg_bytes

    src = tmp_path / "signed.jpg"
    src.write_bytes(sign(make_credentials(), jpeg_bytes(texture(64, 96, 2), 90), MANIFEST))
    with Case.create(tmp_path / "case", number="17", title="C2PA", analyst="Ana") as case:
        report, _ = import_and_examine(case, [src])
        eid = report.imported[0].id
        widget = Inspector(Settings())
        qtbot.addWidget(widget)
        widget.set_case(case)
        widget.show_evidence(eid)
        tab = widget.forensics.metadata_tab
        qtbot.waitUntil(lambda: tab.record is not None, timeout=10_000)
        text = tab.alerts.toPlainText()
        assert "valid, signer not trusted here" in text and "Test signer" in text
        assert "trainedAlgorithmicMedia" in text and "Content Credentials declare generative AI" in text
        (outline,) = widget.forensics.views_tab.outlines  # the declared edit region, drawn over the photo
        rect = outline.polygon().boundingRect()
        assert (rect.x(), rect.y(), rect.width(), rect.height()) == (10, 12, 30, 20)
        panel = EvidencePanel()
        qtbot.addWidget(panel)
        panel.set_content(case.evidence_list(), [])
        refresh_badges(panel, case)
        qtbot.waitUntil(lambda: bool(panel.model.badges), timeout=10_000)
        assert "CR✓" in panel.model.data(panel.model.index(0, 0))
        widget.set_case(None)


def test_closing_the_case_while_imports_are_examined_is_safe(qtbot, tmp_path, monkeypatch):
    """The examination after an import runs on its own connection: the analyst closing the case
    meanwhile must neither crash the program (SQLite under a closed connection) nor lose the record."""
    import threading

    from declip_desktop.desktop import engine_services
    from declip_desktop.examination import load_examination, records
    from declip_desktop.gui.background import wait_for_background
    from declip_desktop.gui.main_window import MainWindow

    started, release = threading.Event(), threading.Event()
    real = records.read_metadata

    def held(path):
        started.set()
        release.wait(20)
        return real(path)

    monkeypatch.setattr(records, "read_metadata", held)
    win = MainWindow(Settings(), device="cpu", fast=False, services=engine_services())
    qtbot.addWidget(win)
    folder = tmp_path / "case"
    assert win.create_case(str(folder), "17", "close during examination", "Ana")
    src = tmp_path / "sd.png"
    src.write_bytes(png_with_text(texture(48, 64, 5), {"parameters": "x\nSteps: 5, Sampler: Euler"}))
    win.import_paths([str(src)])
    assert started.wait(30)
    win.close_case(go_to_start=False)  # while the examination is held inside its pool job
    release.set()
    assert wait_for_background(30_000)
    with Case.open(folder) as case:
        exam = load_examination(case, 1)
        assert exam is not None and any(a["code"] == "generator_signature" for a in exam.alerts)
