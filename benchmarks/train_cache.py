"""Epoch time of `declip train` without and with the backbone feature cache.

Builds a small Dolos-layout set of random images (with masks), then trains:
  A. with the cache off: every epoch runs the backbone on every image;
  B. with the cache on (empty at start): epoch 1 runs the backbone and fills the cache,
     epoch 2 reads the features back and runs only the decoder.
Speed-up = mean epoch time of A / epoch-2 time of B. The backbone has random weights
(the cost of a forward pass does not depend on the weights' values).

The ratio depends on the architecture, not on how many images there are: a ViT-L/14
`layer20` forward is ~140 GFLOP per image, a `conv-20` decoder's training step ~240
GFLOP per image (forward ~80, backward ~2×), a `conv-4`'s ~80. So the default measures
the real paper configuration, on few images so that it ends in minutes on a CPU.

    python benchmarks/train_cache.py                      # ViT-L/14 layer20 conv-20, 4+2 images
    python benchmarks/train_cache.py --decoder conv-4
    python benchmarks/train_cache.py --size tiny --images 32   # quick smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_set(root: Path, n_train: int, n_val: int, side: int) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("valid", n_val)):
        for i in range(n):
            img = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
            mask = np.full((side, side), 255, np.uint8)
            y, x = rng.integers(0, side // 2, 2)
            mask[y : y + side // 3, x : x + side // 3] = 0
            for kind, arr in (("images", img), ("masks", mask)):
                d = root / "fake" / "bench" / kind / split
                d.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(d / f"{i:04d}.png")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=("full", "tiny"), default="full", help="real ViT-L/14 sizes, or the test-sized one")
    ap.add_argument("--layer", default=None, help="default layer20 (full) / layer1 (tiny)")
    ap.add_argument("--decoder", default="conv-20")
    ap.add_argument("--images", type=int, default=4, help="training images (validation: half as many)")
    ap.add_argument("--side", type=int, default=256, help="image side in pixels")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="declip-bench-cache-"))
    os.environ["DECLIP_HOME"] = str(work / "home")
    from declip_desktop.training.config import TrainConfig
    from declip_desktop.training.decoder_training import train

    layer = args.layer or ("layer20" if args.size == "full" else "layer1")
    n_val = max(1, args.images // 2)
    make_set(work / "data", args.images, n_val, args.side)
    common = dict(data=str(work / "data"), layer=layer, decoder=args.decoder, random_backbone=args.size,
                  batch_size=args.batch_size, device=args.device, install=False, cache_dir=str(work / "cache"))
    try:
        t0 = time.perf_counter()
        a = train(TrainConfig(name="nocache", epochs=1, cache=False, work_dir=str(work / "a"), **common))
        b = train(TrainConfig(name="cache", epochs=2, cache=True, work_dir=str(work / "b"), **common))
        total = time.perf_counter() - t0
        cache_mb = sum(p.stat().st_size for p in (work / "cache").rglob("*.npy")) / 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)

    no_cache = float(np.mean([h.seconds for h in a.history]))
    fill, cached = b.history[0].seconds, b.history[1].seconds
    no_cache_cpu = float(np.mean([h.cpu_seconds for h in a.history]))
    fill_cpu, cached_cpu = b.history[0].cpu_seconds, b.history[1].cpu_seconds
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"config: ViT-L/14 {layer} ({args.size} sizes, random weights), decoder {args.decoder}, "
          f"{args.images} train + {n_val} val images of {args.side}x{args.side}, batch {args.batch_size}")
    print(f"machine: {platform.machine()} {os.cpu_count()} CPU(s), {args.threads} torch thread(s), device {args.device}, "
          f"torch {torch.__version__}, load average {load:.1f}")
    print("                                  wall      CPU (all threads)")
    print(f"epoch without cache:            {no_cache:8.2f} s  {no_cache_cpu:8.2f} s")
    print(f"epoch 1 with cache (filling):   {fill:8.2f} s  {fill_cpu:8.2f} s"
          f"   (backbone on {b.history[0].backbone_images} images)")
    print(f"epoch 2 with cache (reading):   {cached:8.2f} s  {cached_cpu:8.2f} s"
          f"   (backbone on {b.history[1].backbone_images} images)")
    print(f"speed-up of cached epochs:      {no_cache / cached:8.2f}x   {no_cache_cpu / cached_cpu:8.2f}x (CPU time)")
    print(f"cache size: {cache_mb:.1f} MiB for {args.images + n_val} images; total benchmark time {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
