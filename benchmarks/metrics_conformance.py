"""Check `training.metrics` against the DeCLIP authors' own metric code, value for value.

The authors' code is not shipped with this project (its licence forbids it); point this
script at a copy of their `utils/utils.py` (github.com/bit-ml/DeCLIP). It needs
`torchmetrics` and `scikit-learn` (the project's dev extras). It scores many random and
hand-made map/mask pairs both ways — the authors' side exactly as their
`validate_fully_supervised` does it (mask `ToTensor() > 0.5`, map resized with
torchvision `F.resize(..., BILINEAR)` when sizes differ) — and prints every mismatch.

    python benchmarks/metrics_conformance.py --authors-utils /path/to/DeCLIP/utils/utils.py
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time

import numpy as np


def load_authors(path: str):
    spec = importlib.util.spec_from_file_location("declip_authors_utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def authors_scores(au, prob_map: np.ndarray, mask_l: np.ndarray) -> tuple[float, float, float, float]:
    import torch
    import torchvision
    from PIL import Image
    from torchvision import transforms
    from torchvision.transforms import functional as F

    mask = (transforms.ToTensor()(Image.fromarray(mask_l, mode="L")) > 0.5).float().squeeze()
    out = torch.from_numpy(prob_map)
    if out.size() != mask.size():
        out = F.resize(out.unsqueeze(0), mask.size(), interpolation=torchvision.transforms.InterpolationMode.BILINEAR).squeeze(0)
    iou = au.compute_batch_iou([out], [mask], threshold=0.5)[0]
    f1_best, f1_fixed = au.compute_batch_localization_f1([out], [mask])
    ap = au.compute_batch_ap([out], [mask])[0]
    return iou, f1_best[0], f1_fixed[0], ap


def blob_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """8-bit L mask (255 = manipulated) with a few rectangles/ellipses, or a trivial one."""
    kind = rng.integers(0, 10)
    if kind == 0:
        return np.zeros((h, w), np.uint8)
    if kind == 1:
        return np.full((h, w), 255, np.uint8)
    m = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(rng.integers(1, 4)):
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        ry, rx = rng.integers(1, max(2, h // 2)), rng.integers(1, max(2, w // 2))
        m[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 255
    if kind == 2:  # anti-aliased edge values around 127/128
        m = np.where(m > 0, rng.integers(120, 256, m.shape), rng.integers(0, 136, m.shape)).astype(np.uint8)
    return m


def random_map(rng: np.random.Generator, h: int, w: int, mask_l: np.ndarray) -> np.ndarray:
    kind = rng.integers(0, 7)
    if kind == 0:
        return np.full((h, w), rng.choice([0.0, 0.5, 1.0, rng.random()]), np.float32)
    base = rng.random((h, w)).astype(np.float32)
    if kind == 1:  # few levels: many ties
        return (np.round(base * 4) / 4).astype(np.float32)
    if kind == 2 and mask_l.shape == (h, w):  # correlated with the mask
        return np.clip(0.6 * (mask_l > 127) + 0.5 * base - 0.1, 0, 1).astype(np.float32)
    if kind == 3:  # 8-bit levels, as a PNG map would give
        return (np.round(base * 255) / np.float32(255)).astype(np.float32)
    if kind == 4:  # exact 0/1 binary map (resizes may overshoot 1.0 by an ulp)
        return (base > 0.5).astype(np.float32)
    return base


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--authors-utils", required=True, help="path to the authors' utils/utils.py")
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-side", type=int, default=70, help="largest mask side in pixels (default 70)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from declip_desktop.training.metrics import image_metrics

    au = load_authors(args.authors_utils)
    rng = np.random.default_rng(args.seed)
    mismatches = 0
    t0 = time.time()
    for case in range(args.cases):
        h, w = int(rng.integers(2, args.max_side)), int(rng.integers(2, args.max_side))  # their squeeze() breaks on 1-px sides
        mask_l = blob_mask(rng, h, w)
        if rng.random() < 0.3:  # map at another size than the mask (up- or down-sampled)
            mh, mw = int(rng.integers(2, args.max_side + 20)), int(rng.integers(2, args.max_side + 20))
        else:
            mh, mw = h, w
        prob = random_map(rng, mh, mw, mask_l)
        theirs = authors_scores(au, prob, mask_l)
        mine = image_metrics(prob, mask_l >= 128)
        ours = (mine["iou"], mine["f1_best"], mine["f1_fixed"], mine["ap"])
        for name, a, b in zip(("iou", "f1_best", "f1_fixed", "ap"), theirs, ours):
            same = (math.isnan(a) and math.isnan(b)) or a == b
            if not same:
                mismatches += 1
                print(f"case {case} ({h}x{w} mask, {mh}x{mw} map) {name}: authors {a!r} ours {b!r}")
    print(f"{args.cases} cases, {4 * args.cases} values, {mismatches} mismatches ({time.time() - t0:.1f}s)")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
