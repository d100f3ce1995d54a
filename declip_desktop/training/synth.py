"""Synthetic local manipulations with exact masks, made from a folder of real photos.

Used to train and test the starter model and to give tests and demos realistic
manipulated images. Everything here is numpy + OpenCV + PIL (no torch).

Definition of the mask (the invariant the tests check):
    every manipulation first renders a full-size *candidate* image, then the result is
    ``where(mask, candidate, source)``. So the mask is exactly the set of pixels that were
    replaced: outside it the image is bit-identical to the source crop; inside it the pixels
    come from the manipulation. A replaced pixel may coincidentally keep its value (e.g. a blur
    over a flat patch), but a sample is only accepted when the region as a whole changed:
    at least ``MIN_CHANGED_FRACTION`` of the in-mask pixels differ from the source and their
    mean absolute difference is at least ``MIN_MEAN_ABS_DIFF`` grey levels. The optional
    whole-image JPEG recompression is applied after this, to the whole image.

Determinism: each image draws all its randomness from its own numpy Generator seeded with
(seed, split, index), so a given seed and photo folder give the same files on any machine
(OpenCV and PIL operations used here are deterministic).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.images import IMAGE_SUFFIXES, load_rgb

#: Manipulation types, in the round-robin order images are assigned to them.
MANIPULATIONS: tuple[str, ...] = (
    "splice",
    "copy_move",
    "inpaint_telea",
    "inpaint_ns",
    "poisson",
    "resample",
    "blur",
    "noise",
)
MASK_SHAPES: tuple[str, ...] = ("object", "brush", "box")
SPLITS: tuple[str, ...] = ("train", "valid", "test")

MIN_COVERAGE = 0.01
MAX_COVERAGE = 0.40
MIN_CHANGED_FRACTION = 0.5
MIN_MEAN_ABS_DIFF = 2.0
#: Crops smaller than this (either side) are never made: the starter trains on 256-px crops.
MIN_SIDE = 256

_SPLIT_IDS = {name: i for i, name in enumerate(SPLITS)}


class SynthError(ValueError):
    """Synthesis cannot run with these inputs; the message says what to change."""


@dataclass
class SynthesizedSample:
    """One manipulated image, its mask (bool H×W, True = manipulated) and its record."""

    image: np.ndarray
    mask: np.ndarray
    source_crop: np.ndarray
    record: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- masks


def _place(shape: np.ndarray, h: int, w: int, coverage: float, rng: np.random.Generator) -> np.ndarray:
    """Scale a filled shape (bool, tight bbox) so it covers ~coverage of an h×w image; place it."""
    fill = max(float(shape.mean()), 1e-3)
    aspect = shape.shape[1] / shape.shape[0]
    box_area = coverage * h * w / fill
    bh = int(round(math.sqrt(box_area / aspect)))
    bw = int(round(bh * aspect))
    bh, bw = max(4, min(bh, h)), max(4, min(bw, w))
    scaled = cv2.resize(shape.astype(np.uint8), (bw, bh), interpolation=cv2.INTER_NEAREST).astype(bool)
    y = int(rng.integers(0, h - bh + 1))
    x = int(rng.integers(0, w - bw + 1))
    mask = np.zeros((h, w), bool)
    mask[y : y + bh, x : x + bw] = scaled
    return mask


def _tight(canvas: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(canvas)
    return canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(bool)


def _object_shape(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A filled object-like shape: smooth blob, random polygon or ellipse (in a 256² canvas)."""
    kind = str(rng.choice(["blob", "polygon", "ellipse"]))
    canvas = np.zeros((256, 256), np.uint8)
    if kind == "ellipse":
        axes = (int(rng.integers(30, 120)), int(rng.integers(30, 120)))
        cv2.ellipse(canvas, (128, 128), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif kind == "polygon":
        n = int(rng.integers(5, 12))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(40, 120, n)
        pts = np.stack([128 + radii * np.cos(angles), 128 + radii * np.sin(angles)], 1).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 1)
    else:  # smooth blob: a star-shaped contour whose radius is a low-order Fourier series
        t = np.linspace(0, 2 * np.pi, 180, endpoint=False)
        r = np.full_like(t, 70.0)
        for k in range(1, 5):
            r += rng.uniform(-18, 18) / k * np.cos(k * t + rng.uniform(0, 2 * np.pi))
        r = np.clip(r, 20, 125)
        pts = np.stack([128 + r * np.cos(t), 128 + r * np.sin(t)], 1).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 1)
    return _tight(canvas), kind


