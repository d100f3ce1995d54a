"""Per-case calibration (issue 19 item 1): does the calibrated threshold keep the requested
false-alarm rate on held-out authentic images, and how long does calibrating take?

Synthetic authentic data (no model): image scores from Beta(2, 8); probability maps from a Beta
distribution whose parameters vary per image (photos differ). For each setting, `--trials`
seeded trials calibrate on n references and measure the rate on held-out images. Then the time
of `pixel_survival` on one 12-megapixel map and of the bootstrap over n references.

    python benchmarks/calibration.py [--trials 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from declip_desktop.common import calibration as cal


def _maps(rng, count, size=(24, 32)):
    return [rng.beta(rng.uniform(1, 3), rng.uniform(10, 30), size=size) for _ in range(count)]


def image_trials(n: int, rate: float, trials: int) -> tuple[float, float]:
    rates, covered = [], 0
    for t in range(trials):
        rng = np.random.default_rng(10_000 + t)
        refs, held = rng.beta(2, 8, size=n), rng.beta(2, 8, size=20_000)
        est = cal.image_threshold(refs, rate, seed=t, resamples=500)
        rates.append(np.mean(held > est.threshold))
        covered += np.mean(held > est.high) <= rate <= np.mean(held > est.low)
    return float(np.mean(rates)), covered / trials


def pixel_trials(n: int, rate: float, trials: int) -> tuple[float, float]:
    def held_rate(levels, t):
        return float(np.mean([np.mean(lv > np.floor(t * 65535)) for lv in levels]))

    rates, covered = [], 0
    for t in range(trials):
        rng = np.random.default_rng(20_000 + t)
        S = np.stack([cal.pixel_survival(m) for m in _maps(rng, n)])
        held = [cal.map_levels(m) for m in _maps(rng, 200)]
        est = cal.pixel_threshold(S, rate, seed=t, resamples=500)
        rates.append(held_rate(held, est.threshold))
        covered += held_rate(held, est.high) <= rate <= held_rate(held, est.low)
    return float(np.mean(rates)), covered / trials


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args(argv)
    print("| quantity | n | requested | held-out rate (mean) | interval holds the true threshold |")
    print("|---|---|---|---|---|")
    for n in (10, 20, 40, 100):
        mean, cov = image_trials(n, 0.05, args.trials)
        print(f"| image score | {n} | 5 % | {100 * mean:.2f} % | {100 * cov:.0f} % of trials |")
    for n in (10, 20, 40):
        mean, cov = pixel_trials(n, 0.01, max(20, args.trials // 4))
        print(f"| pixel | {n} | 1 % | {100 * mean:.3f} % | {100 * cov:.0f} % of trials |")
    rng = np.random.default_rng(0)
    big = rng.beta(2, 20, size=(3000, 4000)).astype(np.float32)
    t0 = time.perf_counter()
    curve = cal.pixel_survival(big)
    t_map = time.perf_counter() - t0
    for n in (20, 100):
        S = np.repeat(curve[None, :], n, axis=0) * rng.uniform(0.8, 1.2, size=(n, 1)).clip(0, 1)
        t0 = time.perf_counter()
        cal.pixel_threshold(S, 0.01, resamples=1000)
        t_boot = time.perf_counter() - t0
        print(f"n = {n}: survival curve of one 12 MP map {t_map:.2f} s; pixel bootstrap (1000 resamples) "
              f"{t_boot:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
