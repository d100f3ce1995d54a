"""The generalization-oriented data set of the starter model (`declip synth-general`).

Why a second generator: the first one (`training.synth`) produced 512-px crops with eight
manipulation types and no unedited image, so a model trained on it learned "smooth or
noise-free area = edited" (the independent evaluation of issue 22: 72 % of unedited photos
flagged). This one makes every cue that is not an edit appear in unedited images too:

1. crop a photo at (near) native resolution (train 320-768 px long side, valid 512-1024,
   test 640-1280: the starter runs at native resolution up to its card's `max_side`);
2. a *camera stage*, applied alike to edited and unedited images: depth-of-field defocus with a
   smooth depth map, motion blur, sensor noise / film grain (added after the optics, as in a
   camera), strong tone curves and HDR-like local tone mapping, rendered text and UI panels
   (screenshot-like), an earlier JPEG or resize (already-processed photos);
3. either nothing (an **authentic** image with an empty mask, 40 % of train, 30 % of test) or one
   edit from `training.synth_families` (test parameters differ from train);
4. a *post-processing stage* on the whole image, again alike for both: none, JPEG at a random
   quality, resizing, or a resize + recompress chain like a social network's. The test split uses
   other qualities/filters than train and is balanced over (family × post-processing).

Photo-disjoint splits: test images come only from the test photos, validation images only from
validation photos; neither is used for training nor as a donor for training images.
Determinism: every image draws from its own Generator seeded with (seed, split, index).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from declip_desktop.common.hashing import sha256_file
from declip_desktop.training.synth import Photo, SynthError, load_photos, region_changed
from declip_desktop.training.synth_families import FAMILIES, render, text_mask

SPLITS = ("train", "valid", "test")
AUTHENTIC = "authentic"
POST_KINDS = ("none", "jpeg", "resize", "chain")
#: Long-side ranges (px) of the images of each split.
SIZES = {"train": (320, 768), "valid": (512, 1024), "test": (640, 1280)}
TRAIN_AUTHENTIC_SHARE = 0.4
#: Test and validation order: 7 families then 3 authentic images, repeated (30 % authentic).
_CYCLE = FAMILIES + (AUTHENTIC,) * 3
_SPLIT_IDS = {name: i for i, name in enumerate(SPLITS)}


def jpeg(image: np.ndarray, quality: int, subsampling: int | None = None) -> tuple[np.ndarray, bytes]:
    buf = io.BytesIO()
    sub = subsampling if subsampling is not None else (0 if quality >= 90 else 2)
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality), subsampling=sub)
    data = buf.getvalue()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), data


def _resize(image: np.ndarray, mask: np.ndarray, scale: float, interp: int):
    h, w = image.shape[:2]
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    out = cv2.resize(image, size, interpolation=interp)
    m = cv2.resize(mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_LINEAR) > 127
    return out, m


# --------------------------------------------------------------------------- camera stage


def _smooth_field(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field in [0, 1] (a depth map): coarse noise upsampled, plus a gradient."""
    coarse = rng.random((int(rng.integers(2, 5)), int(rng.integers(2, 5)))).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    grad = (math.cos(angle) * xx / w + math.sin(angle) * yy / h)
    field = field + float(rng.uniform(0, 1.5)) * grad
    field -= field.min()
    return field / max(float(field.max()), 1e-6)


