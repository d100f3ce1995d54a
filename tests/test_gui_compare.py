"""Two-item compare, difference image, cursor readout and loupe (issue 20 item 5), offscreen."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import pytestqt  # noqa: F401  (dev dependency: missing must fail, never skip)
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage

from declip_desktop.cases import Case
from declip_desktop.gui.background import wait_for_background
from declip_desktop.gui.image_view import build_pyramid
from declip_desktop.gui.inspector_compare import format_readout
from declip_desktop.gui.main_window import MainWindow
from declip_desktop.gui.settings import Settings


def rgb_image(arr: np.ndarray) -> QImage:
    h, w, _ = arr.shape
    arr = np.ascontiguousarray(arr)
    return QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).convertToFormat(QImage.Format.Format_RGB32)


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(3)
    a = rng.integers(0, 200, (60, 80, 3), dtype=np.uint8)
    b = a.copy()
    b[10:20, 30:50] += np.array([40, 8, 0], np.uint8)  # the "edit": red +40, green +8
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(a).save(src / "a_original.png")
    Image.fromarray(b).save(src / "b_edited.png")
    Image.fromarray(a[:50]).save(src / "c_cropped.png")
    folder = tmp_path / "case"
    with Case.create(folder, "C-1", "Compare", "Ana") as case:
        case.import_paths(sorted(src.iterdir()))
        ids = {ev.original_name: ev.id for ev in case.evidence_list()}
    return folder, ids, a, b


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(Settings(tmp_path / "s.ini"))
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    yield win
    win.close()
    wait_for_background()


def show(qtbot, win, folder, evidence_id):
    assert win.open_case(folder, restore_evidence=False)
    # Opening resumes the queue (here: no engine, so it ends at once); let it settle first.
    qtbot.waitUntil(lambda: win.controller is not None and not win.controller.running, timeout=10_000)
    assert win.evidence_panel.select_evidence(evidence_id)
    qtbot.waitUntil(lambda: win.inspector.view.image_size() is not None, timeout=10_000)


def test_two_items_side_by_side_move_together_both_ways_and_flicker_alternates_them(qtbot, window, pair):
    folder, ids, a, b = pair
    show(qtbot, window, folder, ids["a_original.png"])
    inspector = window.inspector
    inspector.compare_with(ids["b_edited.png"], "item")
    qtbot.waitUntil(lambda: inspector.partner is not None, timeout=10_000)
    assert inspector.compare_view.isVisible()
    assert "b_edited.png" in inspector.compare_caption.text() and "a_original.png" in inspector.compare_caption.text()
    left = inspector.compare_view.full_image()
    assert left.pixelColor(35, 15).red() == int(b[15, 35, 0])  # the left view shows the other item

    def centre(view):
        return view.mapToScene(view.viewport().rect().center())

    inspector.view.set_zoom(6.0)
    inspector.view.centerOn(QPointF(40, 15))
    qtbot.waitUntil(lambda: abs(inspector.compare_view.zoom() - 6.0) < 1e-6, timeout=3000)
    assert (centre(inspector.compare_view) - centre(inspector.view)).manhattanLength() < 2
    inspector.compare_view.zoom_by(0.5)  # the other way round: the main view follows
    assert inspector.view.zoom() == pytest.approx(3.0)
    assert (centre(inspector.compare_view) - centre(inspector.view)).manhattanLength() < 2

    inspector.set_flicker(True)
    qtbot.waitUntil(lambda: inspector.view.full_image().pixelColor(35, 15).red() == int(b[15, 35, 0]), timeout=3000)
    qtbot.waitUntil(lambda: inspector.view.full_image().pixelColor(35, 15).red() == int(a[15, 35, 0]), timeout=3000)
    inspector.set_flicker(False)
    assert inspector.view.full_image().pixelColor(35, 15).red() == int(a[15, 35, 0])


def test_difference_image_of_two_items_and_refusal_for_different_sizes(qtbot, window, pair):
    folder, ids, a, b = pair
    show(qtbot, window, folder, ids["a_original.png"])
    inspector = window.inspector
    inspector.compare_with(ids["b_edited.png"], "difference")
    qtbot.waitUntil(lambda: inspector.compare_mode == "difference", timeout=10_000)
    diff = inspector.compare_view.full_image()
    expected = np.clip(np.abs(a.astype(int) - b.astype(int)).max(axis=2) * 4, 0, 255)
    got = np.array([[diff.pixelColor(x, y).red() for x in range(80)] for y in range(60)])
    assert (got == expected).all()
    assert got[15, 35] == 160 and got[5, 5] == 0
    errors = []
    inspector.errorOccurred.connect(lambda m, _d: errors.append(m))
    inspector.compare_with(ids["c_cropped.png"], "difference")
    assert "same size" in errors[-1] and "80×60" in errors[-1] and "80×50" in errors[-1]


def test_the_readout_gives_position_colour_and_probability_under_the_cursor(qtbot):
    from declip_desktop.gui.inspector import Inspector

    inspector = Inspector(Settings())
    qtbot.addWidget(inspector)
    inspector.resize(1000, 700)
    inspector.show()
    arr = np.zeros((30, 40, 3), np.uint8)
    arr[12, 25] = (201, 17, 99)
    prob = np.zeros((30, 40), np.float32)
    prob[12, 25] = 0.734
    inspector.display(build_pyramid(rgb_image(arr)), prob)
    inspector.view.set_zoom(8.0)
    inspector.view.centerOn(QPointF(25.5, 12.5))
    seen = []
    inspector.readout.connect(seen.append)
    pos = inspector.view.mapFromScene(QPointF(25.5, 12.5))
    qtbot.mouseMove(inspector.view.viewport(), pos)
    qtbot.waitUntil(lambda: bool(seen) and seen[-1] != "", timeout=3000)
    assert seen[-1] == "x 25, y 12   RGB 201, 17, 99   p = 0.734"
    assert format_readout(0, 0, None, None) == "x 0, y 0"
    # The loupe shows the real pixels around the cursor, centred on the pixel read.
    inspector.toggle_loupe()
    assert inspector.loupe.isVisible()
    inspector.loupe.follow(25, 12)
    rect = inspector.loupe.source_rect()
    assert rect.center().x() == 25 and rect.center().y() == 12 and rect.width() == 21
    grab = inspector.loupe.grab().toImage()
    middle = grab.pixelColor(grab.width() // 2, grab.height() // 2)
    assert (middle.red(), middle.green(), middle.blue()) == (201, 17, 99)
