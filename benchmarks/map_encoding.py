"""16-bit PNG encoding of a full-size probability map: size against time per setting (issue 23 item 5).

The stored map is lossless 16-bit (value × 65535), so only the encoder's effort may change: the
zlib level, the zlib strategy and the PNG row filter. Maps are what the runner stores: a network
map (a seeded smooth-plus-noise field of the model's map size, squashed through a sigmoid like
logits) resized bilinearly (antialiased, as `engine.preprocess.resize_map`) to a 12 MP photo.
Every setting is decoded again and compared level for level with the input.

    .venv/bin/python benchmarks/map_encoding.py [--size 4000x3000] [--map 256] [--maps 3] [--repeat 3] [--full]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def network_like_map(side: int, seed: int) -> np.ndarray:
    """A side×side map like a localizer's: mostly confident background, a few blobs, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    logits = -3.0 + 1.5 * np.sin(6 * xx + rng.uniform(0, 6)) * np.cos(5 * yy + rng.uniform(0, 6))
    for _ in range(3):
        cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.2)
        logits += 6.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    logits += rng.normal(0, 0.8, logits.shape).astype(np.float32)
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def full_size(small: np.ndarray, width: int, height: int) -> np.ndarray:
    import torch

    from declip_desktop.engine.preprocess import resize_map

    return resize_map(torch.from_numpy(small), height, width)


def isal_png(levels: np.ndarray, level: int, up: bool) -> bytes:
    """The shipped encoder's recipe with another ISA-L level or the Up filter instead of Sub."""
    import struct
    import zlib

    from isal import isal_zlib

    h, w = levels.shape
    be = levels.astype(">u2").view(np.uint8).reshape(h, 2 * w)
    rows = np.empty((h, 2 * w + 1), np.uint8)
    if up:
        rows[:, 0] = 2
        rows[0, 1:] = be[0]
        np.subtract(be[1:], be[:-1], out=rows[1:, 1:])
    else:
        rows[:, 0] = 1
        rows[:, 1:3] = be[:, :2]
        np.subtract(be[:, 2:], be[:, :-2], out=rows[:, 3:])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
            + chunk(b"IDAT", isal_zlib.compress(rows, level)) + chunk(b"IEND", b""))


