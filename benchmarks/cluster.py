"""Local run vs a run through Ray on this machine, and the per-item cost of going through Ray.

Makes COUNT photo-like JPEGs (smoothed noise, SIZE px wide, 4:3) in two fresh cases, then:

  local:    analysis.run_queue with a Localizer (CPU, --threads torch threads)
  ray:      cluster.run_on_cluster on a local Ray with the same CPUs (1 actor × --threads cores,
            then --threads actors × 1 core); the actors' start-up (process + torch + model load)
            is timed apart from the steady state
  overhead: an echo actor (no model) that gets each item as the cluster driver sends it and
            returns a 16-bit PNG map of the image's size, as a worker does: the round trip in ms
            per item and the bytes each way, batch 1 and batch 4

The model is the bundled starter model by default (real weights, no download), or --model.
Prints the machine (CPU, cores, load average): figures taken on a busy machine say so.

    python benchmarks/cluster.py [--count 24] [--size 1024] [--threads 2] [--model NAME]
    python benchmarks/cluster.py --maps-only [--map-sizes 1024x768,4000x3000]

--maps-only measures what a full-resolution map costs per item, without Ray: its 16-bit PNG
size (the bytes a worker sends back), the worker's encode time, and the driver's store time
(decode + `case.store_result`, which encodes again), for a map like a manipulated photo's
(mid-range values) and like an authentic photo's (near 0).
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_photos(folder: Path, count: int, width: int) -> list[Path]:
    import cv2

    rng = np.random.default_rng(0)
    height = width * 3 // 4
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        noise = rng.normal(128, 60, (height // 8, width // 8, 3)).clip(0, 255).astype(np.uint8)
        img = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img.astype(np.int16) + rng.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
        path = folder / f"photo{i:03d}.jpg"
        Image.fromarray(img).save(path, quality=90)
        paths.append(path)
    return paths


def new_case(root: Path, photos: Path):
    from declip_desktop.cases import Case

    case = Case.create(root, number="BENCH", title="cluster benchmark", analyst="bench")
    case.import_paths([photos])
    return case


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return f"{cpu}, {os.cpu_count()} cores, load average {' '.join(f'{v:.1f}' for v in load)}"


class Echo:
    """Stands in for the model actor: hashes the bytes it gets, answers with a map PNG."""

    def __init__(self, maps):
        self.maps = maps

    def analyse(self, items, first):
        import hashlib

        out = []
        for item, png in zip(items, self.maps[first:first + len(items)]):
            hashlib.sha256(item["data"]).hexdigest()
            out.append({"evidence_id": item["evidence_id"], "map_png": png, "score": 0.5, "seconds": 0.0})
        return out


def map_costs(sizes: list[tuple[int, int]]) -> None:
    import torch

    from declip_desktop.cases import Case
    from declip_desktop.cases.audit import now_iso
    from declip_desktop.common.probmaps import decode_png16, encode_png16
    from declip_desktop.engine.preprocess import resize_map

    torch.manual_seed(0)
    coarse = torch.nn.functional.interpolate(torch.randn(1, 1, 16, 16) * 3, size=(256, 256), mode="bilinear")[0, 0]
    work = Path(tempfile.mkdtemp(prefix="declip-bench-maps-", dir="/tmp"))
    for width, height in sizes:
        photo = work / f"p{width}x{height}.png"
        Image.new("RGB", (width, height), (90, 120, 150)).save(photo)
        case = Case.create(work / f"case{width}", number="B", title="maps", analyst="bench")
        ev = case.import_paths([photo]).imported[0]
        for kind, native in (("manipulated-like", torch.sigmoid(coarse + 0.3 * torch.randn(256, 256))),
                             ("authentic-like", torch.sigmoid(coarse - 8 + 0.3 * torch.randn(256, 256)))):
            full = resize_map(native, height, width)
            t0 = time.perf_counter()
            png = encode_png16(full)
            enc = time.perf_counter() - t0
            t0 = time.perf_counter()
            case.store_result(ev.id, model_name="m", model_sha256="0" * 64, parameters={}, score=0.5,
                              prob_map=decode_png16(png), device="cpu", seconds=0.0, started=now_iso(),
                              finished=now_iso())
            store = time.perf_counter() - t0
            print(f"map {width}×{height} {kind}: 16-bit PNG {len(png) / 2**20:.2f} MiB, worker encode "
                  f"{enc * 1000:.0f} ms, driver store (decode + store_result) {store * 1000:.0f} ms")
        case.close()
    import shutil

    shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--size", type=int, default=1024, help="image width in px (height = 3/4)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="starter")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--maps-only", action="store_true", help="only the per-map costs (no model, no Ray)")
    ap.add_argument("--map-sizes", default="1024x768,4000x3000")
    args = ap.parse_args()
    if args.maps_only:
        print(f"machine: {machine()}")
        map_costs([tuple(int(v) for v in s.split("x")) for s in args.map_sizes.split(",")])
        return 0

    import torch

    torch.set_num_threads(args.threads)
    from declip_desktop.analysis import run_queue
    from declip_desktop.cluster.connect import ClusterSession
    from declip_desktop.cluster.driver import ClusterOptions, run_on_cluster
    from declip_desktop.modelstore.loading import load_localizer

    print(f"machine: {machine()}; Python {platform.python_version()}, torch {torch.__version__}")
    work = Path(tempfile.mkdtemp(prefix="declip-bench-cluster-", dir="/tmp"))
    photos = make_photos(work / "photos", args.count, args.size)
    mean_kb = statistics.mean(p.stat().st_size for p in photos) / 1024
    print(f"{args.count} JPEGs {args.size}×{args.size * 3 // 4}, {mean_kb:.0f} KiB on average; model {args.model}; "
          f"batch {args.batch_size}")

    case = new_case(work / "local", work / "photos")
    loc = load_localizer(args.model, device="cpu", batch_size=args.batch_size, threads=args.threads)
    t0 = time.perf_counter()
    s = run_queue(case, loc)
    local_s = time.perf_counter() - t0
    assert s.done == args.count, s.failures
    print(f"local    : {local_s / args.count:.3f} s per image ({args.count / local_s:.2f} images/s), "
          f"{args.threads} torch threads")
    maps = [case.map_file(case.latest_analysis(e.id)).read_bytes() for e in case.evidence_list()]
    case.close()

    with ClusterSession("local", num_cpus=args.threads) as session:
        for actors, cpus in [(1, args.threads)] + ([(args.threads, 1)] if args.threads > 1 else []):
            c = new_case(work / f"ray-{actors}x{cpus}", work / "photos")
            starts: list[float] = []
            t0 = time.perf_counter()

            def on(ev, starts=starts):
                if ev.status in ("started", "finished"):
                    starts.append(time.perf_counter())

            r = run_on_cluster(c, args.model, session, ClusterOptions(actors=actors, cpus_per_actor=cpus,
                                                                       batch_size=args.batch_size, start_with=actors),
                               on_progress=on)
            assert r.done == args.count, r.failures
            startup, steady = starts[0] - t0, starts[1] - starts[0]
            print(f"ray {actors}×{cpus}  : {steady / args.count:.3f} s per image ({args.count / steady:.2f} images/s) "
                  f"after {startup:.1f} s start-up (actor processes, torch import, model load)")
            c.close()

        ray = session.ray
        echo = ray.remote(Echo).options(num_cpus=0.1).remote(maps)
        case = new_case(work / "echo", work / "photos")
        evs = case.evidence_list()
        ray.get(echo.analyse.remote([], 0))  # actor up before timing
        for batch in (1, 4):
            times, sent, back = [], [], []
            for start in range(0, len(evs), batch):
                chunk = evs[start:start + batch]
                items = [{"evidence_id": e.id, "sha256": e.sha256, "data": case.evidence_file(e).read_bytes()}
                         for e in chunk]
                t0 = time.perf_counter()
                out = ray.get(echo.analyse.remote(items, start))
                times.append((time.perf_counter() - t0) * 1000 / len(chunk))
                sent.append(len(pickle.dumps(items)) / len(chunk))
                back.append(len(pickle.dumps(out)) / len(chunk))
            print(f"overhead batch {batch}: {statistics.median(times):.1f} ms per item (median; map PNG sent "
                  f"back with it), {statistics.mean(sent) / 1024:.0f} KiB to the worker, "
                  f"{statistics.mean(back) / 1024:.0f} KiB back per item")
        case.close()
    print(f"map PNG (16-bit) {statistics.mean(len(m) for m in maps) / 1024:.0f} KiB per image on average")
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