def _brush_mask(h: int, w: int, coverage: float, rng: np.random.Generator) -> np.ndarray:
    """Free-hand brush strokes (random walks drawn thick) until the coverage is reached."""
    mask = np.zeros((h, w), np.uint8)
    side = min(h, w)
    thickness = int(rng.integers(max(3, side // 50), max(5, side // 12)))
    target = coverage * h * w
    for _ in range(40):
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        angle = float(rng.uniform(0, 2 * np.pi))
        pts = [(x, y)]
        for _ in range(int(rng.integers(3, 9))):
            angle += float(rng.normal(0, 0.8))
            step = float(rng.uniform(0.05, 0.2)) * side
            x = float(np.clip(x + step * math.cos(angle), 0, w - 1))
            y = float(np.clip(y + step * math.sin(angle), 0, h - 1))
            pts.append((x, y))
        cv2.polylines(mask, [np.array(pts, np.int32)], False, 1, thickness, lineType=cv2.LINE_8)
        if mask.sum() >= target:
            break
    return mask.astype(bool)


def make_mask(h: int, w: int, rng: np.random.Generator, shape: str | None = None) -> tuple[np.ndarray, dict]:
    """A random mask covering MIN_COVERAGE..MAX_COVERAGE of an h×w image."""
    shape = shape or str(rng.choice(MASK_SHAPES))
    for _ in range(20):
        coverage = float(rng.uniform(MIN_COVERAGE, MAX_COVERAGE))
        info: dict[str, Any] = {"shape": shape}
        if shape == "box":
            aspect = float(np.exp(rng.uniform(-0.7, 0.7)))
            mask = _place(np.ones((100, max(1, int(100 * aspect))), bool), h, w, coverage, rng)
        elif shape == "object":
            obj, kind = _object_shape(rng)
            info["object"] = kind
            mask = _place(obj, h, w, coverage, rng)
        elif shape == "brush":
            mask = _brush_mask(h, w, coverage, rng)
        else:
            raise SynthError(f"unknown mask shape {shape!r}; use one of {', '.join(MASK_SHAPES)}")
        actual = float(mask.mean())
        if MIN_COVERAGE <= actual <= MAX_COVERAGE:
            return mask, info
    # Rare: shapes kept missing the range; a box hits it by construction.
    return make_mask(h, w, rng, "box")


# --------------------------------------------------------------------------- manipulations


def _random_crop(photo: np.ndarray, h: int, w: int, rng: np.random.Generator, scale_range=(0.5, 1.5)):
    """An h×w view of `photo` at a random scale (resampled), reflecting if it is too small."""
    ph, pw = photo.shape[:2]
    lo = max(scale_range[0], h / ph, w / pw)
    scale = float(rng.uniform(lo, max(lo, scale_range[1])))
    ch, cw = min(ph, int(math.ceil(h / scale))), min(pw, int(math.ceil(w / scale)))
    y, x = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    interp = int(rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA]))
    crop = cv2.resize(photo[y : y + ch, x : x + cw], (w, h), interpolation=interp)
    return crop, {"crop": [x, y, cw, ch], "scale": round(scale, 4), "interpolation": _INTERP_NAMES[interp]}


_INTERP_NAMES = {cv2.INTER_LINEAR: "linear", cv2.INTER_CUBIC: "cubic", cv2.INTER_AREA: "area", cv2.INTER_NEAREST: "nearest"}


def _splice(src, mask, rng, donor):
    patch, info = _random_crop(donor.pixels, *src.shape[:2], rng)
    return patch, {"donor": donor.name, **{f"donor_{k}": v for k, v in info.items()}}


def _copy_move(src, mask, rng, donor):
    h, w = src.shape[:2]
    ys, xs = np.nonzero(mask)
    cy, cx = float(ys.mean()), float(xs.mean())
    # Take the content from elsewhere in the same image: shift by at least 15% of the side.
    for _ in range(10):
        dx, dy = rng.uniform(-0.6, 0.6) * w, rng.uniform(-0.6, 0.6) * h
        if math.hypot(dx, dy) > 0.15 * min(h, w):
            break
    angle = float(rng.uniform(-20, 20)) if rng.random() < 0.5 else 0.0
    scale = float(rng.uniform(0.8, 1.25)) if rng.random() < 0.5 else 1.0
    # Destination (cx, cy) samples source (cx + dx, cy + dy), rotated/scaled about it.
    m = cv2.getRotationMatrix2D((cx + dx, cy + dy), angle, scale)
    m[:, 2] += [-dx, -dy]
    warped = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REFLECT_101)
    return warped, {"offset": [round(dx, 1), round(dy, 1)], "angle": round(angle, 2), "scale": round(scale, 4)}


