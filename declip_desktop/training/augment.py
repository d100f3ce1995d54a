"""Training augmentations of the DeCLIP authors, made reproducible.

The authors apply them to the 224×224 resized image (after `Resize`, before `ToTensor`):
`blur` = Gaussian blur, 5×5 kernel, sigma uniform in [0.4, 2.0]; `color_jitter` =
brightness, contrast, saturation and hue jitter of 0.3 each, in random order; `jpeg` =
re-encoding at a quality drawn from 30…100; `all` = jitter, then JPEG, then blur.

Here every random draw comes from a generator seeded by (seed, image hash, variant), so
"variant 3 of image X" is the same picture on every run — which is what lets the
training feature cache store a fixed number of augmented variants per image.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image

AUGMENTATIONS = ("none", "blur", "jpeg", "color_jitter", "all")


def variant_rng(seed: int, image_sha256: str, variant: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}|{image_sha256}|{variant}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _blur(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    from torchvision.transforms import functional as TF

    sigma = float(rng.uniform(0.4, 2.0))
    return TF.gaussian_blur(img, kernel_size=[5, 5], sigma=[sigma, sigma])


def _jpeg(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    quality = int(rng.integers(30, 101))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, optimize=True)
    buf.seek(0)
    with Image.open(buf) as reread:
        return reread.convert("RGB")


def _color_jitter(img: Image.Image, rng: np.random.Generator, amount: float = 0.3) -> Image.Image:
    from torchvision.transforms import functional as TF

    ops = [
        lambda im, f=float(rng.uniform(1 - amount, 1 + amount)): TF.adjust_brightness(im, f),
        lambda im, f=float(rng.uniform(1 - amount, 1 + amount)): TF.adjust_contrast(im, f),
        lambda im, f=float(rng.uniform(1 - amount, 1 + amount)): TF.adjust_saturation(im, f),
        lambda im, f=float(rng.uniform(-amount, amount)): TF.adjust_hue(im, f),
    ]
    for i in rng.permutation(4):
        img = ops[i](img)
    return img


def augment(img: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """Apply augmentation `kind` to an RGB PIL image (the 224×224 network input)."""
    if kind == "none":
        return img
    if kind == "blur":
        return _blur(img, rng)
    if kind == "jpeg":
        return _jpeg(img, rng)
    if kind == "color_jitter":
        return _color_jitter(img, rng)
    if kind == "all":
        return _blur(_jpeg(_color_jitter(img, rng), rng), rng)
    raise ValueError(f"unknown augmentation {kind!r} (known: {', '.join(AUGMENTATIONS)})")
