#!/usr/bin/env python3
"""Starter model: size on disk and seconds per 1024-px image on the CPU.

Prints JSON. Times the whole per-image path the Localizer runs for the starter: resize to the
card's input_size (PIL bilinear) — or, for a card with `max_side`, keep the native size when the
long side is at most max_side (a 1024×1024 image runs at 1024×1024) —, normalize, forward
(averaged over the card's test_time_flips views), sigmoid, bilinear upsampling to 1024×1024.
Also times a 1024×768 photo (the common 4:3 shape).
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
    from declip_desktop.engine.preprocess import native_size

    rng = np.random.default_rng(0)

    def photo_like(h: int, w: int) -> np.ndarray:
        # Photo-like test image: smooth gradients plus noise (content does not change the cost).
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx / 4, yy / 4, (xx + yy) / 8], -1) % 256
        return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)

    image, image_43 = photo_like(1024, 1024), photo_like(768, 1024)

    def model_size(img: np.ndarray) -> tuple[int, int]:
        h, w = img.shape[:2]
        return native_size(w, h, int(card["max_side"])) if card.get("max_side") else (int(card["input_size"]),) * 2

    cpu: list[float] = []  # process CPU seconds per image: on a shared, overloaded machine wall time
    # measures the other programs too; CPU time (all threads summed) is the work this path does.

    def once(img: np.ndarray) -> float:
        t, c = time.perf_counter(), time.process_time()
        h, w = img.shape[:2]
        small = np.asarray(Image.fromarray(img).resize(model_size(img), Image.BILINEAR))
        with torch.no_grad():
            x = starter.normalize(torch.from_numpy(np.array(small)).unsqueeze(0), card["mean"], card["std"])
            prob = torch.sigmoid(F.interpolate(net(x), size=(h, w), mode="bilinear", align_corners=False))
            prob[0, 0].numpy()
        cpu.append(time.process_time() - c)
        return time.perf_counter() - t

    once(image)  # warm-up (allocator, oneDNN kernels)
    cpu.clear()
    times = [once(image) for _ in range(args.repeats)]
    cpu_1024 = list(cpu)
    times_43 = [once(image_43) for _ in range(args.repeats)]
    result = {
        "benchmark": "starter",
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs, {platform.python_version()}, torch {torch.__version__}",
        "threads": args.threads,
        "weights_bytes": weights.stat().st_size,
        "weights_mb": round(weights.stat().st_size / 1e6, 2),
        "parameters": sum(p.numel() for p in net.parameters()),
        "input_size": int(card["input_size"]),
        "max_side": card.get("max_side"),  # native resolution up to this long side (None: the square input)
        "network_input_for_1024px": list(model_size(image)),
        "test_time_flips": int(card.get("test_time_flips", 1)),  # forward passes per image
        "seconds_per_1024px_image_median": round(statistics.median(times), 3),
        "seconds_per_1024px_image_max": round(max(times), 3),
        "cpu_seconds_per_1024px_image_median": round(statistics.median(cpu_1024), 3),
        "seconds_per_1024x768_image_median": round(statistics.median(times_43), 3),
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
