"""The desktop window end to end, offscreen, with a tiny random-weight DeCLIP model.

Each test drives the real MainWindow: drops are real QDropEvents sent to a child
widget (so the window-wide drop handling is what is tested), analyses run on the
real worker thread with the real Localizer, and results are read back from the case.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pytestqt  # noqa: F401,E402  (dev dependency: missing must fail, never skip)

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from declip_desktop.cases import Case  # noqa: E402
from declip_desktop.common.paths import models_dir  # noqa: E402
from declip_desktop.gui.background import wait_for_background  # noqa: E402
from declip_desktop.desktop import engine_services  # noqa: E402  (the real engine, as the app wires it)
from declip_desktop.gui.main_window import MainWindow  # noqa: E402
from declip_desktop.gui.settings import Settings  # noqa: E402

WAIT_MS = 120_000  # generous: the machine is shared; typical waits are a few seconds


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """Build the tiny model once per module; each test copies it into its own DECLIP_HOME."""
    import os

    from tests.factories import install_tiny_model

    home = tmp_path_factory.mktemp("tiny_model_home")
    old = os.environ.get("DECLIP_HOME")
    os.environ["DECLIP_HOME"] = str(home)
    try:
        install_tiny_model()
    finally:
        if old is None:
            del os.environ["DECLIP_HOME"]
        else:
            os.environ["DECLIP_HOME"] = old
    return home / "models"


@pytest.fixture
def model_installed(tiny_model_dir):
    target = models_dir()
    target.mkdir(parents=True, exist_ok=True)
    for item in tiny_model_dir.iterdir():
        if item.is_file():
            shutil.copy2(item, target / item.name)
    return "tiny"


@pytest.fixture
def window(qtbot, model_installed):
    win = MainWindow(Settings(), device="cpu", fast=False, services=engine_services())
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    wait_for_background()


def make_images(folder: Path, count: int, start: int = 0, size=(72, 56)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    paths = []
    for i in range(start, start + count):
        arr = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
        arr[10:30, 10:40] = (200, 40 + i, 40)  # a distinct patch: every image hashes differently
        path = folder / f"img_{i:02d}.png"
        Image.fromarray(arr).save(path)
        paths.append(path)
    return paths


def drop(qtbot, window: MainWindow, paths: list[Path], target=None) -> None:
    """A real drag-enter + drop on a child widget; it must reach the window's handler."""
    target = target or window.evidence_panel.view.viewport()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPoint(10, 10)
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), "the window must accept dragged files anywhere"
    event = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, event)


def new_case(window: MainWindow, tmp_path: Path, name="case") -> Path:
    folder = tmp_path / name
    assert window.create_case(str(folder), "2025-001", "GUI test", "Ana Analyst")
    return folder


def statuses(window: MainWindow) -> dict[str, str]:
    return {ev.original_name: ev.status for ev in window.case.evidence_list()}


def wait_idle(qtbot, window: MainWindow, timeout=WAIT_MS) -> None:
    qtbot.waitUntil(lambda: window.controller is not None and not window.controller.running, timeout=timeout)


def test_drop_files_and_folder_imports_analyses_and_shows_thumbnails(qtbot, window, tmp_path):
    new_case(window, tmp_path)
    loose = make_images(tmp_path / "loose", 2)
    folder = tmp_path / "folder"
    make_images(folder, 2, start=10)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    (folder / "notes.txt").write_text("not an image")

    drop(qtbot, window, loose)
    qtbot.waitUntil(lambda: len(window.case.evidence_list()) == 2, timeout=WAIT_MS)
    drop(qtbot, window, [folder], target=window.inspector)
    qtbot.waitUntil(lambda: len(window.case.evidence_list()) == 4, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: set(statuses(window).values()) == {"done"}, timeout=WAIT_MS)
    wait_idle(qtbot, window)

    # Rejected files are listed with their reasons, in the panel and in the case.
    rejected = {Path(r.path).name: r.reason for r in window.case.rejections()}
    assert "broken.jpg" in rejected and rejected["broken.jpg"]
    rows = window.evidence_panel.model.rows
    assert any(r.status == "rejected" and r.name == "broken.jpg" for r in rows)
    # Every analysed item has a score in the list and a thumbnail.
    model = window.evidence_panel.model
    for ev in window.case.evidence_list():
        row = model.row_of(ev.id)
        assert model.data(model.index(row, 2)) not in ("—", None)
    qtbot.waitUntil(lambda: all(window._thumbs.get(ev.id) for ev in window.case.evidence_list()), timeout=WAIT_MS)
    assert all(Path(p).exists() for p in window._thumbs.values())
    assert window.windowTitle().startswith("2025-001")


