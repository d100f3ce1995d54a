"""Screenshots of the real window under a virtual X server, for review.

    .venv/bin/python scripts/screenshots.py [--out screenshots/] [--size 1280x800]

Starts Xvfb itself when there is no DISPLAY (or run it under `xvfb-run -a`), uses a
throw-away DECLIP_HOME with a tiny random-weight model (from tests/factories.py; its
maps are noise, not evidence), creates a case, drops synthetic photos on the window,
waits for the analyses and saves:

    01-start.png      the start screen
    02-case.png       a case with results (evidence list with tags and a bookmark + inspector)
    03-inspector.png  the inspector zoomed on a region, mask and outlines on
    04-side-by-side.png  side-by-side compare
    05-compare-items.png two items side by side (synchronized zoom and pan), cursor readout
    06-integrity.png  an evidence file deleted behind the app's back, then Case → Verify
    07-dark.png       dark mode
    08-annotations.png   a box and a lasso drawn with the annotation tools, listed in the regions table,
                      and the item's calibrated reading (the other items marked as references)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_xvfb(size: str) -> subprocess.Popen | None:
    if os.environ.get("DISPLAY"):
        return None
    if shutil.which("Xvfb") is None:
        sys.exit("error: no DISPLAY and no Xvfb. Install it (apt-get install -y xvfb) or run under xvfb-run -a.")
    for number in range(91, 120):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    proc = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.environ["DISPLAY"] = f":{number}"
    for _ in range(50):
        if Path(f"/tmp/.X11-unix/X{number}").exists():
            return proc
        time.sleep(0.1)
    proc.terminate()
    sys.exit("error: Xvfb did not start")


def synthetic_photos(folder: Path, count: int = 4) -> list[Path]:
    """Smooth 'photos' with a pasted patch (looks like something, hashes differently)."""
    import numpy as np
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        h, w = 900, 1200
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.stack([
            120 + 80 * np.sin(x / (140 + 30 * i)), 110 + 70 * np.cos(y / 170), 140 + 60 * np.sin((x + y) / 260)
        ], axis=-1)
        base += rng.normal(0, 6, base.shape)
        img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        draw.ellipse((300 + 60 * i, 250, 620 + 60 * i, 560), fill=(210, 190, 150))
        draw.rectangle((780, 500 - 40 * i, 1040, 760), fill=(60, 90, 150))
        path = folder / f"photo_{i + 1}.jpg"
        img.save(path, quality=92)
        paths.append(path)
    (folder / "not_an_image.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return paths


def annotation_shot(window, pump, wait, shot) -> None:  # noqa: ANN001
    """Draw a box and a lasso on the first item with the real tools (keys and mouse drags on the
    view; the label dialog is answered here) and save 08-annotations.png."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    from declip_desktop.cases import calibration as cases_calibration

    inspector = window.inspector
    items = [ev.id for ev in window.case.evidence_list()]
    first = items[0]
    # The other items as references (as from the list's context menu) and a calibration, so the
    # inspector's calibrated reading is in view beside the annotations (3 references: with its warning).
    window.calibration.mark(items[1:], True)
    cases_calibration.calibrate(window.case, resamples=200)
    window.calibration.bar.refresh()  # as the Calibrate action does when its work is done
    window.evidence_panel.select_evidence(first)
    wait(lambda: inspector.prob_map is not None and inspector.view.full_image() is not None)
    inspector.fit()
    pump(0.3)
    answers = iter([("cloned sky", "left of the mast"), ("inpainted roof", "")])
    inspector.ask_label = lambda *_a, **_k: next(answers)
    view, viewport = inspector.view, inspector.view.viewport()
    w, h = view.image_size()
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    window.activateWindow()  # shortcuts need an active window (Xvfb has no window manager to give it)
    wait(window.isActiveWindow, timeout=10)
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_B)
    start, end = view.mapFromScene(QPointF(w * 0.08, h * 0.12)), view.mapFromScene(QPointF(w * 0.38, h * 0.42))
    QTest.mousePress(viewport, left, none, start)
    QTest.mouseMove(viewport, end)
    QTest.mouseRelease(viewport, left, none, end)
    QTest.keyClick(view, Qt.Key.Key_L, Qt.KeyboardModifier.ShiftModifier)
    ring = [view.mapFromScene(QPointF(w * fx, h * fy))
            for fx, fy in ((0.55, 0.5), (0.7, 0.42), (0.88, 0.55), (0.82, 0.85), (0.6, 0.8), (0.55, 0.5))]
    QTest.mousePress(viewport, left, none, ring[0])
    for point in ring[1:]:
        QTest.mouseMove(viewport, point)
    QTest.mouseRelease(viewport, left, none, ring[-1])
    QTest.keyClick(view, Qt.Key.Key_Escape)
    inspector.tabs.setCurrentIndex(0)
    inspector.regions_table.selectRow(0)
    inspector.fit()
    wait(lambda: inspector.regions_model.annotations and inspector.annotations.stats, timeout=30)
    shot("08-annotations.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "screenshots"))
    parser.add_argument("--size", default="1280x800")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    xvfb = start_xvfb(args.size)
    work = Path(tempfile.mkdtemp(prefix="declip_shots_"))
    os.environ["DECLIP_HOME"] = str(work / "home")
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    try:
        sys.path.insert(0, str(ROOT))  # `tests.factories`
        from tests.factories import install_tiny_model

        install_tiny_model(name="tiny-random")
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication

        from declip_desktop.gui.app import create_application
        from declip_desktop.gui.main_window import MainWindow

        app = create_application([sys.argv[0]])
        width, height = (int(v) for v in args.size.split("x"))
        from declip_desktop.desktop import engine_services

        window = MainWindow(device="cpu", services=engine_services())
        window.resize(width, height)
        window.show()
        window.show_start()

        def pump(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                app.processEvents()
                time.sleep(0.02)

        def wait(cond, timeout=float(os.environ.get("SHOTS_TIMEOUT", 300))) -> None:
            end = time.monotonic() + timeout
            while not cond():
                if time.monotonic() > end:
                    raise TimeoutError("the window did not reach the expected state")
                pump(0.1)

        def shot(name: str) -> None:
            pump(0.5)
            window.grab().save(str(out / name))
            print(out / name)

        window.start_page.analyst_edit.setText("A. Analyst")
        shot("01-start.png")
        window.create_case(str(work / "case"), "2025-0142", "Harbour photos, inpainting suspected", "A. Analyst")
        photos = synthetic_photos(work / "incoming")
        window.import_paths([str(p) for p in photos] + [str(work / "incoming" / "not_an_image.jpg")])
        wait(lambda: window.case is not None and len(window.case.evidence_list()) == len(photos))
        wait(lambda: all(ev.status in ("done", "failed") for ev in window.case.evidence_list()))
        wait(lambda: not window.controller.running)
        first = window.case.evidence_list()[0].id
        window.evidence_panel.select_evidence(first)
        window.inspector.refresh_current()
        wait(lambda: window.inspector.region_result is not None)
        window.inspector.set_threshold(float(__import__("numpy").quantile(window.inspector.prob_map, 0.9)))
        wait(lambda: window.inspector.region_result is not None
             and abs(window.inspector.region_result.threshold - window.inspector.threshold) < 1e-9)
        window.inspector.verdict_combo.setCurrentText("inconclusive")
        window.inspector.notes_edit.setPlainText("Tiny random-weight model: the map is noise. Screenshot only.")
        wait(lambda: all(window._thumbs.get(ev.id) for ev in window.case.evidence_list()), timeout=60)
        window.tags.add_tag([first], "harbour")  # the analyst's tags and bookmark (gui.evidence_tags)
        window.tags.add_tag([first], "ask requester")
        window.tags.toggle_bookmark([first])
        shot("02-case.png")
        window.inspector.mask_check.setChecked(True)
        if window.inspector.regions_model.rowCount():
            window.inspector.regions_table.selectRow(0)
        window.inspector.tabs.setCurrentIndex(0)
        shot("03-inspector.png")
        window.inspector.fit()
        window.inspector.set_side_by_side(True)
        window.inspector.tabs.setCurrentIndex(1)
        shot("04-side-by-side.png")
        second = window.case.evidence_list()[1].id
        window.inspector.compare_with(second, "item")
        wait(lambda: window.inspector.partner is not None)
        window.inspector.view.set_zoom(2.0)
        window.inspector._cursor_moved(40, 30)
        shot("05-compare-items.png")
        window.inspector.stop_comparing()
        window.inspector.set_side_by_side(False)
        annotation_shot(window, pump, wait, shot)
        last = window.case.evidence_list()[-1]
        window.case.evidence_file(last).unlink()  # behind the app's back
        window.verify.start()
        wait(lambda: not window.verify.running)
        window.evidence_panel.select_evidence(last.id)
        pump(1.0)
        shot("06-integrity.png")
        window.verify.dock.hide()
        window.notification_bar.hide()
        window.evidence_panel.select_evidence(first)
        window.set_appearance("dark")
        pump(1.0)
        shot("07-dark.png")
        window.set_appearance("system")
        QTimer.singleShot(0, window.close)
        pump(1.0)
        window.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if xvfb is not None:
            xvfb.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
