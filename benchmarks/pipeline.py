"""What `case analyze` adds to the network (issue 23 item 5): 50 photos of 12 MP.

Creates a case, imports synthetic 12 MP JPEGs (not timed), and runs the queue runner
`analysis.run_queue` (what `declip case analyze` runs) with the real Localizer, the seeded
full-size ViT-L/14 layer20 conv-20 and/or the bundled starter model. Every phase is timed
by wrapping the functions that do it:

- forward: the network's forward passes (`Localizer._forward`: batch to device, network,
  sigmoid, back), i.e. the model's own time;
- prefetch thread (off the critical path): reading, hashing, decoding and preprocessing
  the next batch; "waiting for the next batch" is the time the runner actually waited for it;
- the runner's thread: the map resized to 12 MP (inside the Localizer, after the forward);
- storing thread (off the critical path; `analysis.storing`): 16-bit PNG encoding, durable
  write, the database row and audit entry; "waiting for the last batch to be stored" is the
  time the runner actually waited for it.

overhead = (wall time of the run − forward) / wall time of the run: everything beyond the
network, including what running the prefetch and storing threads beside the forward costs
it. Rounds alternate the pipelined runner with a serial one (the same runner with the next
batch loaded only when it is needed and every result stored on the runner's thread, as
before the pipeline) so both see the same machine load; medians are printed.

    .venv/bin/python benchmarks/pipeline.py [--images 50] [--models vit,starter] [--rounds 2] [--threads 2]
    .venv/bin/python benchmarks/pipeline.py --quick   # 3 small photos, starter, one round: does it work
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.pipeline_common import Phases, machine, make_photos, scratch_dir, seeded_vit_model  # noqa: E402


class SerialPrefetcher:
    """The runner's prefetcher without the thread: a batch is loaded when it is asked for."""

    def __init__(self, case, localizer, batches, depth: int = 1):
        from declip_desktop.analysis import prefetch

        self._load = lambda ev: prefetch.load_evidence(case, ev, localizer)
        self._left = [list(b) for b in batches]

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    @property
    def remaining(self) -> int:
        return len(self._left)

    def next(self):
        return [self._load(ev) for ev in self._left.pop(0)]


def run_round(loc, photos: list[Path], work: Path, pipelined: bool) -> dict:
    from declip_desktop.analysis import prefetch
    from declip_desktop.analysis import queue as queue_mod
    from declip_desktop.analysis import run_queue
    from declip_desktop.analysis.storing import BatchStorer
    from declip_desktop.cases import Case
    from declip_desktop.engine import preprocess

    case = Case.create(work / f"case-{time.monotonic_ns()}", number="B", title="pipeline", analyst="bench")
    report = case.import_paths(photos)
    assert len(report.imported) == len(photos), report
    phases = Phases()
    restores = [
        phases.wrap(loc, "_forward", "forward"),
        phases.wrap(prefetch, "load_evidence", "read, hash, decode, preprocess"),
        phases.wrap(loc, "prepare", "  of which decode + preprocess"),
        phases.wrap(preprocess, "resize_map", "map resized to the photo's size"),
        phases.wrap(case, "store_result", STORE),
    ]
    store_module = sys.modules[type(case)._store_result.__module__]
    if hasattr(store_module, "encode_png16"):
        restores.append(phases.wrap(store_module, "encode_png16", "  of which 16-bit PNG encoding"))
    original = queue_mod.BatchPrefetcher
    if not pipelined:
        queue_mod.BatchPrefetcher = SerialPrefetcher
    else:
        restores.append(phases.wrap(original, "next", "waiting for the next batch"))
        restores.append(phases.wrap(BatchStorer, "wait", "waiting for the last batch to be stored"))
    try:
        t = time.perf_counter()
        summary = run_queue(case, loc, store_thread=pipelined)
        wall = time.perf_counter() - t
    finally:
        queue_mod.BatchPrefetcher = original
        for restore in reversed(restores):
            restore()
        case.close()
    assert summary.done == len(photos) and not summary.failed, summary
    forward = phases.seconds["forward"]
    return {"wall": wall, "forward": forward, "overhead": wall - forward, "share": (wall - forward) / wall,
            "phases": dict(phases.seconds)}


STORE = "store (PNG encode, write, DB row, audit)"
PHASE_ORDER = ["forward", "waiting for the next batch", "waiting for the last batch to be stored",
               "read, hash, decode, preprocess", "  of which decode + preprocess",
               "map resized to the photo's size", STORE, "  of which 16-bit PNG encoding"]


