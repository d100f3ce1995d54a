"""Report size and time for a large case: N evidence items (default 50 × 12-megapixel photos).

    nice -n 10 .venv/bin/python benchmarks/report.py [--items 50] [--megapixels 12] [--photos DIR] [--keep DIR]

Builds a case with synthetic photo-like images (multi-scale texture, edges, sensor noise; or
your own photos with --photos) and a synthetic probability map per image stored through the
Case API, then times `build_report` on the whole case and prints the PDF's size, page count,
seconds, and the embedded resolutions. Only the report is timed, not the case set-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from declip_desktop.cases import Case  # noqa: E402


def photo_like(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Texture with energy at every scale (like a photo's 1/f spectrum) plus shapes and noise."""
    img = np.zeros((h, w, 3), np.float32)
    amp = 70.0
    for cell in (512, 128, 32, 8, 2):
        small = rng.normal(0, 1, (max(2, h // cell), max(2, w // cell), 3)).astype(np.float32)
        img += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        amp *= 0.45
    for _ in range(12):  # hard edges, as buildings and objects give
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(img, (x0, y0), (x0 + int(rng.integers(50, w // 3)), y0 + int(rng.integers(50, h // 3))),
                      tuple(float(v) for v in rng.normal(0, 60, 3)), -1)
    img += rng.normal(0, 3.0, img.shape).astype(np.float32)  # sensor noise
    return np.clip(img + 128, 0, 255).astype(np.uint8)


def synthetic_map(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    small = np.full((h // 16, w // 16), 0.05, np.float32)
    for _ in range(int(rng.integers(1, 5))):
        cx, cy = int(rng.integers(0, small.shape[1])), int(rng.integers(0, small.shape[0]))
        r = int(rng.integers(5, 25))
        cv2.circle(small, (cx, cy), r, float(rng.uniform(0.55, 0.98)), -1)
    small += rng.normal(0, 0.03, small.shape).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)


def make_case(folder: Path, items: int, megapixels: float, photos: Path | None, seed: int = 0) -> Case:
    rng = np.random.default_rng(seed)
    src = folder / "src"
    src.mkdir(parents=True)
    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    if photos is not None:
        files = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:items]
        for p in files:
            shutil.copy(p, src / p.name)
    else:
        base = photo_like(h, w, rng)
        for i in range(items):
            # Each item differs (distinct hashes, different crops of the texture).
            shifted = np.roll(base, (int(rng.integers(0, h)), int(rng.integers(0, w))), axis=(0, 1))
            cv2.imwrite(str(src / f"photo_{i:03d}.jpg"), cv2.cvtColor(shifted, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
    case = Case.create(folder / "case", number="BENCH-2026-001", title="Report benchmark", analyst="bench")
    case.import_paths(sorted(src.iterdir()))
    for ev in case.evidence_list():
        case.store_result(ev.id, model_name="bench-model", model_sha256="0" * 64, parameters={},
                          score=float(rng.uniform(0, 1)), prob_map=synthetic_map(ev.height, ev.width, rng),
                          device="cpu", seconds=1.0, started="2026-01-01T00:00:00Z", finished="2026-01-01T00:00:01Z")
    return case


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=50)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--photos", type=Path, help="use these photos instead of synthetic ones")
    ap.add_argument("--keep", type=Path, help="copy the PDF here")
    ap.add_argument("--layout", choices=("full", "compact"), default="full", help="report layout (issue 18)")
    args = ap.parse_args()

    from declip_desktop.reports import build
    from declip_desktop.reports.fonts import ensure_gui_application

    ensure_gui_application()
    with tempfile.TemporaryDirectory(prefix="declip-report-bench-") as tmp:
        t0 = time.perf_counter()
        case = make_case(Path(tmp), args.items, args.megapixels, args.photos)
        setup = time.perf_counter() - t0
        n = len(case.evidence_list())
        ev = case.evidence_list()[0]
        load_before = os.getloadavg()[0]
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        built = build.build_report(case, layout=args.layout)
        pdf, stats = built.path, built.stats
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        load_after = os.getloadavg()[0]
        size = pdf.stat().st_size
        if args.keep:
            shutil.copy(pdf, args.keep)
        case.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}")
    print(f"case: {n} items of {ev.width}×{ev.height} px ({ev.width * ev.height / 1e6:.1f} MP), set-up {setup:.0f} s")
    print(f"layout: {args.layout}; sections: " + ", ".join(f"{s.title} p. {s.page}" for s in stats.sections if s.level == 0))
    print(f"report: {stats.pages} pages, {size / 1e6:.1f} MB ({size / n / 1e6:.2f} MB per item), {seconds:.1f} s "
          f"({seconds / n:.2f} s per item); process CPU {cpu:.1f} s; peak RSS {rss:.0f} MB")
    print(f"machine load (1-min average) before/after: {load_before:.1f} / {load_after:.1f}")
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in stats.phases.items())
    print(f"phases: {phases}")
    if stats.sides:
        ov = [a for a, _ in stats.sides]
        og = [b for _, b in stats.sides]
        print(f"embedded long side: overlay {min(ov)}–{max(ov)} px, original {min(og)}–{max(og)} px")
    print(f"limits: ≤ 60 MB {'OK' if size <= 60e6 else 'EXCEEDED'}, ≤ 60 s {'OK' if seconds <= 60 else 'EXCEEDED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