def settings(full: bool):
    import cv2

    yield "OpenCV defaults (stored maps before)", []
    for level in (0, 1, 2, 3):
        for up in (False, True):
            yield f"ISA-L level {level}, {'up' if up else 'sub'}", (level, up)
    if not full:  # the candidates a first full sweep left (see docs/PERFORMANCE.md)
        for level in (0, 1, 2):
            for filt, fname in ((cv2.IMWRITE_PNG_FILTER_SUB, "sub"), (cv2.IMWRITE_PNG_FILTER_UP, "up")):
                for strategy, sname in ((cv2.IMWRITE_PNG_STRATEGY_DEFAULT, "default"),
                                        (cv2.IMWRITE_PNG_STRATEGY_RLE, "rle")):
                    if level or (filt == cv2.IMWRITE_PNG_FILTER_SUB and sname == "default"):
                        yield f"level {level}, {sname}, {fname}", [
                            cv2.IMWRITE_PNG_COMPRESSION, level, cv2.IMWRITE_PNG_STRATEGY, strategy,
                            cv2.IMWRITE_PNG_FILTER, filt]
        return
    for level in (0, 1, 3, 6):
        for strategy, sname in ((cv2.IMWRITE_PNG_STRATEGY_DEFAULT, "default"),
                                (cv2.IMWRITE_PNG_STRATEGY_RLE, "rle"),
                                (cv2.IMWRITE_PNG_STRATEGY_FILTERED, "filtered")):
            for filt, fname in ((None, "cv2 filter"), (cv2.IMWRITE_PNG_FILTER_NONE, "none"),
                                (cv2.IMWRITE_PNG_FILTER_SUB, "sub"), (cv2.IMWRITE_PNG_FILTER_UP, "up"),
                                (cv2.IMWRITE_PNG_FILTER_PAETH, "paeth"), (cv2.IMWRITE_PNG_FAST_FILTERS, "fast")):
                if level == 0 and (strategy != cv2.IMWRITE_PNG_STRATEGY_DEFAULT or filt is not None):
                    continue
                params = [cv2.IMWRITE_PNG_COMPRESSION, level, cv2.IMWRITE_PNG_STRATEGY, strategy]
                if filt is not None:
                    params += [cv2.IMWRITE_PNG_FILTER, filt]
                yield f"level {level}, {sname}, {fname}", params


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="4000x3000")
    ap.add_argument("--map", type=int, default=256, help="the network map's side")
    ap.add_argument("--maps", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", help="substring: run only settings whose name contains it")
    ap.add_argument("--full", action="store_true", help="every level × strategy × filter (long)")
    args = ap.parse_args()
    import cv2

    from benchmarks.pipeline_common import machine
    from declip_desktop.cases.files import write_durable
    from declip_desktop.common.hashing import sha256_bytes, sha256_file
    from declip_desktop.common.probmaps import PNG_DEFLATE_LEVEL, encode_png16, to_uint16

    width, height = (int(v) for v in args.size.lower().split("x"))
    print(machine())
    print(f"{args.maps} maps {args.map}×{args.map} → {width}×{height}, median of {args.repeat} encodes each")
    maps = [full_size(network_like_map(args.map, 100 + i), width, height) for i in range(args.maps)]
    levels = [to_uint16(m) for m in maps]
    t = time.perf_counter()
    for m in maps:
        to_uint16(m)
    print(f"float → 16-bit levels: {1000 * (time.perf_counter() - t) / len(maps):.0f} ms/map")
    walls, cpus, sizes = [], [], []
    for m, lv in zip(maps, levels):
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.thread_time()
            png = encode_png16(m)
            walls.append(time.perf_counter() - t)
            cpus.append(time.thread_time() - c)
        back = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert back.dtype == np.uint16 and np.array_equal(back, lv)  # lossless, level for level
        sizes.append(len(png))
    print(f"encode_png16 as shipped (levels + Sub filter + ISA-L level {PNG_DEFLATE_LEVEL}): "
          f"{1000 * statistics.median(walls):.0f} ms wall, {1000 * statistics.median(cpus):.0f} ms CPU, "
          f"{statistics.mean(sizes) / 1e6:.2f} MB/map (OpenCV below: from the 16-bit levels)")
    # CPU seconds of this thread (what the encoding costs the machine, which the other jobs on a
    # shared machine do not inflate much) beside wall seconds; "+ write" adds what storing does
    # with the bytes: SHA-256, durable write with fsync, the read-back hash.
    print(f"{'setting':<38} {'wall ms':>8} {'CPU ms':>8} {'+ write':>8} {'MB/map':>8}")
    scratch = Path(tempfile.mkdtemp(prefix="declip-mapenc-"))
    for name, params in settings(args.full):
        if args.only and args.only not in name:
            continue
        times, cpus, stores, sizes = [], [], [], []
        for lv in levels:
            walls, cpu = [], []
            for _ in range(args.repeat):
                t, c = time.perf_counter(), time.thread_time()
                if isinstance(params, tuple):
                    ok, buf = True, np.frombuffer(isal_png(lv, *params), np.uint8)
                else:
                    ok, buf = cv2.imencode(".png", lv, params)
                walls.append(time.perf_counter() - t)
                cpu.append(time.thread_time() - c)
            assert ok
            back = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
            assert back.dtype == np.uint16 and np.array_equal(back, lv), name  # lossless, level for level
            c = time.thread_time()
            data = buf.tobytes()
            sha256_bytes(data)
            target = scratch / "map.png"
            write_durable(target, data)
            sha256_file(target)
            target.unlink()
            stores.append(time.thread_time() - c)
            times.append(statistics.median(walls))
            cpus.append(statistics.median(cpu))
            sizes.append(buf.size)
        print(f"{name:<38} {1000 * statistics.mean(times):8.0f} {1000 * statistics.mean(cpus):8.0f} "
              f"{1000 * statistics.mean(stores):8.0f} {statistics.mean(sizes) / 1e6:8.2f}", flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    print(machine().rsplit(",", 1)[-1].strip().replace("1-min load average", "load average at the end"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
