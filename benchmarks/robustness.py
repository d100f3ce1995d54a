"""What agreement across models and the stability check cost beyond the model itself, at 12 MP.

    .venv/bin/python benchmarks/robustness.py [--size 4000x3000] [--models 3] [--rounds 3]

The model's own time is 1 analysis per model (agreement) and 4 analyses (stability), measured
in docs/PERFORMANCE.md "Engine"; this script times everything else, on constructed data (no
model, no downloads), median of `--rounds` after a warm-up, OpenCV limited to 2 threads:

- stability: making the four copies (JPEG 90/75 encode, Lanczos 0.75 + PNG, blur + PNG), the
  scaled copy's map back to full size, and the per-region IoUs (`region_stability`);
- agreement: `agreement_maps` + `region_agreement` over `--models` maps (what the CLI and the
  report compute), and the inspector's display computation (`RobustnessState.compute`).

Maps: smooth blobs (a few large regions) plus noise crossing the threshold in places (hundreds
of small regions), so region counts are like a real localizer's on a hard image.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import cv2
import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def photo(w: int, h: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([x * 255 / w, y * 255 / h, (np.sin(x / 37) * np.cos(y / 23) + 1) * 127], -1)
    return (rgb + np.random.default_rng(0).normal(0, 6, rgb.shape)).clip(0, 255).astype(np.uint8)


def a_map(w: int, h: int, seed: int, noise: float = 0.08) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((h // 64, w // 64)).astype(np.float32)
    smooth = cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.5), (w, h), interpolation=cv2.INTER_CUBIC)
    smooth = (smooth - smooth.min()) / (np.ptp(smooth) + 1e-9)
    grain = rng.normal(0, noise, (h // 4, w // 4)).astype(np.float32)
    return np.clip(smooth * 0.9 + cv2.resize(grain, (w, h), interpolation=cv2.INTER_NEAREST), 0, 1)


def timed(fn, rounds: int) -> tuple[float, object]:  # noqa: ANN001
    result = fn()  # warm-up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="4000x3000")
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    cv2.setNumThreads(2)
    from declip_desktop.common.agreement import agreement_maps, region_agreement
    from declip_desktop.common.stability import VARIANTS, make_variant, map_to_original, region_stability
    from declip_desktop.gui.agreement_view import ItemMaps, RobustnessState

    print(f"{w}×{h} ({w * h / 1e6:.1f} MP), {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, OpenCV {cv2.__version__}")
    rgb = photo(w, h)
    for v in VARIANTS:
        seconds, (data, _suffix) = timed(lambda v=v: make_variant(rgb, v), args.rounds)
        print(f"copy {v.label:<22} {seconds:6.2f} s  {len(data) / 1e6:5.1f} MB")
    small = a_map(round(w * 0.75), round(h * 0.75), 9)
    seconds, _ = timed(lambda: map_to_original(small, (h, w)), args.rounds)
    print(f"scaled map back to full size  {seconds:6.2f} s")
    smooth = a_map(w, h, 1, noise=0.0)
    base = a_map(w, h, 1)
    for label, m in (("smooth map", smooth), ("noisy map", base)):
        variants = {v.name: np.clip(m + np.random.default_rng(i).normal(0, 0.03, m.shape).astype(np.float32), 0, 1)
                    for i, v in enumerate(VARIANTS)}
        n_regions = cv2.connectedComponents((m > 0.5).astype(np.uint8), connectivity=8)[0] - 1
        seconds, _ = timed(lambda m=m, variants=variants: region_stability(m, variants, 0.5), args.rounds)
        print(f"region_stability, 4 copies, {label} ({n_regions} regions)  {seconds:6.2f} s")
    maps = [base] + [a_map(w, h, 10 + i) for i in range(args.models - 1)]
    ts = [0.5] * len(maps)
    seconds, _ = timed(lambda: agreement_maps(maps, ts), args.rounds)
    print(f"agreement_maps, {len(maps)} models  {seconds:6.2f} s")
    seconds, ra = timed(lambda: region_agreement(maps, ts, regions_of=0), args.rounds)
    print(f"region_agreement, {len(maps)} models, {len(ra)} regions  {seconds:6.2f} s")
    state = RobustnessState()
    state.set_item(ItemMaps(names=[f"m{i}" for i in range(len(maps))], maps=maps))
    seconds, _ = timed(lambda: state.compute(0.5), args.rounds)
    print(f"inspector agreement view (count + cells)  {seconds:6.2f} s")


if __name__ == "__main__":
    main()
