"""Peak memory of importing and analysing a hostile WebP (38 bytes declaring 16383×12000).

The file is a valid lossless WebP of one colour: it decodes to 196.6 megapixels, under the
200-megapixel pixel budget, so only the memory budget stands between it and gigabytes of RAM.
Each step runs in a fresh `python -m declip_desktop` process; its peak RSS is read from
`getrusage(RUSAGE_CHILDREN)`. Usage:

    PYTHONPATH=. python benchmarks/decode_budget.py [--code ROOT] [--skip-analyse]

`--code ROOT` runs another checkout's code (e.g. the previous commit, for before/after).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: A lossless WebP (VP8L) of 16383×12000 pixels, all (200, 180, 160), as libwebp writes it.
HOSTILE_WEBP = bytes.fromhex(
    "524946461e000000574542505650384c110000002ffeffb70b0750da2217b4ff8188e87f0000"
)


def run_step(args: list[str], env: dict[str, str]) -> tuple[int, float, float, str]:
    """Run one CLI command in a child; (exit code, peak RSS MB, seconds, stderr tail)."""
    code = (
        "import resource, subprocess, sys, json\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({'rc': p.returncode, 'kb': peak, 'err': p.stderr[-600:], 'out': p.stdout[-600:]}))\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "declip_desktop", *args],
                         capture_output=True, text=True, env=env, check=True, cwd=env["DECLIP_HOME"])
    res = json.loads(out.stdout)
    return res["rc"], res["kb"] / 1024, time.perf_counter() - t0, (res["err"] + res["out"]).strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1],
                    help="checkout whose declip_desktop to run (default: this one)")
    ap.add_argument("--skip-analyse", action="store_true")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.code.resolve()), "QT_QPA_PLATFORM": "offscreen",
           "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        env["DECLIP_HOME"] = str(tmp_path / "home")  # also the children's working folder: `-m` imports
        (tmp_path / "home").mkdir()                    # from the cwd first, and --code must win
        photo = tmp_path / "in" / "huge.webp"
        photo.parent.mkdir()
        photo.write_bytes(HOSTILE_WEBP)
        case = tmp_path / "case"
        subprocess.run([sys.executable, "-m", "declip_desktop", "case", "create", str(case), "--number", "B-1",
                        "--title", "budget", "--analyst", "bench"], env=env, check=True, capture_output=True,
                       cwd=env["DECLIP_HOME"])
        rc, mb, s, tail = run_step(["case", "import", str(case), str(photo)], env)
        print(f"import : exit {rc}, peak RSS {mb:7.0f} MB, {s:5.1f} s  | {tail.splitlines()[-1] if tail else ''}")
        if not args.skip_analyse:
            rc, mb, s, tail = run_step(["analyze", str(photo), "--model", "starter", "--threads", "1"], env)
            last = tail.splitlines()[-1] if tail else ""
            print(f"analyse: exit {rc}, peak RSS {mb:7.0f} MB, {s:5.1f} s  | {last[:90]}")
            rc, mb, s, tail = run_step(["case", "analyze", str(case), "--model", "starter", "--batch-size", "1"], env)
            last = tail.splitlines()[-1] if tail else ""
            print(f"case analyze: exit {rc}, peak RSS {mb:7.0f} MB, {s:5.1f} s  | {last[:90]}")
    print(f"code: {args.code.resolve()}; ru_maxrss of each child process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
