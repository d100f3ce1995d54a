"""Threshold update time in the inspector on a 12-megapixel image.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/gui_threshold.py [--size 4000x3000] [--steps 60]

Measures what happens on the UI thread when the analyst moves the threshold slider:
the slider's valueChanged handler (display-copy mask + live outline + spin box +
colour scale) *and* a synchronous repaint of the image view (photo, heat overlay,
mask, outlines), at "fit" zoom in a 1280×800 window. The full-resolution region
statistics run afterwards on the thread pool (reported separately: they do not
block the UI).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def synthetic(width: int, height: int):
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    coarse = rng.random((height // 100, width // 100)).astype(np.float32)
    prob = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    prob = np.clip(prob + rng.normal(0, 0.03, prob.shape).astype(np.float32), 0, 1)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([(x * 255 // width), (y * 255 // height), ((x + y) * 255 // (width + height))], -1).astype(np.uint8)
    return rgb, prob


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="4000x3000")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    import numpy as np
    from PySide6.QtGui import QImage

    from declip_desktop.gui.app import create_application
    from declip_desktop.gui.background import wait_for_background
    from declip_desktop.gui.image_view import build_pyramid
    from declip_desktop.gui.inspector import Inspector
    from declip_desktop.gui.render import DISPLAY_MAX_SIDE, compute_regions
    from declip_desktop.gui.settings import Settings
    import tempfile

    app = create_application(["bench"])
    settings = Settings(path=__import__("pathlib").Path(tempfile.mkdtemp()) / "bench.ini")
    inspector = Inspector(settings)
    inspector.resize(1280, 800)
    inspector.show()
    rgb, prob = synthetic(width, height)
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).convertToFormat(QImage.Format.Format_RGB32)
    t0 = time.perf_counter()
    levels = build_pyramid(image)
    pyramid_s = time.perf_counter() - t0
    from declip_desktop.gui.render import DisplayMap

    t0 = time.perf_counter()
    display_map = DisplayMap(prob)  # thread pool in the app
    copy_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    inspector.display(levels, prob, display_map)  # UI thread in the app
    display_s = time.perf_counter() - t0
    inspector.mask_check.setChecked(True)  # heat + mask + outlines: the most drawing
    app.processEvents()
    inspector.view.viewport().repaint()

    times, cpu_times = [], []
    values = np.linspace(0.2, 0.8, args.steps)
    for value in values:
        t0, c0 = time.perf_counter(), time.thread_time()
        inspector.threshold_slider.setValue(round(value * 1000))
        inspector.view.viewport().repaint()
        times.append((time.perf_counter() - t0) * 1000)
        # CPU time of the UI thread itself: what the update costs, without the waits a
        # busy shared machine adds by scheduling other programs in between.
        cpu_times.append((time.thread_time() - c0) * 1000)
    app.processEvents()
    wait_for_background()

    # Zoom and pan on the photo (pyramid levels, only the exposed part drawn).
    view = inspector.view
    paint = {}
    for label, action in (("fit", view.fit), ("1:1", view.actual_size), ("4x", lambda: view.set_zoom(4.0))):
        action()
        app.processEvents()
        samples = []
        for i in range(20):
            view.horizontalScrollBar().setValue(view.horizontalScrollBar().value() + (37 if i % 2 else -29))
            c0 = time.thread_time()
            view.viewport().repaint()
            samples.append((time.thread_time() - c0) * 1000)
        paint[label] = statistics.median(samples)
    view.fit()

    region_times = []
    for value in (0.3, 0.5, 0.7):
        t0 = time.perf_counter()
        compute_regions(prob, value)
        region_times.append(time.perf_counter() - t0)

    times.sort()
    cpu_times.sort()
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, {platform.python_implementation()} "
          f"{platform.python_version()}, Qt platform {app.platformName()}, "
          f"load average during the run {os.getloadavg()[0]:.1f}")
    print(f"image: {width}x{height} ({width * height / 1e6:.1f} MP), display copy long side {DISPLAY_MAX_SIDE} px, "
          f"view {inspector.view.viewport().width()}x{inspector.view.viewport().height()}")
    print(f"threshold update (handler + repaint), {len(times)} steps: median {statistics.median(times):.1f} ms, "
          f"p95 {times[int(0.95 * (len(times) - 1))]:.1f} ms, max {times[-1]:.1f} ms")
    print(f"  UI-thread CPU time per update: median {statistics.median(cpu_times):.1f} ms, "
          f"p95 {cpu_times[int(0.95 * (len(cpu_times) - 1))]:.1f} ms, max {cpu_times[-1]:.1f} ms")
    print("repaint while panning (UI-thread CPU, median): " + ", ".join(f"{k} {v:.1f} ms" for k, v in paint.items()))
    print(f"one-off on selecting the image: pyramid {pyramid_s * 1000:.0f} ms and display copy {copy_s * 1000:.0f} ms "
          f"(thread pool), showing them {display_s * 1000:.0f} ms (UI thread)")
    print(f"full-resolution regions (thread pool, after the slider rests): "
          f"{', '.join(f'{t * 1000:.0f}' for t in region_times)} ms at t=0.3/0.5/0.7")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