def test_failed_evidence_shows_its_error_without_stopping_the_queue(qtbot, window, tmp_path):
    new_case(window, tmp_path)
    window.controller.pause()  # hold the queue until the file is damaged
    paths = make_images(tmp_path / "in", 3)
    drop(qtbot, window, paths)
    qtbot.waitUntil(lambda: len(window.case.evidence_list()) == 3, timeout=WAIT_MS)
    victim = window.case.evidence_list()[1]
    stored = window.case.evidence_file(victim)
    stored.chmod(0o644)
    stored.write_bytes(b"corrupted after import")
    window.controller.resume()
    qtbot.waitUntil(lambda: "queued" not in statuses(window).values() and "analysing" not in statuses(window).values(),
                    timeout=WAIT_MS)
    wait_idle(qtbot, window)
    by_id = {ev.id: ev for ev in window.case.evidence_list()}
    assert by_id[victim.id].status == "failed" and by_id[victim.id].error
    assert [ev.status for ev in by_id.values() if ev.id != victim.id] == ["done", "done"]
    model = window.evidence_panel.model
    tip = model.data(model.index(model.row_of(victim.id), 0), Qt.ItemDataRole.ToolTipRole)
    assert "error:" in tip
    assert any(n.level in ("warning", "error") and str(victim.id) in n.message for n in window.notifications.notices)


def test_threshold_slider_changes_mask_and_regions_and_review_is_saved(qtbot, window, tmp_path):
    new_case(window, tmp_path)
    drop(qtbot, window, make_images(tmp_path / "in", 1, size=(160, 120)))
    qtbot.waitUntil(lambda: set(statuses(window).values()) == {"done"}, timeout=WAIT_MS)
    wait_idle(qtbot, window)
    ev = window.case.evidence_list()[0]
    window.evidence_panel.select_evidence(ev.id)
    inspector = window.inspector
    inspector.refresh_current()
    qtbot.waitUntil(lambda: inspector.display_map is not None and inspector.region_result is not None, timeout=WAIT_MS)
    prob = inspector.prob_map
    low, high = float(np.quantile(prob, 0.2)), float(np.quantile(prob, 0.8))
    assert high > low, "the tiny model's map should not be constant"

    def set_slider(value: float):
        inspector.threshold_slider.setValue(round(value * 1000))
        qtbot.waitUntil(lambda: inspector.region_result is not None
                        and abs(inspector.region_result.threshold - inspector.threshold) < 1e-9, timeout=WAIT_MS)
        return inspector.view.mask_item.pixmap().toImage(), inspector.region_result

    mask_low, regions_low = set_slider(low)
    assert abs(inspector.threshold_spin.value() - round(low * 1000) / 1000) < 1e-6
    mask_high, regions_high = set_slider(high)
    assert mask_low != mask_high
    assert regions_high.mask_pct < regions_low.mask_pct
    assert inspector.regions_model.rowCount() == len(regions_high.regions)
    if regions_high.regions:
        inspector.regions_table.selectRow(0)
        assert inspector.view.selection_item.isVisible()

    # Verdict and notes autosave (debounced) to the case and its audit log.
    inspector.verdict_combo.setCurrentText("manipulated")
    qtbot.keyClicks(inspector.notes_edit, "Splice near the left edge.")
    qtbot.waitUntil(lambda: window.case.get_evidence(ev.id).notes == "Splice near the left edge.", timeout=5000)
    stored = window.case.get_evidence(ev.id)
    assert stored.verdict == "manipulated"
    qtbot.waitUntil(lambda: window.case.get_evidence(ev.id).threshold is not None, timeout=5000)
    assert abs(window.case.get_evidence(ev.id).threshold - inspector.threshold) < 1e-9
    actions = [a.action for a in window.case.audit_entries([ev.id])]
    assert "review.changed" in actions