def defocus(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Depth-of-field blur: a stack of disc (bokeh-like) blurs blended by a smooth depth map."""
    h, w = image.shape[:2]
    depth = _smooth_field(h, w, rng)
    focus = float(rng.uniform(0.0, 0.6))  # depths below this are in focus
    blur_amount = np.clip((depth - focus) / max(1e-3, 1 - focus), 0, 1)
    max_r = int(rng.integers(3, 12))
    levels = [image.astype(np.float32)]
    for r in (max_r // 3, 2 * max_r // 3, max_r):
        r = max(1, r)
        disc = np.zeros((2 * r + 1, 2 * r + 1), np.float32)
        cv2.circle(disc, (r, r), r, 1.0, -1)
        levels.append(cv2.filter2D(image.astype(np.float32), -1, disc / disc.sum(), borderType=cv2.BORDER_REFLECT))
    pos = blur_amount * (len(levels) - 1)
    lo = np.floor(pos).astype(int)
    frac = (pos - lo)[..., None]
    stack = np.stack(levels)
    hi = np.minimum(lo + 1, len(levels) - 1)
    yy, xx = np.mgrid[0:h, 0:w]
    out = stack[lo, yy, xx] * (1 - frac) + stack[hi, yy, xx] * frac
    return np.clip(out, 0, 255).round().astype(np.uint8)


def motion_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    length = int(rng.integers(5, 16))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6), borderType=cv2.BORDER_REFLECT)


def sensor_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Signal-dependent (shot + read) noise, sometimes with coarser film-like grain."""
    f = image.astype(np.float32)
    read, shot = float(rng.uniform(0.5, 4.0)), float(rng.uniform(0.0, 0.08))
    sigma = np.sqrt(read ** 2 + shot * f)
    n = rng.standard_normal(f.shape).astype(np.float32)
    if rng.random() < 0.3:  # grain: spatially correlated, mostly luminance
        n = cv2.GaussianBlur(n, (0, 0), float(rng.uniform(0.6, 1.2))) * 2.0
        n = 0.7 * n.mean(axis=2, keepdims=True) + 0.3 * n
    return np.clip(f + sigma * n, 0, 255).round().astype(np.uint8)


def tone(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Strong global tone curves or HDR-like local tone mapping (CLAHE on L)."""
    kind = str(rng.choice(["s_curve", "gamma", "clahe", "saturation"]))
    f = image.astype(np.float32) / 255.0
    if kind == "s_curve":
        k = float(rng.uniform(4, 10))
        out = 1 / (1 + np.exp(-k * (f - 0.5)))
        out = (out - out.min()) / max(float(out.max() - out.min()), 1e-6)
    elif kind == "gamma":
        out = f ** float(rng.uniform(0.45, 2.2))
    elif kind == "clahe":
        lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
        clahe = cv2.createCLAHE(clipLimit=float(rng.uniform(2, 5)), tileGridSize=(8, 8))
        lab[..., 0] = clahe.apply(lab[..., 0])
        return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    else:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 1] = np.clip(hsv[..., 1] * float(rng.uniform(1.3, 2.0)), 0, 255)
        return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    return np.clip(out * 255, 0, 255).round().astype(np.uint8)


def screenshot(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rendered content: flat UI panels with anti-aliased text over part of the photo."""
    out = image.copy()
    h, w = out.shape[:2]
    for _ in range(int(rng.integers(1, 4))):
        bh, bw = int(rng.uniform(0.05, 0.3) * h), int(rng.uniform(0.2, 1.0) * w)
        y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        out[y:y + bh, x:x + bw] = rng.integers(0, 256, 3)
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    text = text_mask(h, w, rng)
    out[text] = colour
    return out


def camera_stage(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    done = []
    steps: list[tuple[str, float, Callable]] = [
        ("defocus", 0.3, defocus), ("motion_blur", 0.08, motion_blur), ("sensor_noise", 0.45, sensor_noise),
        ("tone", 0.3, tone), ("screenshot", 0.08, screenshot),
    ]
    for name, prob, fn in steps:
        if rng.random() < prob:
            image = fn(image, rng)
            done.append(name)
    if rng.random() < 0.3:  # already compressed (and maybe resized) before the edit
        image, _ = jpeg(image, int(rng.integers(70, 96)))
        done.append("earlier_jpeg")
    return image, done


# --------------------------------------------------------------------------- post-processing


def post_process(image, mask, rng, split: str, kind: str | None = None, min_side: int = 0):
    """Whole-image post-processing → (image, mask, record, JPEG bytes or None)."""
    if kind is None:
        kind = str(rng.choice(POST_KINDS, p=[0.3, 0.3, 0.15, 0.25]))
    if min_side:  # never shrink a training image below the training crop
        min_side = min(min_side, min(image.shape[:2]))
    test = split == "test"
    interp = cv2.INTER_LANCZOS4 if test else int(rng.choice([cv2.INTER_LINEAR, cv2.INTER_AREA, cv2.INTER_CUBIC]))
    floor = min_side / min(image.shape[:2]) if min_side else 0.0
    record: dict[str, Any] = {"kind": kind}
    data = None
    if kind in ("resize", "chain"):
        lo, hi = ((0.6, 0.85) if test else (0.5, 0.95)) if kind == "resize" else ((0.5, 0.8) if test else (0.4, 0.9))
        scale = float(rng.uniform(lo, hi))
        if kind == "resize" and not test and rng.random() < 0.25:
            scale = float(rng.uniform(1.1, 1.4))  # upscaling happens too
        scale = max(scale, floor)
        image, mask = _resize(image, mask, scale, interp)
        record["scale"] = round(scale, 3)
    if kind in ("jpeg", "chain"):
        q = int(rng.integers(70, 81)) if test else int(rng.integers(55, 96))
        image, data = jpeg(image, q)
        record["quality"] = q
        if kind == "chain" and not test and rng.random() < 0.3:
            image, data = jpeg(image, int(rng.integers(60, 91)))
            record["requality"] = True
    return image, mask, record, data


# --------------------------------------------------------------------------- one sample


def _crop(photo: np.ndarray, long_side: int, rng: np.random.Generator, min_side: int = 288) -> np.ndarray:
    ph, pw = photo.shape[:2]
    aspect = pw / ph if rng.random() < 0.7 else float(np.exp(rng.uniform(-0.55, 0.55)))
    w, h = (long_side, round(long_side / aspect)) if aspect >= 1 else (round(long_side * aspect), long_side)
    w, h = min(max(w, min_side), pw), min(max(h, min_side), ph)
    scale = float(rng.uniform(max(h / ph, w / pw), 1.0))  # never upscale the photo
    ch, cw = min(ph, math.ceil(h / scale)), min(pw, math.ceil(w / scale))
    y, x = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    return cv2.resize(photo[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_AREA)


def make_sample(photo: Photo, donors: Sequence[Photo], rng: np.random.Generator, split: str, kind: str,
                post_kind: str | None = None) -> dict[str, Any]:
    """One image: {"image", "mask", "jpeg_bytes", "record"}; kind is a family or AUTHENTIC."""
    lo, hi = SIZES[split]
    base = _crop(photo.pixels, int(rng.integers(lo, hi + 1)), rng)
    base, camera = camera_stage(base, rng)
    mask = np.zeros(base.shape[:2], bool)
    params: dict[str, Any] = {}
    image = base
    if kind != AUTHENTIC:
        pool = [d for d in donors if d.name != photo.name] or [photo]
        for attempt in range(8):
            donor = pool[int(rng.integers(len(pool)))]
            image, mask, params = render(kind, base, rng, split, donor.pixels)
            if mask.mean() >= 0.002 and region_changed(base, image, mask):
                break
        else:
            kind = "smoothing"  # e.g. a flat sky that no edit visibly changes; noise-free areas still blur
            image, mask, params = render(kind, sensor_noise(base, rng), rng, split, photo.pixels)
        params["donor"] = donor.name if kind in ("splice", "seamless_clone") else None
    image, mask, post, data = post_process(image, mask, rng, split, post_kind, min_side=256 if split == "train" else 0)
    record = {"source": photo.name, "type": kind, "authentic": kind == AUTHENTIC, "params": params,
              "camera": camera, "post": post, "coverage": round(float(mask.mean()), 5),
              "width": int(image.shape[1]), "height": int(image.shape[0])}
    return {"image": image, "mask": mask, "jpeg_bytes": data, "record": record}


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, 1000 + _SPLIT_IDS[split], index]))


def plan(split: str, index: int, rng: np.random.Generator) -> tuple[str, str | None]:
    """(kind, post kind) of image `index`: random in train, balanced (kind × post) in valid/test."""
    if split == "train":
        if rng.random() < TRAIN_AUTHENTIC_SHARE:
            return AUTHENTIC, None
        return FAMILIES[index % len(FAMILIES)], None
    return _CYCLE[index % len(_CYCLE)], POST_KINDS[(index // len(_CYCLE)) % len(POST_KINDS)]


# --------------------------------------------------------------------------- the data set

_WORKER: dict[str, Any] = {}


def _init_worker(photos_dir: str, roles: dict[str, str]) -> None:
    photos = load_photos(photos_dir)
    _WORKER["pools"] = {split: [p for p in photos if roles[p.name] == split] for split in SPLITS}


def _write_one(job: tuple[int, str, int, str]) -> dict[str, Any]:
    seed, split, index, out = job
    rng = image_rng(seed, split, index)
    pool = _WORKER["pools"][split]
    kind, post_kind = plan(split, index, rng)
    photo = pool[int(rng.integers(len(pool)))]
    s = make_sample(photo, pool, rng, split, kind, post_kind)
    stem = f"{split}_{index:06d}"
    folder = Path(out) / split
    if s["jpeg_bytes"] is not None:  # the file an analyst would get: the JPEG itself
        name = f"{stem}.jpg"
        (folder / "images" / name).write_bytes(s["jpeg_bytes"])
    else:
        name = f"{stem}.png"
        Image.fromarray(s["image"]).save(folder / "images" / name, compress_level=1)
    Image.fromarray(s["mask"].astype(np.uint8) * 255).save(folder / "masks" / f"{stem}.png")
    return {"split": split, "index": index, "seed": seed, "image": f"{split}/images/{name}",
            "mask": f"{split}/masks/{stem}.png", **s["record"]}


def assign_roles(photos: Sequence[Photo], test_photos: Sequence[str], n_valid_photos: int, seed: int) -> dict[str, str]:
    names = [p.name for p in photos]
    missing = set(test_photos) - set(names)
    if missing:
        raise SynthError(f"--test-photos names not found in the photo folder: {', '.join(sorted(missing))}")
    rest = [n for n in names if n not in set(test_photos)]
    if len(rest) < n_valid_photos + 2 or not test_photos:
        raise SynthError("need test photos, validation photos and at least 2 training photos")
    order = np.random.default_rng(np.random.SeedSequence([seed, 4242])).permutation(len(rest))
    valid = {rest[i] for i in order[:n_valid_photos]}
    return {n: ("test" if n in set(test_photos) else "valid" if n in valid else "train") for n in names}


def generate(photos_dir: str | Path, out_dir: str | Path, counts: dict[str, int], test_photos: Sequence[str],
             seed: int = 0, n_valid_photos: int = 5, workers: int = 1,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write OUT/<split>/images|masks, OUT/manifest.jsonl (in index order) and OUT/synth.json."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise SynthError(f"output folder {out} is not empty; choose a new folder so no earlier data set is mixed in")
    photos = load_photos(photos_dir)
    roles = assign_roles(photos, test_photos, n_valid_photos, seed)
    for split in SPLITS:
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        (out / split / "masks").mkdir(parents=True, exist_ok=True)
    jobs = [(seed, split, i, str(out)) for split in SPLITS for i in range(counts.get(split, 0))]
    types: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    with open(out / "manifest.jsonl", "w") as manifest, ProcessPoolExecutor(
            max_workers=max(1, workers), initializer=_init_worker, initargs=(str(photos_dir), roles)) as pool:
        for done, record in enumerate(pool.map(_write_one, jobs, chunksize=4), 1):
            manifest.write(json.dumps(record, sort_keys=True) + "\n")
            t = types[record["split"]]
            t[record["type"]] = t.get(record["type"], 0) + 1
            if progress:
                progress(done, len(jobs))
    summary = {"generator": "synth_general", "seed": seed, "counts": {s: counts.get(s, 0) for s in SPLITS},
               "photos": roles, "photo_sha256": {p.name: sha256_file(Path(photos_dir) / p.name) for p in photos},
               "types": types, "families": list(FAMILIES), "post_kinds": list(POST_KINDS), "sizes": SIZES,
               "train_authentic_share": TRAIN_AUTHENTIC_SHARE,
               "mask_definition": "white = pixels the edit replaced (alpha > 0.5); empty for authentic images"}
    (out / "synth.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
