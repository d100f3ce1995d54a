"""Annotations in the inspector (issue 18 item 6, issue 20 item 5), offscreen, no model.

Drawing must store the image pixels under the pointer at any zoom and devicePixelRatio (a
DPR-2 child process checks that a 30×40 logical-pixel drag at 200 % zoom is 30×40 image pixels,
not 60×80 or 15×20); keys act only while the image has focus; a locked item cannot be
annotated; undo / redo are audit entries the trail replays; the regions table states the map's
statistics inside each annotation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pytestqt  # noqa: F401  (dev dependency: missing must fail, never skip)
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from declip_desktop.cases import Case
from declip_desktop.cases.annotations import annotations as stored_annotations
from declip_desktop.gui.background import wait_for_background
from declip_desktop.gui.main_window import MainWindow
from declip_desktop.gui.settings import Settings
from tests.annotation_util import HEIGHT, WIDTH, analysed_case, ramp_map


@pytest.fixture
def case_dir(tmp_path):
    return analysed_case(tmp_path)


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


def show(qtbot, win, case_dir, evidence_id=1):
    assert win.open_case(case_dir, restore_evidence=False)
    assert win.evidence_panel.select_evidence(evidence_id)
    qtbot.waitUntil(lambda: win.inspector.view.full_image() is not None and win.inspector.prob_map is not None,
                    timeout=15_000)
    return win.inspector


def drag(view, start: QPoint, points: list[QPoint]) -> None:
    viewport = view.viewport()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for point in points:
        QTest.mouseMove(viewport, point)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[-1])


def stored(case_dir, include_deleted=False):
    with Case.open(case_dir, read_only=True) as case:
        return stored_annotations(case, 1, include_deleted=include_deleted)


def test_a_box_drawn_at_zoom_two_stores_image_pixels_and_is_listed_with_map_statistics(qtbot, window, case_dir):
    inspector = show(qtbot, window, case_dir)
    view = inspector.view
    view.setFocus()
    view.set_zoom(2.0)
    view.centerOn(QPointF(WIDTH / 2, HEIGHT / 2))
    QTest.keyClick(view, Qt.Key.Key_B)  # the box tool, while the image has focus
    assert inspector.annotations.tool == "box" and inspector.box_action.isChecked()
    asked = []
    inspector.ask_label = lambda title, label="", note="": asked.append(title) or ("cloned sky", "seen at 200 %")
    start = view.mapFromScene(QPointF(10, 20))
    # 60×40 logical pixels at zoom 2 (devicePixelRatio 1 here) are 30×20 image pixels.
    drag(view, start, [start + QPoint(20, 10), start + QPoint(60, 40)])
    assert asked == ["Label the box"]
    assert view.zoom() == pytest.approx(2.0)  # the new annotation is selected, but the view does not jump
    [annotation] = stored(case_dir)
    assert annotation.geometry == {"box": [10, 20, 30, 20]}
    assert (annotation.label, annotation.note, annotation.author) == ("cloned sky", "seen at 200 %", "Ana")
    # Listed first in the regions table, with the ramp map's mean and max over columns 10 … 39.
    model = inspector.regions_model
    qtbot.waitUntil(lambda: model.data(model.index(0, 4)) != "—", timeout=10_000)
    assert model.data(model.index(0, 0)) == f"A{annotation.id}"
    assert model.data(model.index(0, 1)) == "annotation: cloned sky"
    assert model.data(model.index(0, 3)) == "10, 20  30×20"
    ramp = ramp_map()
    assert model.data(model.index(0, 4)) == f"{ramp[20:40, 10:40].mean():.3f}"
    assert model.data(model.index(0, 5)) == f"{ramp[20:40, 10:40].max():.3f}"
    assert annotation.id in inspector.annotation_layer.items  # drawn over the image
    # Selecting the row selects the drawing; Delete (the table has focus) deletes it.
    inspector.regions_table.setFocus()
    inspector.regions_table.selectRow(0)
    assert inspector.selected_annotation == annotation.id and inspector.delete_annotation_button.isEnabled()
    QTest.keyClick(inspector.regions_table, Qt.Key.Key_Delete)
    assert stored(case_dir) == [] and stored(case_dir, include_deleted=True)[0].deleted_by == "Ana"


def test_a_lasso_becomes_a_polygon_and_a_key_elsewhere_starts_no_tool(qtbot, window, case_dir):
    inspector = show(qtbot, window, case_dir)
    view = inspector.view
    inspector.notes_edit.setFocus()
    QTest.keyClick(inspector.notes_edit, Qt.Key.Key_B)  # typing a note: a "b", not the box tool
    assert inspector.annotations.tool is None
    inspector.flush()
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_L, Qt.KeyboardModifier.ShiftModifier)
    assert inspector.annotations.tool == "lasso"
    inspector.ask_label = lambda *a, **k: ("inpainted", "")
    corners = [QPointF(20, 10), QPointF(80, 10), QPointF(80, 70), QPointF(20, 70)]
    pts = [view.mapFromScene(c) for c in corners]
    drag(view, pts[0], pts[1:])
    [annotation] = stored(case_dir)
    assert annotation.kind == "lasso"
    points = annotation.geometry["points"]
    assert len(points) >= 4
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    scale = 1 / view.transform().m11()  # one logical pixel in image pixels (the fit zoom)
    assert min(xs) == pytest.approx(20, abs=scale) and max(xs) == pytest.approx(80, abs=scale)
    assert min(ys) == pytest.approx(10, abs=scale) and max(ys) == pytest.approx(70, abs=scale)
    QTest.keyClick(view, Qt.Key.Key_Escape)
    assert inspector.annotations.tool is None and not inspector.lasso_action.isChecked()
    # With no tool on, a click inside the lasso picks it (its row is selected, the view stays put).
    inspector.regions_table.clearSelection()
    assert inspector.selected_annotation is None
    zoom = view.zoom()
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     view.mapFromScene(QPointF(50, 40)))
    assert inspector.selected_annotation == annotation.id and view.zoom() == zoom


def test_undo_redo_of_add_relabel_and_delete_are_audit_entries_the_trail_replays(qtbot, window, case_dir):
    inspector = show(qtbot, window, case_dir)
    inspector.ask_label = lambda *a, **k: ("first label", "")
    inspector.set_annotation_tool("box")
    inspector.drawing_tool.shapeDrawn.emit("box", {"box": [5, 5, 20, 10]})
    [a] = stored(case_dir)
    assert "new annotation 'first label'" in window.undo_action.text()
    inspector.regions_table.selectRow(0)
    inspector.ask_label = lambda title, label="", note="": (label.replace("first", "second"), "n")
    assert inspector.relabel_selected_annotation()
    assert stored(case_dir)[0].label == "second label"
    window.undo_action.trigger()  # relabel undone
    assert (stored(case_dir)[0].label, stored(case_dir)[0].note) == ("first label", "")
    window.undo_action.trigger()  # the add undone: deleted, not erased
    assert stored(case_dir) == [] and inspector.regions_model.annotations == []
    window.redo_action.trigger()  # back
    assert [x.id for x in stored(case_dir)] == [a.id]
    assert inspector.regions_model.annotations[0].label == "first label"
    window.redo_action.trigger()  # relabel redone
    assert stored(case_dir)[0].label == "second label"
    inspector.regions_table.selectRow(0)
    assert inspector.delete_selected_annotation()
    window.undo_action.trigger()
    assert stored(case_dir)[0].label == "second label"
    with Case.open(case_dir, read_only=True) as case:
        actions = [e.action for e in case.audit_entries() if e.action.startswith("annotation.")]
        assert actions == ["annotation.added", "annotation.relabelled", "annotation.relabelled",
                           "annotation.deleted", "annotation.restored", "annotation.relabelled",
                           "annotation.deleted", "annotation.restored"]
        assert case.check_records() == []
    # Someone else relabels it: undoing the relabel would overwrite Bob's change, so it is refused.
    with Case.open(case_dir, analyst="Bob") as other:
        from declip_desktop.cases.annotations import relabel_annotation

        relabel_annotation(other, a.id, label="Bob's label")
    errors = []
    inspector.errorOccurred.connect(lambda m, _d: errors.append(m))
    window.undo_action.trigger()
    assert errors and "changed since" in errors[-1] and "Bob" in errors[-1]
    assert stored(case_dir, include_deleted=True)[0].label == "Bob's label"


def test_a_locked_item_cannot_be_annotated(qtbot, window, case_dir):
    with Case.open(case_dir, read_only=True) as case:
        path = case.evidence_file(case.get_evidence(1))
    inspector = show(qtbot, window, case_dir)
    inspector.ask_label = lambda *a, **k: ("x", "")
    window.set_integrity_states({1: "missing"})
    assert not inspector.box_action.isEnabled() and inspector.annotations.tool is None
    assert inspector.set_annotation_tool("box") is None
    inspector.drawing_tool.shapeDrawn.emit("box", {"box": [1, 1, 5, 5]})  # even a drawn shape is refused
    assert stored(case_dir) == []
    path.unlink()  # and the case layer refuses on its own, e.g. for the command line
    from declip_desktop.cases.annotations import AnnotationError, add_annotation

    with Case.open(case_dir) as case, pytest.raises(AnnotationError, match="missing from the case folder"):
        add_annotation(case, 1, "box", {"box": [1, 1, 5, 5]}, "x")


DPR_CHILD = r"""
import json
import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from declip_desktop.gui.annotation_tool import DrawingTool
from declip_desktop.gui.image_view import ImageView, build_pyramid

