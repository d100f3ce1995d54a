#!/usr/bin/env python3
"""Starter model: size on disk and seconds per 1024-px image on the CPU.

Prints JSON. Times the whole per-image path the Localizer runs for the starter: resize to the
card's input_size (PIL bilinear), normalize, forward (averaged over the card's test_time_flips
views), sigmoid, bilinear upsampling to 1024×1024.
When engine.localizer exists it also times `Localizer(model).predict_one` end to end.

    .venv/bin/python benchmarks/starter.py [--threads 2] [--repeats 7] [--models models]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--models", default=str(Path(__file__).resolve().parents[1] / "models"))
    parser.add_argument("--name", default="starter")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F
    from PIL import Image

    from declip_desktop.engine import starter

    torch.set_num_threads(args.threads)
    models = Path(args.models)
    card = json.loads((models / f"{args.name}.json").read_text())
    weights = models / f"{args.name}.safetensors"
    net = starter.load_starter(weights, card)
    size = int(card["input_size"])
    rng = np.random.default_rng(0)
    # A 1024-px photo-like test image: smooth gradients plus noise (content does not change the cost).
    yy, xx = np.mgrid[0:1024, 0:1024]
    base = np.stack([xx / 4, yy / 4, (xx + yy) / 8], -1) % 256
    image = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)

    def once() -> float:
        t = time.perf_counter()
        small = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
        with torch.no_grad():
            x = starter.normalize(torch.from_numpy(np.array(small)).unsqueeze(0), card["mean"], card["std"])
            prob = torch.sigmoid(F.interpolate(net(x), size=(1024, 1024), mode="bilinear", align_corners=False))
            prob[0, 0].numpy()
        return time.perf_counter() - t

    once()  # warm-up (allocator, oneDNN kernels)
    times = [once() for _ in range(args.repeats)]
    result = {
        "benchmark": "starter",
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs, {platform.python_version()}, torch {torch.__version__}",
        "threads": args.threads,
        "weights_bytes": weights.stat().st_size,
        "weights_mb": round(weights.stat().st_size / 1e6, 2),
        "parameters": sum(p.numel() for p in net.parameters()),
        "input_size": size,
        "test_time_flips": int(card.get("test_time_flips", 1)),  # forward passes per image
        "seconds_per_1024px_image_median": round(statistics.median(times), 3),
        "seconds_per_1024px_image_max": round(max(times), 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    try:
        from declip_desktop.modelstore.loading import load_localizer
    except ImportError:
        result["localizer"] = "engine.localizer not available; network path timed only"
    else:
        loc = load_localizer(str(weights), device="cpu", threads=args.threads)
        loc.predict_one(image)
        lt = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            loc.predict_one(image)
            lt.append(time.perf_counter() - t)
        result["localizer_seconds_per_1024px_image_median"] = round(statistics.median(lt), 3)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