def _inpaint(flag: int, name: str):
    def run(src, mask, rng, donor):
        radius = int(rng.integers(3, 10))
        out = cv2.inpaint(src, mask.astype(np.uint8) * 255, radius, flag)
        return out, {"method": name, "radius": radius}

    return run


def _poisson(src, mask, rng, donor):
    h, w = src.shape[:2]
    patch, info = _random_crop(donor.pixels, h, w, rng)
    mode = str(rng.choice(["normal", "mixed"]))
    # seamlessClone refuses masks touching the border: pad both images, clone, crop back.
    pad = 16
    dst_p = cv2.copyMakeBorder(src, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    src_p = cv2.copyMakeBorder(patch, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    m = np.zeros(dst_p.shape[:2], np.uint8)
    m[pad:-pad, pad:-pad] = mask.astype(np.uint8) * 255
    x, y, bw, bh = cv2.boundingRect(m)
    center = (x + bw // 2, y + bh // 2)
    flag = cv2.NORMAL_CLONE if mode == "normal" else cv2.MIXED_CLONE
    out = cv2.seamlessClone(src_p, dst_p, m, center, flag)[pad:-pad, pad:-pad]
    return out, {"mode": mode, "donor": donor.name, **{f"donor_{k}": v for k, v in info.items()}}


def _resample(src, mask, rng, donor):
    h, w = src.shape[:2]
    factor = float(rng.uniform(0.3, 0.75))
    down = int(rng.choice([cv2.INTER_LINEAR, cv2.INTER_AREA, cv2.INTER_CUBIC, cv2.INTER_NEAREST]))
    up = int(rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_NEAREST]))
    small = cv2.resize(src, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=down)
    out = cv2.resize(small, (w, h), interpolation=up)
    return out, {"factor": round(factor, 4), "down": _INTERP_NAMES[down], "up": _INTERP_NAMES[up]}


def _blur(src, mask, rng, donor):
    kind = str(rng.choice(["gaussian", "median", "box"]))
    if kind == "gaussian":
        sigma = float(rng.uniform(1.0, 3.5))
        return cv2.GaussianBlur(src, (0, 0), sigma), {"kind": kind, "sigma": round(sigma, 3)}
    k = int(rng.choice([3, 5, 7]))
    out = cv2.medianBlur(src, k) if kind == "median" else cv2.blur(src, (k, k))
    return out, {"kind": kind, "ksize": k}


def _noise(src, mask, rng, donor):
    kind = str(rng.choice(["gaussian", "uniform", "luma"]))
    sigma = float(rng.uniform(3.0, 14.0))
    if kind == "gaussian":
        n = rng.normal(0, sigma, src.shape)
    elif kind == "uniform":
        n = rng.uniform(-sigma * math.sqrt(3), sigma * math.sqrt(3), src.shape)
    else:  # same noise on the three channels, like a luminance-only noise filter
        n = np.repeat(rng.normal(0, sigma, src.shape[:2])[..., None], 3, axis=2)
    out = np.clip(src.astype(np.float32) + n, 0, 255).round().astype(np.uint8)
    return out, {"kind": kind, "sigma": round(sigma, 3)}


_RENDERERS: dict[str, Callable] = {
    "splice": _splice,
    "copy_move": _copy_move,
    "inpaint_telea": _inpaint(cv2.INPAINT_TELEA, "telea"),
    "inpaint_ns": _inpaint(cv2.INPAINT_NS, "navier-stokes"),
    "poisson": _poisson,
    "resample": _resample,
    "blur": _blur,
    "noise": _noise,
}


def region_changed(source: np.ndarray, image: np.ndarray, mask: np.ndarray) -> bool:
    """The acceptance rule of the module docstring: did the masked region as a whole change?"""
    diff = np.abs(image.astype(np.int16) - source.astype(np.int16)).max(axis=2)[mask]
    return diff.size > 0 and float((diff > 0).mean()) >= MIN_CHANGED_FRACTION and float(diff.mean()) >= MIN_MEAN_ABS_DIFF


# --------------------------------------------------------------------------- photos and samples


@dataclass
class Photo:
    name: str
    pixels: np.ndarray  # H×W×3 uint8


def load_photos(folder: str | Path, min_side: int = MIN_SIDE) -> list[Photo]:
    """The photos of a folder (sorted by name); too-small ones are an error, not skipped silently."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SynthError(f"photo folder {folder} does not exist; pass a folder of photos with --photos")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SynthError(f"no images in {folder}; put JPEG/PNG photos there (e.g. scripts/fetch_starter_photos.py)")
    photos = []
    for path in files:
        pixels = load_rgb(path)
        if min(pixels.shape[:2]) < min_side:
            raise SynthError(f"{path} is {pixels.shape[1]}×{pixels.shape[0]} px; photos must be at least {min_side} px on each side")
        photos.append(Photo(path.name, pixels))
    return photos


def synthesize(
    photo: Photo,
    rng: np.random.Generator,
    manipulation: str,
    donors: Sequence[Photo],
    size: int = 512,
    shape: str | None = None,
) -> SynthesizedSample:
    """One manipulated crop of `photo`. `donors` supply content for splice/poisson."""
    if manipulation not in _RENDERERS:
        raise SynthError(f"unknown manipulation {manipulation!r}; use one of {', '.join(MANIPULATIONS)}")
    ph, pw = photo.pixels.shape[:2]
    h, w = min(size, ph), min(size, pw)
    # Downscale the photo by up to 2× (never upscale: upscaling smooths the whole image).
    source, crop_info = _random_crop(photo.pixels, h, w, rng, scale_range=(0.5, 1.0))
    for attempt in range(12):
        mask, mask_info = make_mask(h, w, rng, shape)
        donor_pool = [d for d in donors if d.name != photo.name] or [photo]
        donor = donor_pool[int(rng.integers(len(donor_pool)))]
        candidate, params = _RENDERERS[manipulation](source, mask, rng, donor)
        image = np.where(mask[..., None], candidate, source)
        if region_changed(source, image, mask):
            break
    else:
        # e.g. a blur or inpainting over a featureless sky: fall back to noise, which always changes it.
        manipulation = "noise"
        candidate, params = _noise(source, mask, rng, donor)
        image = np.where(mask[..., None], candidate, source)
    record = {
        "source": photo.name,
        "source_crop": crop_info["crop"],
        "source_scale": crop_info["scale"],
        "type": manipulation,
        "params": params,
        "mask_shape": mask_info,
        "coverage": round(float(mask.mean()), 5),
        "attempts": attempt + 1,
        "width": w,
        "height": h,
    }
    return SynthesizedSample(image=np.ascontiguousarray(image), mask=mask, source_crop=source, record=record)


def jpeg_recompress(image: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality), subsampling=0 if quality >= 90 else 2)
    return buf.getvalue()


def split_photos(photos: Sequence[Photo], seed: int, test_fraction: float,
                 test_names: Sequence[str] | None = None) -> tuple[list[Photo], list[Photo]]:
    """(train/valid photos, test photos). Test photos are never used in train/valid."""
    if len(photos) < 2:
        raise SynthError("need at least 2 photos so that the test split uses photos unseen in training")
    if test_names:
        missing = set(test_names) - {p.name for p in photos}
        if missing:
            raise SynthError(f"--test-photos names not found in the photo folder: {', '.join(sorted(missing))}")
        test = [p for p in photos if p.name in set(test_names)]
    else:
        order = np.random.default_rng(np.random.SeedSequence([seed, 7919])).permutation(len(photos))
        k = min(len(photos) - 1, max(1, int(round(test_fraction * len(photos)))))
        test = [photos[i] for i in sorted(order[:k])]
    test_set = {p.name for p in test}
    rest = [p for p in photos if p.name not in test_set]
    if not rest:
        raise SynthError("every photo was put in the test split; leave some for training")
    return rest, test


def split_counts(n: int, valid_fraction: float, test_fraction: float) -> dict[str, int]:
    n_test = int(round(n * test_fraction))
    n_valid = int(round(n * valid_fraction))
    return {"train": n - n_test - n_valid, "valid": n_valid, "test": n_test}


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_IDS[split], index]))


def generate_dataset(
    photos_dir: str | Path,
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    jpeg_prob: float = 0.0,
    jpeg_quality: tuple[int, int] = (70, 95),
    size: int = 512,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.15,
    test_photo_fraction: float = 0.25,
    test_photos: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write `<out>/<split>/images|masks` + `<out>/manifest.jsonl` + `<out>/synth.json`.

    Returns the summary written to synth.json (counts per split and type).
    """
    if n < 1:
        raise SynthError("--n must be at least 1")
    if not 0.0 <= jpeg_prob <= 1.0:
        raise SynthError(f"--jpeg-prob must lie in [0, 1], got {jpeg_prob}")
    if size < MIN_SIDE:
        raise SynthError(f"--size must be at least {MIN_SIDE}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise SynthError(f"output folder {out} is not empty; choose a new folder so no earlier data set is mixed in")
    photos = load_photos(photos_dir)
    trainval_photos, test_photos_list = split_photos(photos, seed, test_photo_fraction, test_photos)
    counts = split_counts(n, valid_fraction, test_fraction)
    pools = {"train": trainval_photos, "valid": trainval_photos, "test": test_photos_list}
    summary: dict[str, Any] = {
        "seed": seed, "n": n, "size": size, "jpeg_prob": jpeg_prob, "jpeg_quality": list(jpeg_quality),
        "photos": {p.name: ("test" if p in test_photos_list else "train/valid") for p in photos},
        "photo_sha256": {p.name: sha256_file(Path(photos_dir) / p.name) for p in photos},
        "counts": counts, "types": {s: {} for s in SPLITS}, "mask_definition": "white = pixels replaced by the manipulation (see declip_desktop/training/synth.py)",
    }
    done = 0
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "manifest.jsonl", "w") as manifest:
        for split in SPLITS:
            (out / split / "images").mkdir(parents=True, exist_ok=True)
            (out / split / "masks").mkdir(parents=True, exist_ok=True)
            pool = pools[split]
            for i in range(counts[split]):
                rng = image_rng(seed, split, i)
                photo = pool[int(rng.integers(len(pool)))]
                manipulation = MANIPULATIONS[i % len(MANIPULATIONS)]
                sample = synthesize(photo, rng, manipulation, pool, size=size)
                stem = f"{split}_{i:06d}"
                quality = None
                if jpeg_prob > 0 and rng.random() < jpeg_prob:
                    quality = int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1))
                    image_name = f"{stem}.jpg"
                    (out / split / "images" / image_name).write_bytes(jpeg_recompress(sample.image, quality))
                else:
                    image_name = f"{stem}.png"
                    Image.fromarray(sample.image).save(out / split / "images" / image_name)
                Image.fromarray(sample.mask.astype(np.uint8) * 255).save(out / split / "masks" / f"{stem}.png")
                record = {"split": split, "image": f"{split}/images/{image_name}", "mask": f"{split}/masks/{stem}.png",
                          "seed": seed, "index": i, **sample.record, "jpeg_quality": quality}
                manifest.write(json.dumps(record, sort_keys=True) + "\n")
                types = summary["types"][split]
                types[sample.record["type"]] = types.get(sample.record["type"], 0) + 1
                done += 1
                if progress:
                    progress(done, n)
    (out / "synth.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def read_manifest(out_dir: str | Path) -> list[dict[str, Any]]:
    with open(Path(out_dir) / "manifest.jsonl") as fh:
        return [json.loads(line) for line in fh if line.strip()]