def test_cancel_stops_the_queue(qtbot, window, tmp_path):
    new_case(window, tmp_path)
    window.controller.pause()  # the worker stops before its first image
    with qtbot.waitSignal(window.controller.worker.run_started, timeout=WAIT_MS):
        drop(qtbot, window, make_images(tmp_path / "in", 6))
    assert len(window.case.evidence_list()) == 6
    with qtbot.waitSignal(window.analysisFinished, timeout=WAIT_MS) as finished:
        window.cancel_analysis()
    assert finished.args == ["cancelled"]
    assert set(statuses(window).values()) == {"skipped"}
    assert not window.controller.running


def test_closing_mid_queue_and_reopening_resumes(qtbot, model_installed, tmp_path):
    settings = Settings()
    first = MainWindow(settings, device="cpu", services=engine_services())
    qtbot.addWidget(first)
    first.show()
    folder = new_case(first, tmp_path)
    # Pause as soon as the first result is stored: the worker stops at the next gap between images.
    first.controller.worker.progress.connect(lambda e: first.controller.pause() if e.status == "done" else None)
    drop(qtbot, first, make_images(tmp_path / "in", 6))
    qtbot.waitUntil(lambda: "done" in statuses(first).values(), timeout=WAIT_MS)
    first.evidence_panel.select_evidence(first.case.evidence_list()[2].id)
    selected = first.evidence_panel.current_evidence_id()
    first.close()  # mid-queue
    wait_for_background()
    with Case.open(folder) as case:
        before = [ev.status for ev in case.evidence_list()]
    assert "done" in before and "queued" in before, before
    assert "analysing" not in before

    second = MainWindow(Settings(), device="cpu", services=engine_services())
    qtbot.addWidget(second)
    second.show()
    second.restore_last_case()
    assert second.case is not None and Path(second.case.path).resolve() == folder.resolve()
    assert second.evidence_panel.current_evidence_id() == selected
    qtbot.waitUntil(lambda: set(statuses(second).values()) == {"done"}, timeout=WAIT_MS)
    wait_idle(qtbot, second)
    second.close()
    wait_for_background()


def test_out_of_gpu_memory_falls_back_to_the_cpu_with_a_notice(qtbot, model_installed, tmp_path):
    from dataclasses import replace

    from declip_desktop.common.errors import OutOfDeviceMemory

    real = engine_services()

    class GpuThatRunsOut:
        """The real tiny Localizer, presented as a GPU one whose memory is exhausted."""

        def __init__(self, inner):
            self._inner = inner
            self.device = "cuda:0"

        def __getattr__(self, name):
            return getattr(self._inner, name)

        def predict(self, images):
            raise OutOfDeviceMemory("cuda:0", "CUDA out of memory (simulated by the test)")

        predict_prepared = predict  # the queue's prefetched path (analysis.prefetch) runs out the same way

    def make(model, *, device, **kw):
        inner = real.localizer_factory(model, device="cpu", **kw)
        return inner if device == "cpu" else GpuThatRunsOut(inner)

    win = MainWindow(Settings(), device="cuda", services=replace(real, localizer_factory=make))
    qtbot.addWidget(win)
    win.show()
    new_case(win, tmp_path)
    drop(qtbot, win, make_images(tmp_path / "in", 2))
    qtbot.waitUntil(lambda: len(win.case.evidence_list()) == 2, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: set(statuses(win).values()) == {"done"}, timeout=WAIT_MS)
    wait_idle(qtbot, win)
    assert any(n.level == "warning" and "CPU" in n.message for n in win.notifications.notices)
    assert "analysis.device_fallback" in [a.action for a in win.case.audit_entries()]
    assert {win.case.latest_analysis(ev.id).device for ev in win.case.evidence_list()} == {"cpu"}
    win.close()
    wait_for_background()
