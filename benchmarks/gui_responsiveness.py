"""Does the UI thread ever wait while a queue of analyses runs? Heartbeat measurement.

    .venv/bin/python benchmarks/gui_responsiveness.py [--images 6] [--model vit-l] [--workdir DIR]

Opens the real MainWindow (offscreen unless a DISPLAY is set), creates a case,
imports `--images` photos (1600×1200 JPEG) through the window and lets the worker
thread analyse them with a random-weight model of the real ViT-L/14 size
(`--model vit-l`, layer20 + conv-20, built once with tests/factories.py and cached in
`--workdir`) or the tiny test model (`--model tiny`). Meanwhile a 5 ms QTimer beats
on the UI thread, and every 250 ms the threshold slider moves (the inspector follows
each finished image, so its decode / map load / regions work runs too). The figure
is the longest gap between two beats minus the 5 ms interval: the worst event-loop
stall. Also prints the per-image analysis time and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.factories`
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def ensure_model(kind: str, workdir: Path) -> str:
    # One model per home: it is the store's default, so the case picks it on opening.
    os.environ["DECLIP_HOME"] = str(workdir / f"home-{kind}")
    from declip_desktop.modelstore.store import ModelStore

    name = "bench-vit-l-random" if kind == "vit-l" else "bench-tiny"
    if name in ModelStore():
        return name
    from declip_desktop.modelstore.checkpoint_import import import_checkpoint
    from tests.factories import make_tiny_vit_checkpoint, make_vit_checkpoint

    t0 = time.perf_counter()
    src = workdir / f"{name}.pth"
    if kind == "vit-l":
        make_vit_checkpoint(src)
    else:
        make_tiny_vit_checkpoint(src)
    import_checkpoint(src, name=name)
    src.unlink()
    print(f"built and imported {name} in {time.perf_counter() - t0:.0f} s (cached in {workdir})", flush=True)
    return name


def photos(folder: Path, count: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    out = []
    for i in range(count):
        arr = np.clip(rng.normal(128, 40, (1200, 1600, 3)), 0, 255).astype(np.uint8)
        arr[300:700, 400 + 20 * i:900] = (220, 180, 120)
        path = folder / f"photo_{i:02d}.jpg"
        Image.fromarray(arr).save(path, quality=90)
        out.append(path)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--model", choices=("vit-l", "tiny"), default="vit-l")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "declip_gui_bench"))
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    model = ensure_model(args.model, workdir)

    from PySide6.QtCore import QTimer

    from declip_desktop.gui.app import create_application
    from declip_desktop.gui.main_window import MainWindow
    from declip_desktop.gui.settings import Settings

    app = create_application(["bench"])
    run_dir = Path(tempfile.mkdtemp(prefix="gui_bench_", dir=workdir))
    from declip_desktop.desktop import engine_services, preload_engine

    window = MainWindow(Settings(run_dir / "bench.ini"), device="auto", services=engine_services())
    window.resize(1280, 800)
    window.show()

    # As the app does at start-up: import torch on the thread pool before any analysis,
    # and measure that one-off pause on its own.
    from declip_desktop.gui.background import run_background

    def idle_baseline(seconds: float) -> list[float]:
        """Heartbeat with nothing running: how much the machine itself delays the timer."""
        stamps: list[float] = []
        timer = QTimer()
        timer.setInterval(5)
        timer.timeout.connect(lambda: stamps.append(time.perf_counter()))
        timer.start()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)
        timer.stop()
        return sorted((b - a) * 1000 for a, b in zip(stamps, stamps[1:])) or [0.0]

    baseline = idle_baseline(5.0)
    warm_beats: list[float] = []
    warm_timer = QTimer()
    warm_timer.setInterval(5)
    warm_timer.timeout.connect(lambda: warm_beats.append(time.perf_counter()))
    warm_done = {"v": False}
    warm_timer.start()
    t_warm = time.perf_counter()
    run_background(preload_engine, lambda _r: warm_done.update(v=True), lambda e, d: print(d))
    while not warm_done["v"]:
        app.processEvents()
        time.sleep(0.001)
    warm_timer.stop()
    warm_s = time.perf_counter() - t_warm
    warm_gaps = sorted((b - a) * 1000 for a, b in zip(warm_beats, warm_beats[1:])) or [0.0]

    # Opening the case starts loading its model on the worker thread (measured from here on).
    beats: list[float] = []
    state = {"measuring": False, "finished": False, "t_start": 0.0, "t_end": 0.0, "model_ready": None}
    heartbeat = QTimer()
    heartbeat.setInterval(5)
    heartbeat.timeout.connect(lambda: beats.append(time.perf_counter()) if state["measuring"] else None)
    heartbeat.start()
    slider = QTimer()
    slider.setInterval(250)
    step = {"i": 0}

    def move_slider():
        step["i"] += 1
        window.inspector.set_threshold(0.3 + 0.05 * (step["i"] % 9))

    slider.timeout.connect(move_slider)

    events: list[tuple[float, str]] = []

    def on_ready(info):
        state["model_ready"] = (time.perf_counter() - state["t_start"], info.device)
        events.append((time.perf_counter(), "model ready"))


    def on_finished(reason, _summary):
        if reason == "loaded":  # the model was loaded on opening the case; the queue comes next
            return
        state["finished"] = True
        state["t_end"] = time.perf_counter()
        state["measuring"] = False

    state["t_start"] = time.perf_counter()
    state["measuring"] = True
    window.create_case(str(run_dir / "case"), "BENCH-1", "Responsiveness", "Benchmark")
    window.controller.worker.model_ready.connect(on_ready)
    window.controller.worker.run_finished.connect(on_finished)
    window.controller.worker.progress.connect(
        lambda e: events.append((time.perf_counter(), f"progress {e.status} {e.evidence_id}")))
    window.controller.worker.run_started.connect(lambda n: events.append((time.perf_counter(), f"run started {n}")))
    slider.start()
    window.import_paths([str(p) for p in photos(run_dir / "in", args.images)])
    deadline = time.monotonic() + 3600
    while not state["finished"] and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.001)
    slider.stop()
    heartbeat.stop()
    statuses = [ev.status for ev in window.case.evidence_list()]
    analyses = [window.case.latest_analysis(ev.id) for ev in window.case.evidence_list()]
    per_image = [a.seconds for a in analyses if a is not None and a.seconds]
    gaps = sorted((b - a) * 1000 for a, b in zip(beats, beats[1:]))
    worst = sorted(zip(beats, beats[1:]), key=lambda ab: ab[0] - ab[1])[:5]
    for a, b in worst:  # where the longest stalls happened, next to what the worker reported
        near = [f"{t - state['t_start']:.2f}s {what}" for t, what in events if a - 0.5 <= t <= b + 0.5]
        print(f"  stall {1000 * (b - a):.0f} ms at {a - state['t_start']:.2f} s; nearby: {'; '.join(near) or '-'}")
    window.close()
    shutil.rmtree(run_dir, ignore_errors=True)

    load_s, device = state["model_ready"] or (float("nan"), "?")
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
          f"Qt platform {app.platformName()}, load average at the end {os.getloadavg()[0]:.1f}")
    print(f"model: {model} on {device}; {args.images} images 1600x1200; statuses {sorted(set(statuses))}")
    print(f"queue: {state['t_end'] - state['t_start']:.1f} s in all (model ready after {load_s:.1f} s), "
          f"forward time per image median {statistics.median(per_image) if per_image else float('nan'):.2f} s")
    print(f"idle baseline (no analysis, 5 s): median {statistics.median(baseline):.1f} ms, "
          f"p99 {baseline[int(0.99 * (len(baseline) - 1))]:.1f} ms, max {baseline[-1]:.1f} ms")
    print(f"start-up engine import (torch, once per session, thread pool): {warm_s:.1f} s, "
          f"longest event-loop gap {warm_gaps[-1]:.0f} ms")
    ready_at = state["t_start"] + (load_s if load_s == load_s else 0.0)
    run_gaps = sorted((b - a) * 1000 for a, b in zip(beats, beats[1:]) if a >= ready_at) or [0.0]
    print(f"after the model is loaded, while images are analysed: {len(run_gaps)} intervals, "
          f"max {run_gaps[-1]:.1f} ms -> worst stall {max(0.0, run_gaps[-1] - 5):.1f} ms")
    print(f"heartbeat (5 ms timer), {len(gaps)} intervals: median {statistics.median(gaps):.1f} ms, "
          f"p99 {gaps[int(0.99 * (len(gaps) - 1))]:.1f} ms, max {gaps[-1]:.1f} ms "
          f"-> worst event-loop stall {max(0.0, gaps[-1] - 5):.1f} ms")
    return 0 if set(statuses) == {"done"} else 1


if __name__ == "__main__":
    raise SystemExit(main())