app = QApplication([])
rgb = np.zeros((300, 400, 3), np.uint8)
image = QImage(rgb.data, 400, 300, 1200, QImage.Format.Format_RGB888).convertToFormat(QImage.Format.Format_RGB32)
view = ImageView()
view.resize(500, 400)
view.show()
app.processEvents()
view.set_image(build_pyramid(image))
view.set_zoom(2.0)  # 200 %: two device pixels per image pixel, i.e. one logical pixel at DPR 2
view.centerOn(QPointF(200, 150))
app.processEvents()
tool = DrawingTool(view)
drawn = []
tool.shapeDrawn.connect(lambda kind, geometry: drawn.append([kind, geometry]))
start = view.mapFromScene(QPointF(100, 50))
vp = view.viewport()
for kind, path in (("box", [QPoint(10, 10), QPoint(30, 40)]), ("lasso", [QPoint(30, 0), QPoint(30, 40)])):
    tool.set_kind(kind)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for step in path:
        QTest.mouseMove(vp, start + step)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start + path[-1])
print(json.dumps({"dpr": view.device_ratio(), "zoom": view.zoom(), "drawn": drawn}))
"""


def test_drawing_at_device_pixel_ratio_two_and_zoom_two_stores_the_right_image_pixels():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": "2"}
    out = subprocess.run([sys.executable, "-c", DPR_CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["dpr"] == 2.0 and result["zoom"] == 2.0
    (box_kind, box), (lasso_kind, lasso) = result["drawn"]
    # 30×40 logical pixels = 60×80 device pixels = 30×40 image pixels at 200 %.
    assert box_kind == "box" and box == {"box": [100, 50, 30, 40]}
    assert lasso_kind == "lasso"
    assert np.allclose(lasso["points"], [[100, 50], [130, 50], [130, 90]], atol=0.51)


def test_the_annotation_model_alone_refuses_a_locked_item_and_drops_stale_statistics(case_dir):
    from declip_desktop.common.shapes import MapStats
    from declip_desktop.gui.annotation_model import AnnotationLocked, AnnotationModel

    states: dict[int, str] = {}
    model = AnnotationModel(locked=states.get)
    events = []
    model.on("annotations", lambda: events.append("annotations"))
    with Case.open(case_dir) as case:
        model.load(case, case.get_evidence(1))
        assert model.set_tool("lasso") == "lasso"
        added, step = model.add("box", {"box": [0, 0, 8, 8]}, "x")
        assert [a.id for a in model.items] == [added.id] and step.action == "add"
        old_token = model.stats_token
        model.reload()
        assert not model.set_stats(old_token, {added.id: MapStats(64, 0.1, 0.2)})  # for an older list
        assert model.set_stats(model.stats_token, {added.id: MapStats(64, 0.1, 0.2)})
        states[1] = "changed"
        model.reload()
        assert model.tool is None and model.set_tool("box") is None
        with pytest.raises(AnnotationLocked, match="changed"):
            model.add("box", {"box": [0, 0, 8, 8]}, "y")
        with pytest.raises(AnnotationLocked):
            model.ops("Ana").delete(added.id)  # nor can an undo step write to it
        assert len(stored_annotations(case, 1)) == 1
    assert events


def test_the_label_dialog_needs_a_label(qtbot):
    from declip_desktop.gui.inspector_annotations import LabelDialog

    dialog = LabelDialog(None, "Label the box")
    qtbot.addWidget(dialog)
    assert not dialog.ok_button.isEnabled()
    qtbot.keyClicks(dialog.label_edit, "  ")
    assert not dialog.ok_button.isEnabled()
    qtbot.keyClicks(dialog.label_edit, "cloned")
    assert dialog.ok_button.isEnabled()
