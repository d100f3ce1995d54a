"""Speed of the classical views and of the import-time examination on a 12-megapixel photo.

Makes a 4000×3000 photo-like image (smooth tone, many small shapes, sensor-like grain),
saves it as a JPEG (quality 85, with EXIF), then times on the decoded pixels each view of
`declip_desktop.forensics.views` (median of --repeat runs, after one warm-up), and the
examination done at import (metadata + C2PA + alerts, from the file). Target: every view
≤ 1 s on 2 cores; copy-move is reported as it is.

    python benchmarks/forensics.py [--repeat 3] [--threads 2] [--megapixels 12]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from declip_desktop.forensics.alerts import find_alerts  # noqa: E402
from declip_desktop.forensics.metadata import read_metadata  # noqa: E402
from declip_desktop.forensics.provenance import read_c2pa  # noqa: E402
from declip_desktop.forensics.views import VIEWS, compute_view  # noqa: E402


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((h // 64, w // 64, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    img = (np.clip(base, 0, 1) * 170 + 40).astype(np.uint8)
    for _ in range(h * w // 4000):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.circle(img, (x, y), int(rng.integers(3, 30)), c, -1, cv2.LINE_AA)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def timed(fn, repeat: int) -> float:
    fn()  # warm-up (first-call allocations, library loading)
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="OpenCV threads (the target is for 2 cores)")
    ap.add_argument("--megapixels", type=float, default=12.0)
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    w = int(round((args.megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    rgb = photo(h, w)
    exif = Image.Exif()
    exif[271], exif[272], exif[305] = "Canon", "Canon EOS R5", "GIMP 2.10"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.jpg"
        Image.fromarray(rgb).save(path, "JPEG", quality=85, exif=exif.tobytes())
        decoded = np.asarray(Image.open(path).convert("RGB"))
        table = list(Image.open(path).quantization[0])
        print(f"Forensics benchmark: {w}×{h} ({w * h / 1e6:.1f} MP) JPEG q85, {args.threads} OpenCV threads, "
              f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
              f"OpenCV {cv2.__version__}, median of {args.repeat}")
        print(f"{'view':<20} {'seconds':>8}  target")
        worst = 0.0
        for name in VIEWS:
            params = {"luma_table": table} if name == "double_jpeg" else {}
            if name == "jpeg_ghost":
                params = {"last_quality": 85}
            sec = timed(lambda: compute_view(name, decoded, **params), args.repeat)
            ok = "≤ 1 s ok" if sec <= 1.0 else ("reported" if name == "copy_move" else "OVER")
            if name != "copy_move":
                worst = max(worst, sec)
            print(f"{name:<20} {sec:8.3f}  {ok}")
        clusters = compute_view("copy_move", decoded).extras["clusters"]
        print(f"(copy-move found {len(clusters)} clusters in the untouched photo)")

        def examine() -> None:
            meta = read_metadata(path)
            find_alerts(meta, read_c2pa(path, "JPEG"))

        print(f"{'examination':<20} {timed(examine, args.repeat):8.3f}  (metadata + C2PA + alerts, per JPEG)")
        png = Path(tmp) / "photo.png"
        Image.fromarray(rgb).save(png, "PNG", compress_level=1)

        def examine_png() -> None:  # PNG text chunks after the pixels need a full decode
            find_alerts(read_metadata(png), read_c2pa(png, "PNG"))

        print(f"{'examination (PNG)':<20} {timed(examine_png, args.repeat):8.3f}  (per PNG: decodes the pixels)")
        print(f"slowest view other than copy-move: {worst:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