def report(label: str, rounds: list[dict], images: int) -> None:
    for mode in ("pipelined", "serial"):
        rs = [r for r in rounds if r["mode"] == mode]
        if not rs:
            continue
        med = {k: statistics.median(r[k] for r in rs) for k in ("wall", "forward", "overhead", "share")}
        print(f"{label}, {mode}: {len(rs)} round(s), median wall {med['wall']:.1f} s "
              f"({med['wall'] / images:.2f} s/image), forward {med['forward']:.1f} s, beyond the forward "
              f"{med['overhead']:.1f} s = {100 * med['share']:.1f} % of the total")
        main_names = (["forward", "map resized to the photo's size", "waiting for the next batch",
                       "waiting for the last batch to be stored"] if mode == "pipelined" else
                      ["forward", "map resized to the photo's size", STORE, "read, hash, decode, preprocess"])
        accounted = statistics.median(sum(r["phases"].get(n, 0.0) for n in main_names) for r in rs)
        print(f"    (the runner's own thread: {accounted:.1f} s of the {med['wall']:.1f} s accounted for by the phases below)")
        names = list(dict.fromkeys(n for r in rs for n in r["phases"]))
        for name in sorted(names, key=lambda n: PHASE_ORDER.index(n) if n in PHASE_ORDER else len(PHASE_ORDER)):
            value = statistics.median(r["phases"].get(name, 0.0) for r in rs)
            where = ("" if name in main_names or name.startswith("  ") else
                     "  (prefetch thread)" if name.startswith("read") else "  (storing thread)")
            print(f"    {name:<44} {value:8.2f} s  {1000 * value / images:7.0f} ms/image{where}")
    shares = {mode: statistics.median(r["share"] for r in rounds if r["mode"] == mode)
              for mode in ("pipelined", "serial") if any(r["mode"] == mode for r in rounds)}
    if len(shares) == 2:
        walls = {mode: statistics.median(r["wall"] for r in rounds if r["mode"] == mode) for mode in shares}
        print(f"{label}: beyond the forward {100 * shares['pipelined']:.1f} % pipelined, "
              f"{100 * shares['serial']:.1f} % serial (target <= 10 %); wall pipelined/serial "
              f"{walls['pipelined'] / walls['serial']:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--models", default="vit,starter", help="comma-separated: vit, starter")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of each mode, interleaved")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--size", default="4000x3000", help="photo size WxH (12 MP)")
    ap.add_argument("--quick", action="store_true",
                    help="check that it works: 3 photos of 1024x768, the starter, batch 1, one round of each mode")
    args = ap.parse_args()
    if args.quick:
        args.images, args.models, args.rounds, args.size, args.batch = 3, "starter", 1, "1024x768", 1
    size = tuple(int(v) for v in args.size.lower().split("x"))

    import torch

    torch.set_num_threads(args.threads)
    from declip_desktop.modelstore.loading import load_localizer, resolve_model

    work = args.workdir or scratch_dir("declip-pipeline-")  # removed at exit unless given
    print(machine())
    print(f"{args.images} JPEG photos of {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.1f} MP), batch {args.batch}, "
          f"{args.threads} torch threads, work in {work}")
    photos = make_photos(work / f"photos-{size[0]}x{size[1]}", args.images, size=size)
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        model = seeded_vit_model(work / "home") if name == "vit" else resolve_model("starter")
        loc = load_localizer(model, device="cpu", batch_size=args.batch, threads=args.threads)
        label = "ViT-L/14 layer20 conv-20 (seeded weights)" if name == "vit" else f"starter ({loc.model_name})"
        rounds = []
        for i in range(args.rounds):
            for mode in (("pipelined", "serial") if i % 2 == 0 else ("serial", "pipelined")):
                r = run_round(loc, photos, work, pipelined=mode == "pipelined")
                r["mode"] = mode
                rounds.append(r)
                print(f"  {label} round {i + 1} {mode}: wall {r['wall']:.1f} s, forward {r['forward']:.1f} s, "
                      f"beyond {100 * r['share']:.1f} %", flush=True)
        report(label, rounds, args.images)
        del loc
    print(machine().rsplit(",", 1)[-1].strip().replace("1-min load average", "load average at the end"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
