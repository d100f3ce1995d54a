"""Time to first pixels and peak memory when the inspector opens a 54-megapixel photo.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/big_image.py [--size 9000x6000] [--no-map]
        [--format jpeg|png|tiff-strips|tiff-tiled|tiff-pyramid] [--cached-preview]

Prepares (in a child process, so its memory does not count) a case with one 9000×6000 image in
the chosen format and a stored probability map of the same size, then, in a fresh process, opens
the case in the real `Inspector` at 1280×800 and measures from `show_evidence` to

- the preview on screen (`inspector_loading`: the reduced JPEG decode; for TIFF an embedded
  pyramid level or every k-th strip; with `--cached-preview` the preview the list thumbnail job
  stores in the case, `cases.previews`, made before the timing starts),
- the full resolution on screen (hash, full decode, pyramid, map, display copy),
- the regions table (full-resolution statistics, on the thread pool),

and the process's peak resident memory (`ru_maxrss`) and the memory before opening the item.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


SUFFIX = {"jpeg": ".jpg", "png": ".png", "tiff-strips": ".tif", "tiff-tiled": ".tif", "tiff-pyramid": ".tif"}


def write_image(rgb, path: Path, fmt: str) -> None:
    from PIL import Image

    if fmt == "jpeg":
        Image.fromarray(rgb).save(path, quality=92)
    elif fmt == "png":
        Image.fromarray(rgb).save(path, compress_level=6)
    elif fmt == "tiff-strips":  # what PIL and most tools write: deflate strips of a few rows
        Image.fromarray(rgb).save(path, compression="tiff_deflate")
    else:
        import tifffile

        tiled = {"tile": (512, 512), "compression": "zlib"}
        if fmt == "tiff-tiled":
            tifffile.imwrite(path, rgb, **tiled)
            return
        with tifffile.TiffWriter(path) as tif:  # a pyramid in SubIFDs, as scanners and OME-TIFF write
            tif.write(rgb, subifds=3, **tiled)
            level = rgb
            for _ in range(3):
                level = level[::2, ::2]
                tif.write(level, subfiletype=1, **tiled)


def prepare(folder: Path, width: int, height: int, with_map: bool, fmt: str = "jpeg",
            cached_preview: bool = False) -> None:
    import numpy as np

    from declip_desktop.cases import Case

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([x * 255 / width, y * 255 / height, (np.sin(x / 37) * np.cos(y / 23) + 1) * 127], -1)
    del x, y
    rgb = (rgb + np.random.default_rng(0).normal(0, 6, rgb.shape)).clip(0, 255).astype(np.uint8)
    photo = folder / "src" / f"big_photo{SUFFIX[fmt]}"
    photo.parent.mkdir(parents=True)
    write_image(rgb, photo, fmt)
    del rgb
    with Case.create(folder / "case", "BENCH", "Big image", "bench") as case:
        case.import_paths([photo])
        if cached_preview:  # what the evidence list's thumbnail job leaves behind
            from declip_desktop.cases.previews import thumbnail_and_preview

            thumbnail_and_preview(case, 1)
        if with_map:
            prob = np.zeros((height, width), np.float32)
            prob[height // 3: height // 2, width // 3: width // 2] = 0.9
            now = "2026-01-01T00:00:00+00:00"
            case.store_result(1, model_name="bench", model_sha256="0" * 64, parameters={}, score=0.9, prob_map=prob,
                              device="cpu", seconds=1.0, started=now, finished=now)


def measure(folder: Path) -> dict:
    from PySide6.QtWidgets import QApplication

    from declip_desktop.cases import Case
    from declip_desktop.gui.inspector import Inspector
    from declip_desktop.gui.settings import Settings

    app = QApplication([])
    case = Case.open(folder / "case")
    inspector = Inspector(Settings(folder / "s.ini"))
    inspector.resize(1280, 800)
    inspector.show()
    inspector.set_case(case)
    app.processEvents()
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    marks: dict[str, float] = {}
    original = inspector._show_preview

    def preview(*args):
        original(*args)
        app.processEvents()  # painted
        marks.setdefault("preview", time.perf_counter())

    inspector._show_preview = preview
    t0 = time.perf_counter()
    inspector.show_evidence(1)
    while "regions" not in marks and time.perf_counter() - t0 < 300:
        app.processEvents()
        if "full" not in marks and inspector.view.full_image() is not None:
            inspector.view.viewport().repaint()
            marks["full"] = time.perf_counter()
        if "full" in marks and (inspector.region_result is not None or inspector.prob_map is None):
            marks["regions"] = time.perf_counter()
        time.sleep(0.002)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    case.close()
    return {k: round(v - t0, 3) for k, v in marks.items()} | {"rss_before_mb": round(before_mb),
                                                              "peak_rss_mb": round(peak_mb)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="9000x6000")
    parser.add_argument("--no-map", action="store_true")
    parser.add_argument("--format", choices=sorted(SUFFIX), default="jpeg")
    parser.add_argument("--cached-preview", action="store_true",
                        help="let the thumbnail job store the preview first (PNG, tiled TIFF)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--_measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._measure:
        print(json.dumps(measure(Path(args._measure))))
        return 0
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {**os.environ, "DECLIP_HOME": str(folder / "home")}
        code = (f"from benchmarks.big_image import prepare; from pathlib import Path; "
                f"prepare(Path({str(folder)!r}), {width}, {height}, {not args.no_map}, {args.format!r}, "
                f"{args.cached_preview})")
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        size_mb = (folder / "src" / f"big_photo{SUFFIX[args.format]}").stat().st_size / 1e6
        cached = ", preview cached by the thumbnail job" if args.cached_preview else ""
        print(f"{width}×{height} {args.format}{cached} ({width * height / 1e6:.0f} MP, {size_mb:.1f} MB), "
              f"{'with' if not args.no_map else 'without'} a probability map; {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs")
        results = []
        for _ in range(args.runs):
            if not args.cached_preview:  # each run as the first view: drop what the last one cached
                for stale in (folder / "case" / "results" / "thumbnails").glob("preview-*"):
                    stale.unlink()
            out = subprocess.run([sys.executable, __file__, "--_measure", str(folder)], check=True, env=env,
                                 capture_output=True, text=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(results[-1])
        for key in ("preview", "full", "regions", "rss_before_mb", "peak_rss_mb"):
            values = sorted(r.get(key, float("nan")) for r in results)
            print(f"{key}: median {values[len(values) // 2]}  (min {values[0]}, max {values[-1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
