"""A varied, deterministic image set for checking fast mode's agreement with exact mode.

None of these images calibrates anything (recipe v4 has no calibration; v3's calibration images
were procedural) or sets the benchmark model (its BatchNorm photos are other scikit-image
samples), and none is one of the seven benchmark photos or the *tuning* photos below. The set
was built to expose recipe v3; v4's design (docs/PERFORMANCE.md) was then diagnosed on it, so
for v4 it is an evaluation set, not a strictly held-out one: v4 fits nothing to particular
images (its choices are whole-model precision increases), and `fresh_images` are images that
no step of v4's development looked at.

Kinds (each image's name starts with its kind):
- photo:   photos at their own size (`scripts/fetch_starter_photos.py` output, data/photos);
- resized: photos at other sizes and aspect ratios (thumbnail, tall crop, 12 MP upscale);
- edit:    synthetic edits (`training.synth`: splice, copy-move, inpainting, blur, noise, …);
- jpeg:    JPEG-recompressed photos (quality 30–95);
- gray:    photos converted to grayscale, and scikit-image's grayscale samples not used elsewhere;
- screen:  screenshots: UI-like images rendered with PIL (windows, text, buttons, flat colours).

Without data/photos the set falls back to the few photos that ship with scikit-image and
scikit-learn outside the benchmark's other sets (fewer than 50 images: the script says so).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "data" / "photos"
#: Photos of data/photos the recipe was tuned on (every fifth by name): never in the held-out set.
TUNING_EVERY = 5
#: scikit-image photos that are the benchmark's seven or set its model's BatchNorm statistics.
_USED_SKIMAGE = {"astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "camera", "coins",
                 "hubble_deep_field", "retina", "brick", "grass", "gravel", "moon", "clock", "page"}


def _rgb(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        return np.stack([a] * 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3])


def _photo_files() -> list[Path]:
    if not PHOTOS.is_dir():
        return []
    files = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    return [p for p in files if not p.name.startswith("skimage_")]  # skimage's are in the other sets


def tuning_photos() -> list[tuple[str, np.ndarray]]:
    """The photos of data/photos that recipe choices may be tried on (disjoint from `heldout_images`)."""
    return [(p.stem, _load(p)) for i, p in enumerate(_photo_files()) if i % TUNING_EVERY == 0]


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _fallback_photos() -> list[tuple[str, np.ndarray]]:
    import skimage.data as data
    from sklearn.datasets import load_sample_image

    out = [("sklearn_china", load_sample_image("china.jpg")), ("sklearn_flower", load_sample_image("flower.jpg"))]
    for name in ("motorcycle_left", "motorcycle_right"):
        if name not in _USED_SKIMAGE:
            out.append((f"skimage_{name}", _rgb(getattr(data, "stereo_motorcycle")()[0 if "left" in name else 1])))
    return out


def _screenshot(rng: np.random.Generator, width: int, height: int, dark: bool) -> np.ndarray:
    """A UI-like screen: title bar, side panel, text lines, buttons, a table, an icon grid."""
    bg = (32, 33, 36) if dark else (246, 246, 248)
    fg = (230, 230, 230) if dark else (20, 20, 24)
    im = Image.new("RGB", (width, height), bg)
    d = ImageDraw.Draw(im)
    font = ImageFont.load_default()
    accent = tuple(int(v) for v in rng.integers(40, 220, 3))
    d.rectangle([0, 0, width, 28], fill=accent)
    d.text((10, 8), "Case 2026-%04d — Evidence viewer" % rng.integers(10000), fill=(255, 255, 255), font=font)
    panel = int(width * rng.uniform(0.15, 0.3))
    d.rectangle([0, 28, panel, height], fill=tuple(max(0, c - 14) for c in bg))
    for row in range(40, height - 20, 22):
        d.text((12, row), f"item_{rng.integers(1000):03d}.jpg", fill=fg, font=font)
    y = 44
    while y < height - 40:
        kind = rng.integers(4)
        if kind == 0:  # a paragraph
            for _ in range(int(rng.integers(2, 6))):
                words = " ".join("".join(chr(97 + int(c)) for c in rng.integers(0, 26, int(rng.integers(2, 9))))
                                 for _ in range(int(rng.integers(4, 12))))
                d.text((panel + 16, y), words, fill=fg, font=font)
                y += 16
        elif kind == 1:  # buttons
            x = panel + 16
            for label in ("OK", "Cancel", "Export", "Analyze")[: int(rng.integers(1, 5))]:
                d.rounded_rectangle([x, y, x + 80, y + 24], radius=5, fill=accent if label == "OK" else bg,
                                    outline=fg)
                d.text((x + 12, y + 6), label, fill=fg, font=font)
                x += 92
            y += 34
        elif kind == 2:  # a table
            cols = int(rng.integers(3, 6))
            for r in range(int(rng.integers(3, 8))):
                for c in range(cols):
                    x0 = panel + 16 + c * 90
                    d.rectangle([x0, y, x0 + 90, y + 18], outline=(128, 128, 128),
                                fill=(bg if r else tuple(int(v) for v in accent)))
                    d.text((x0 + 4, y + 3), f"{rng.uniform(0, 1):.3f}", fill=fg, font=font)
                y += 18
            y += 12
        else:  # an icon grid of flat colours
            for c in range(int(rng.integers(3, 9))):
                x0 = panel + 16 + c * 40
                d.ellipse([x0, y, x0 + 32, y + 32], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
            y += 44
    return np.asarray(im)


def _jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def fresh_images() -> list[tuple[str, np.ndarray]]:
    """Images never looked at while recipe v4 was developed: the tuning photos, some JPEG,
    grayscale and resized variants of them, and three new screenshots."""
    rng = np.random.default_rng(777)
    tun = tuning_photos()
    if not tun:
        return []
    out = [(f"photo_{n}", a) for n, a in tun]
    for k, q in enumerate((35, 60, 85)):
        n, a = tun[(4 * k + 1) % len(tun)]
        out.append((f"jpeg_q{q}_{n}", _jpeg(a, q)))
    for k in range(3):
        n, a = tun[(5 * k + 2) % len(tun)]
        out.append((f"gray_{n}", _rgb(np.asarray(Image.fromarray(a).convert("L")))))
    for k, (w, h) in enumerate(((1024, 768), (1440, 900), (600, 1000))):
        out.append((f"screen_{w}x{h}", _screenshot(rng, w, h, dark=bool(k % 2))))
    n, a = tun[3 % len(tun)]
    out.append((f"resized_{n}_200x150", np.asarray(Image.fromarray(a).resize((200, 150), Image.BICUBIC))))
    return out


def heldout_images() -> list[tuple[str, np.ndarray]]:
    """(kind_name, RGB uint8 array) pairs; see the module docstring. Deterministic."""
    from declip_desktop.training.synth import MANIPULATIONS, Photo, synthesize

    files = _photo_files()
    photos = [(p.stem, _load(p)) for i, p in enumerate(files) if i % TUNING_EVERY != 0]
    if not photos:
        photos = _fallback_photos()
    rng = np.random.default_rng(20261201)
    out: list[tuple[str, np.ndarray]] = []
    n = len(photos)
    # Every held-out photo once as it is, then variants cycling through them.
    for name, a in photos:
        out.append((f"photo_{name}", a))
    sizes = [(160, 120), (300, 900), (4000, 3000), (640, 360), (1200, 1200), (97, 233)]
    for k, (w, h) in enumerate(sizes):
        name, a = photos[(3 * k + 1) % n]
        out.append((f"resized_{name}_{w}x{h}", np.asarray(Image.fromarray(a).resize((w, h), Image.BICUBIC))))
    donors = [Photo(name, a) for name, a in photos]
    for k, manipulation in enumerate(MANIPULATIONS):
        photo = donors[(5 * k + 2) % n]
        sample = synthesize(photo, rng, manipulation, donors, size=512)
        out.append((f"edit_{manipulation}_{photo.name}", sample.image))
    for k, quality in enumerate((30, 50, 75, 95)):
        name, a = photos[(7 * k + 3) % n]
        out.append((f"jpeg_q{quality}_{name}", _jpeg(a, quality)))
    for k in range(4):
        name, a = photos[(11 * k + 4) % n]
        gray = np.asarray(Image.fromarray(a).convert("L"))
        out.append((f"gray_{name}", _rgb(gray)))
    import skimage.data as data

    for name in ("text", "cell", "microaneurysms"):
        if name not in _USED_SKIMAGE:
            out.append((f"gray_skimage_{name}", _rgb(getattr(data, name)())))
    for k, (w, h) in enumerate(((1280, 800), (1920, 1080), (800, 600), (390, 844))):
        out.append((f"screen_{w}x{h}{'_dark' if k % 2 else ''}", _screenshot(rng, w, h, dark=bool(k % 2))))
    return out


if __name__ == "__main__":
    images = heldout_images()
    for name, a in images:
        print(f"{name:50s} {a.shape[1]}×{a.shape[0]}")
    print(len(images), "images;", len(tuning_photos()), "tuning photos")
