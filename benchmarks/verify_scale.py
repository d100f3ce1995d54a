"""How long `declip case verify` takes on a larger case, and how much of it is the replay.

    python benchmarks/verify_scale.py [--count 1000] [--dir /tmp/declip-bench-verify]

Builds a case of COUNT small photos (64×48 PNG noise, so file hashing is cheap and the
figure shows the database work), one stored analysis each (a 48×64 map), a review for every
tenth, then times `Case.verify()` (read-only open, everything in the page cache) and, alone,
the replay of the audit trail and its comparison with the tables.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from declip_desktop.cases import Case, reconcile, replay  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--dir", type=Path, help="scratch folder (default: a new temporary one, deleted)")
    args = parser.parse_args(argv)
    work = args.dir or Path(tempfile.mkdtemp(prefix="declip-bench-verify-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        src = work / "src"
        src.mkdir()
        rng = np.random.default_rng(0)
        for i in range(args.count):
            Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(src / f"p{i:05d}.png")
        t0 = time.perf_counter()
        with Case.create(work / "case", number="BENCH", title="verify scale", analyst="Ana") as case:
            case.import_paths([src])
            for ev in case.evidence_list():
                case.store_result(ev.id, model_name="m", model_sha256="a" * 64, parameters={"fast": False},
                                  score=float(rng.random()), prob_map=rng.random((48, 64), dtype=np.float32),
                                  device="cpu", seconds=0.1, started="2026-01-01T00:00:00+00:00",
                                  finished="2026-01-01T00:00:01+00:00")
                if ev.id % 10 == 0:
                    case.set_review(ev.id, verdict="inconclusive", notes="checked", threshold=0.4)
            entries = case.audit_head()[1]
        build = time.perf_counter() - t0
        with Case.open(work / "case", read_only=True) as case:
            t1 = time.perf_counter()
            report = case.verify()
            full = time.perf_counter() - t1
        conn = sqlite3.connect(f"{(work / 'case' / 'case.sqlite').as_uri()}?mode=ro", uri=True)
        t2 = time.perf_counter()
        problems = reconcile.compare(conn, replay.replay(conn))
        replay_s = time.perf_counter() - t2
        conn.close()
        assert report.ok and not problems, report.problems[:3]
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"SQLite {sqlite3.sqlite_version}")
        print(f"case: {args.count} evidence, {report.maps_checked} maps, {entries} audit entries "
              f"(built in {build:.1f} s)")
        print(f"verify: {full:.2f} s ({full / args.count * 1000:.2f} ms per item); "
              f"replay + comparison alone: {replay_s:.2f} s")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
