"""Manipulation families an analyst meets, each with a train and a (different) test parameter set.

Used by `training.synth_general` (the generalization-oriented data set of the starter model).
Every family renders a full-size candidate image and a soft alpha in [0, 1] (feathered edges,
soft brushes); the result is ``alpha * candidate + (1 - alpha) * source`` and the ground-truth
mask is ``alpha > 0.5`` restricted to pixels that actually changed region-wise (the caller checks
with `synth.region_changed`). Outside the alpha's support the image is bit-identical to the source.

Method-disjoint test split: each family draws its parameters from `params[split]`, where the
test ranges differ from train/valid (other feathering widths, rotation and scale ranges, filters,
inpainting radii, cloning mode shares, ...), so a test figure measures generalization to
parameters the model was not trained on, not recall of the generator's settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from declip_desktop.training.synth import make_mask

FAMILIES: tuple[str, ...] = (
    "splice", "copy_move", "retouch", "smoothing", "local_adjust", "inpaint_removal", "seamless_clone",
)

#: Per-family parameter ranges; "test" differs from "train" (valid uses train's, as its job is model selection).
PARAMS: dict[str, dict[str, dict]] = {
    "splice": {"train": {"feather": (0.0, 3.0), "colour_match": 0.5},
               "test": {"feather": (3.0, 7.0), "colour_match": 0.8}},
    "copy_move": {"train": {"angle": (-25.0, 25.0), "scale": (0.75, 1.3), "feather": (0.0, 2.0)},
                  "test": {"angle": (25.0, 50.0), "scale": (0.55, 0.75), "feather": (1.0, 3.0)}},
    "retouch": {"train": {"healing": 0.3, "dabs": (2, 6), "radius": (0.02, 0.05)},
                "test": {"healing": 0.7, "dabs": (4, 10), "radius": (0.015, 0.04)}},
    "smoothing": {"train": {"filters": ("bilateral", "gaussian")},
                  "test": {"filters": ("edge_preserving", "median", "frequency_separation")}},
    "local_adjust": {"train": {"edits": ("hue", "gamma", "unsharp")},
                     "test": {"edits": ("saturation", "levels", "laplacian_sharpen")}},
    "inpaint_removal": {"train": {"radius": (3, 6), "text": 0.4},
                        "test": {"radius": (7, 12), "text": 0.4}},
    "seamless_clone": {"train": {"mixed": 0.35}, "test": {"mixed": 0.65}},
}


def _params(family: str, split: str) -> dict:
    return PARAMS[family]["test" if split == "test" else "train"]


def feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    """A hard mask → soft alpha (Gaussian edge of `sigma` px); sigma 0 keeps it hard."""
    alpha = mask.astype(np.float32)
    if sigma > 0.25:
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
    return alpha


def colour_match(patch: np.ndarray, target: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Reinhard transfer in Lab: the patch's region statistics → the target's around that region."""
    if region.sum() < 16:
        return patch
    ring = cv2.dilate(region.astype(np.uint8), np.ones((31, 31), np.uint8)).astype(bool)
    src = cv2.cvtColor(patch, cv2.COLOR_RGB2LAB).astype(np.float32)
    dst = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    ps, ts = src[region], dst[ring]
    out = (src - ps.mean(0)) / (ps.std(0) + 1e-3) * ts.std(0) + ts.mean(0)
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def _donor_view(donor: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """An h×w view of a donor photo at a random (down)scale, so pasted content has its own scale."""
    dh, dw = donor.shape[:2]
    scale = float(rng.uniform(max(h / dh, w / dw), max(h / dh, w / dw, 1.0)))
    ch, cw = min(dh, math.ceil(h / scale)), min(dw, math.ceil(w / scale))
    y, x = int(rng.integers(0, dh - ch + 1)), int(rng.integers(0, dw - cw + 1))
    return cv2.resize(donor[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_AREA)


def _region_mask(h: int, w: int, rng: np.random.Generator, max_cov: float = 0.3) -> np.ndarray:
    for _ in range(30):
        mask, _ = make_mask(h, w, rng)
        if mask.mean() <= max_cov:
            return mask
    # Rare: keep the shape but clip it to a box of about max_cov of the image.
    bh, bw = max(8, int(h * math.sqrt(max_cov))), max(8, int(w * math.sqrt(max_cov)))
    ys, xs = np.nonzero(mask)
    y0 = int(np.clip(ys.mean() - bh / 2, 0, h - bh))
    x0 = int(np.clip(xs.mean() - bw / 2, 0, w - bw))
    box = np.zeros_like(mask)
    box[y0:y0 + bh, x0:x0 + bw] = True
    return mask & box


def _splice(src, rng, split, donor):
    p = _params("splice", split)
    h, w = src.shape[:2]
    mask = _region_mask(h, w, rng)
    patch = _donor_view(donor, h, w, rng)
    matched = bool(rng.random() < p["colour_match"])
    if matched:
        patch = colour_match(patch, src, mask)
    sigma = float(rng.uniform(*p["feather"]))
    return patch, feather(mask, sigma), {"feather": round(sigma, 2), "colour_match": matched}


def _copy_move(src, rng, split, donor):
    p = _params("copy_move", split)
    h, w = src.shape[:2]
    mask = _region_mask(h, w, rng, 0.2)
    ys, xs = np.nonzero(mask)
    cy, cx = float(ys.mean()), float(xs.mean())
    for _ in range(10):
        dx, dy = rng.uniform(-0.6, 0.6) * w, rng.uniform(-0.6, 0.6) * h
        if math.hypot(dx, dy) > 0.15 * min(h, w):
            break
    angle = float(rng.uniform(*p["angle"])) * (1 if rng.random() < 0.5 else -1)
    scale = float(rng.uniform(*p["scale"]))
    if split != "test" and rng.random() < 0.3:
        angle, scale = 0.0, 1.0  # plain translation also occurs in practice
    m = cv2.getRotationMatrix2D((cx + dx, cy + dy), angle, scale)
    m[:, 2] += [-dx, -dy]
    warped = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REFLECT_101)
    sigma = float(rng.uniform(*p["feather"]))
    return warped, feather(mask, sigma), {"angle": round(angle, 1), "scale": round(scale, 3), "feather": round(sigma, 2)}


def _retouch(src, rng, split, donor):
    """Clone-stamp / healing-brush dabs: small soft discs filled from a nearby patch of the image."""
    p = _params("retouch", split)
    h, w = src.shape[:2]
    out = src.copy()
    alpha = np.zeros((h, w), np.float32)
    side = min(h, w)
    healed = 0
    for _ in range(int(rng.integers(*p["dabs"]))):
        r = max(4, int(rng.uniform(*p["radius"]) * side))
        cy, cx = int(rng.integers(r, h - r)), int(rng.integers(r, w - r))
        off = rng.uniform(1.5, 4.0) * r * np.array([math.cos(a := rng.uniform(0, 2 * math.pi)), math.sin(a)])
        sy, sx = int(np.clip(cy + off[1], r, h - r - 1)), int(np.clip(cx + off[0], r, w - r - 1))
        dab = np.zeros((h, w), np.uint8)
        cv2.ellipse(dab, (cx, cy), (r, max(3, int(r * rng.uniform(0.5, 1.0)))), float(rng.uniform(0, 180)), 0, 360, 1, -1)
        shift = np.float32([[1, 0, sx - cx], [0, 1, sy - cy]])
        moved = cv2.warpAffine(out, shift, (w, h), flags=cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT_101)
        if rng.random() < p["healing"]:  # healing brush: gradient-domain blend of the sampled texture
            pad = r + 2
            y0, y1, x0, x1 = max(0, cy - pad), min(h, cy + pad), max(0, cx - pad), min(w, cx + pad)
            sub = dab[y0:y1, x0:x1] * 255
            sub[0, :], sub[-1, :], sub[:, 0], sub[:, -1] = 0, 0, 0, 0
            if sub.any():
                full = np.pad(sub, ((y0, h - y1), (x0, w - x1)))
                bx, by, bw, bh = cv2.boundingRect(full)
                cand = cv2.seamlessClone(moved, out, full, (bx + bw // 2, by + bh // 2), cv2.NORMAL_CLONE)
                out = np.where(dab[..., None] > 0, cand, out)
                alpha = np.maximum(alpha, dab.astype(np.float32))
                healed += 1
                continue
        soft = feather(dab, r * 0.25)
        out = (soft[..., None] * moved + (1 - soft[..., None]) * out).round().astype(np.uint8)
        alpha = np.maximum(alpha, soft)
    return out, alpha, {"healing_dabs": healed}


def _smoothing(src, rng, split, donor):
    p = _params("smoothing", split)
    h, w = src.shape[:2]
    mask = _region_mask(h, w, rng)
    kind = str(rng.choice(p["filters"]))
    if kind == "bilateral":
        out = cv2.bilateralFilter(src, int(rng.choice([5, 7, 9])), float(rng.uniform(30, 90)), float(rng.uniform(5, 15)))
    elif kind == "gaussian":
        out = cv2.GaussianBlur(src, (0, 0), float(rng.uniform(0.8, 3.0)))
    elif kind == "edge_preserving":
        out = cv2.edgePreservingFilter(src, flags=int(rng.choice([1, 2])), sigma_s=float(rng.uniform(20, 60)),
                                       sigma_r=float(rng.uniform(0.2, 0.5)))
    elif kind == "median":
        out = cv2.medianBlur(src, int(rng.choice([3, 5])))
    else:  # frequency separation: keep the low-pass colour, damp the fine detail (skin retouching)
        low = cv2.GaussianBlur(src.astype(np.float32), (0, 0), 3.0)
        out = np.clip(low + (src - low) * float(rng.uniform(0.1, 0.4)), 0, 255).round().astype(np.uint8)
    sigma = float(rng.uniform(1.0, 4.0))
    return out, feather(mask, sigma), {"filter": kind, "feather": round(sigma, 2)}


def _local_adjust(src, rng, split, donor):
    p = _params("local_adjust", split)
    h, w = src.shape[:2]
    mask = _region_mask(h, w, rng)
    kind = str(rng.choice(p["edits"]))
    f = src.astype(np.float32)
    if kind in ("hue", "saturation"):
        hsv = cv2.cvtColor(src, cv2.COLOR_RGB2HSV).astype(np.float32)
        if kind == "hue":
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(10, 60) * rng.choice([-1, 1])) % 180
        else:
            hsv[..., 1] = np.clip(hsv[..., 1] * rng.choice([rng.uniform(0.2, 0.6), rng.uniform(1.5, 2.5)]), 0, 255)
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    elif kind == "gamma":
        out = 255.0 * (f / 255.0) ** float(rng.choice([rng.uniform(0.5, 0.8), rng.uniform(1.3, 2.0)]))
    elif kind == "levels":
        lo, hi = float(rng.uniform(0, 40)), float(rng.uniform(200, 255))
        out = (f - lo) / (hi - lo) * 255.0 + float(rng.uniform(-25, 25))
    elif kind == "unsharp":
        blur = cv2.GaussianBlur(f, (0, 0), float(rng.uniform(1.0, 2.5)))
        out = f + float(rng.uniform(0.8, 2.0)) * (f - blur)
    else:  # laplacian sharpening (a different kernel from unsharp masking)
        out = f - float(rng.uniform(0.5, 1.2)) * cv2.Laplacian(f, cv2.CV_32F, ksize=1)
    out = np.clip(out, 0, 255).round().astype(np.uint8)
    sigma = float(rng.uniform(1.0, 5.0))
    return out, feather(mask, sigma), {"edit": kind, "feather": round(sigma, 2)}


def text_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Rendered text strokes (a caption, a watermark, a date stamp) as a hard mask."""
    mask = np.zeros((h, w), np.uint8)
    scale = float(rng.uniform(0.6, 2.2)) * min(h, w) / 500
    thickness = max(1, int(round(scale * rng.uniform(1.5, 3.0))))
    words = ["2019:06:14 18:32", "SAMPLE", "(c) Studio", "www.example.org", "CONFIDENTIAL", "Lot 42", "IMG_0042"]
    for _ in range(int(rng.integers(1, 4))):
        text = str(rng.choice(words))
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        x, y = int(rng.integers(0, max(1, w - tw))), int(rng.integers(th + 1, max(th + 2, h - 2)))
        cv2.putText(mask, text, (x, y), int(rng.choice([0, 2, 3])), scale, 1, thickness, cv2.LINE_AA)
    return mask.astype(bool)


def _inpaint_removal(src, rng, split, donor):
    """Object or text removal: paint text (or take an object region) and fill it with cv2.inpaint."""
    p = _params("inpaint_removal", split)
    h, w = src.shape[:2]
    method = str(rng.choice(["telea", "navier-stokes"]))
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    radius = int(rng.integers(p["radius"][0], p["radius"][1] + 1))
    if rng.random() < p["text"]:
        mask = text_mask(h, w, rng)
        mask = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        what = "text"
    else:
        mask = _region_mask(h, w, rng, 0.08)
        what = "object"
    out = cv2.inpaint(src, mask.astype(np.uint8) * 255, radius, flag)
    return out, mask.astype(np.float32), {"method": method, "radius": radius, "removed": what}


def _seamless_clone(src, rng, split, donor):
    p = _params("seamless_clone", split)
    h, w = src.shape[:2]
    mask = _region_mask(h, w, rng, 0.25)
    patch = _donor_view(donor, h, w, rng)
    mixed = bool(rng.random() < p["mixed"])
    pad = 16
    dst_p = cv2.copyMakeBorder(src, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    src_p = cv2.copyMakeBorder(patch, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    m = np.zeros(dst_p.shape[:2], np.uint8)
    m[pad:-pad, pad:-pad] = mask.astype(np.uint8) * 255
    x, y, bw, bh = cv2.boundingRect(m)
    flag = cv2.MIXED_CLONE if mixed else cv2.NORMAL_CLONE
    out = cv2.seamlessClone(src_p, dst_p, m, (x + bw // 2, y + bh // 2), flag)[pad:-pad, pad:-pad]
    return out, mask.astype(np.float32), {"mode": "mixed" if mixed else "normal"}


RENDERERS: dict[str, Callable] = {
    "splice": _splice, "copy_move": _copy_move, "retouch": _retouch, "smoothing": _smoothing,
    "local_adjust": _local_adjust, "inpaint_removal": _inpaint_removal, "seamless_clone": _seamless_clone,
}


def render(family: str, src: np.ndarray, rng: np.random.Generator, split: str, donor: np.ndarray):
    """(edited image uint8, ground-truth mask bool, params) for one family on `src`."""
    candidate, alpha, params = RENDERERS[family](src, rng, split, donor)
    a = alpha[..., None]
    edited = np.where(a > 0, (a * candidate.astype(np.float32) + (1 - a) * src).round(), src).astype(np.uint8)
    return edited, alpha > 0.5, params
