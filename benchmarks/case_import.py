"""Case import speed against `cp` + `sha256sum` over the same files.

Generates COUNT noise images of about 2 MB each (half JPEG at quality 100, half PNG) in a
scratch folder, then times, on the same files (all in the page cache for both):

  baseline:  cp -r SRC DST   then   sha256sum over SRC
  import:    Case.import_paths([SRC])  (hash + MD5 in one read, copy, fsync, re-hash,
             full decode, metadata, database rows + audit entries)

and prints the ratio (baseline time / import time; ≥ 0.70 is the target). A second
baseline with `sync` after `cp` shows the cost of durability, which the import pays and
plain `cp` does not. The scratch folder is deleted afterwards unless --keep.

    python benchmarks/case_import.py [--count 1000] [--dir /tmp/declip-bench-import]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_images(src: Path, count: int, seed: int = 0) -> int:
    src.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(count):
        # ~0.7 MP of noise compresses to ~2 MB in both formats: incompressible, realistic size.
        if i % 2 == 0:
            arr = rng.integers(0, 256, (860, 1150, 3), dtype=np.uint8)
            path = src / f"img{i:04d}.jpg"
            Image.fromarray(arr).save(path, "JPEG", quality=100)
        else:
            arr = rng.integers(0, 256, (860, 1150, 3), dtype=np.uint8)
            arr[:, ::2] = arr[:, 1::2]  # pairs of equal pixels: compressible like real content, not pure noise
            path = src / f"img{i:04d}.png"
            Image.fromarray(arr).save(path, "PNG", compress_level=1)
        total += path.stat().st_size
    return total


CPU = {"baseline": float("inf"), "import": float("inf")}


def children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def timed(cmd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} × {cpu}, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/declip-bench-import"))
    ap.add_argument("--repeat", type=int, default=2, help="runs of each; the best is reported")
    ap.add_argument("--workers", type=int, default=None, help="import worker threads (default: up to 4)")
    ap.add_argument("--keep", action="store_true", help="keep the generated images")
    args = ap.parse_args()

    from declip_desktop.cases import Case

    root = args.dir
    src = root / "src"
    try:
        if not src.is_dir() or len(list(src.iterdir())) != args.count:
            shutil.rmtree(root, ignore_errors=True)
            t0 = time.perf_counter()
            nbytes = make_images(src, args.count)
            print(f"generated {args.count} images, {nbytes / 1e9:.2f} GB in {time.perf_counter() - t0:.0f} s")
        nbytes = sum(p.stat().st_size for p in src.iterdir())
        subprocess.run(f"cat {src}/* > /dev/null", shell=True, check=True)  # warm the page cache for everyone

        best_base = best_base_sync = best_import = float("inf")
        for r in range(args.repeat):
            dst = root / f"cp{r}"
            subprocess.run("sync", check=True)
            c0 = children_cpu()
            cp = timed(f"cp -r {src} {dst}")
            sha = timed(f"find {src} -type f -print0 | xargs -0 sha256sum")
            CPU["baseline"] = min(CPU["baseline"], children_cpu() - c0)
            t_sync = timed("sync")
            best_base = min(best_base, cp + sha)
            best_base_sync = min(best_base_sync, cp + t_sync + sha)
            shutil.rmtree(dst)
            subprocess.run("sync", check=True)

            case_dir = root / f"case{r}"
            case = Case.create(case_dir, number=f"bench-{r}", title="import benchmark", analyst="bench")
            t0, c0 = time.perf_counter(), self_cpu()
            report = case.import_paths([src], workers=args.workers)
            elapsed = time.perf_counter() - t0
            CPU["import"] = min(CPU["import"], self_cpu() - c0)
            case.close()
            assert len(report.imported) == args.count and not report.rejected, report.rejected[:3]
            best_import = min(best_import, elapsed)
            for p in (case_dir / "evidence").iterdir():
                os.chmod(p, 0o644)
            shutil.rmtree(case_dir)
            print(f"run {r + 1}: cp {cp:.2f} s + sha256sum {sha:.2f} s (+ sync {t_sync:.2f} s); "
                  f"import {elapsed:.2f} s")

        mb = nbytes / 1e6
        print(f"machine: {machine()}")
        print(f"files: {args.count}, {nbytes / 1e9:.2f} GB (noise JPEG q100 / PNG, ~{mb / args.count:.1f} MB each)")
        print(f"cp + sha256sum:        {best_base:.2f} s  ({mb / best_base:.0f} MB/s)")
        print(f"cp + sync + sha256sum: {best_base_sync:.2f} s  ({mb / best_base_sync:.0f} MB/s)")
        print(f"case import:           {best_import:.2f} s  ({mb / best_import:.0f} MB/s, "
              f"{args.count / best_import:.0f} files/s)")
        print(f"CPU time: cp + sha256sum {CPU['baseline']:.1f} s, import {CPU['import']:.1f} s (all threads)")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (other programs share this machine)")
        print(f"import speed vs cp + sha256sum:        {best_base / best_import:.0%}")
        print(f"import speed vs cp + sync + sha256sum: {best_base_sync / best_import:.0%}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
