"""Turning decoded images into network input, and network output into probability maps.

Input, as the authors' evaluation does it (their `transforms.Compose([Resize((224, 224)),
ToTensor(), Normalize(CLIP mean, std)])` on a PIL image):
- torchvision's `Resize` on a PIL image calls `PIL.Image.resize(size, BILINEAR)` with no
  `reducing_gap`; PIL's bilinear filter widens its support when shrinking, so it is an
  antialiased ("area-aware") bilinear. We call PIL the same way, so the pixels are
  bit-identical to theirs; aspect ratio is not kept and nothing is cropped;
- `ToTensor`: uint8 → float32 / 255, HWC → CHW;
- `Normalize`: (x − mean) / std per channel, in float32, in that order.

Output: sigmoid of the logits, then resized to the image's original H×W the way the authors'
evaluation resizes its probability maps to the ground-truth mask size: torchvision
`F.resize(..., BILINEAR)` on a tensor, i.e. `F.interpolate(mode="bilinear",
align_corners=False, antialias=True)` with torchvision ≥ 0.17's default `antialias=True`.
For an upscale (every image larger than 256 px) antialias changes nothing; it only matters for
images smaller than the map, where it averages instead of skipping map pixels. Resizing the
*probabilities* (not the logits) is what the authors do, and keeps values inside [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from declip_desktop.engine.score_calibration import DEFAULT_TOP_FRACTION

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INPUT_SIZE = 224


#: The smallest side a native-resolution model is given. Below it a fully convolutional network
#: has nothing to read (its four stride-2 stages would leave less than one cell, and a reflect
#: padding needs at least three pixels), so a thinner side is stretched to this; the map is
#: resized back to the image's own size like every other map.
MIN_NATIVE_SIDE = 32


def native_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) for a fully convolutional model run at native resolution: the image shrunk, aspect
    kept, so its long side is at most `max_side`; never enlarged (enlarging adds no evidence and
    smooths the traces the model reads), except that a side below MIN_NATIVE_SIDE is stretched
    to it (a 1-pixel-wide strip carries no evidence either way, but it must not crash the run)."""
    long_side = max(width, height)
    if long_side <= max_side:
        w, h = int(width), int(height)
    else:
        scale = max_side / long_side
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
    return max(w, MIN_NATIVE_SIDE), max(h, MIN_NATIVE_SIDE)


def resize_for_model(image: Image.Image, size: int | tuple[int, int] = INPUT_SIZE) -> Image.Image:
    """PIL bilinear resize to size×size, aspect not kept (what torchvision's Resize does on PIL);
    a (w, h) size is used as is (native-resolution models, see `native_size`)."""
    if image.mode != "RGB":
        raise ValueError(f"expected an RGB image, got mode {image.mode!r}")
    target = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    return image if image.size == target else image.resize(target, Image.BILINEAR)


def to_input_tensor(
    image: Image.Image,
    size: int | tuple[int, int] = INPUT_SIZE,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> torch.Tensor:
    """An 8-bit RGB PIL image → normalized float32 tensor 3×size×size."""
    # numpy, not torch: this runs on the decoding thread, and torch ops there would compete
    # for torch's thread pool with the forward pass. Same IEEE float32 operations in the same
    # order as torchvision's ToTensor + Normalize, so the result is bit-identical.
    resized = np.asarray(resize_for_model(image, size), dtype=np.uint8)
    x = resized.astype(np.float32) / np.float32(255.0)
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """B×1×h×w (or the authors' flattened B×(h·w) square) logits → B×h×w float32 probabilities."""
    if logits.dim() == 2:  # the authors flatten their output; accept it for reference models
        side = int(round(logits.shape[1] ** 0.5))
        if side * side != logits.shape[1]:
            raise ValueError(f"flattened logits of length {logits.shape[1]} are not a square map")
        logits = logits.view(logits.shape[0], side, side)
    elif logits.dim() == 4:
        if logits.shape[1] != 1:
            raise ValueError(f"expected one output channel, got {logits.shape[1]}")
        logits = logits[:, 0]
    elif logits.dim() != 3:
        raise ValueError(f"unexpected logits shape {tuple(logits.shape)}")
    return torch.sigmoid(logits.float())


@dataclass(frozen=True)
class PreparedImage:
    """An image as the network's input (`Localizer.prepare`); `error` set and no `tensor` if it failed."""

    name: str
    tensor: Any
    width: int = 0
    height: int = 0
    #: The decoded full image (PIL), kept only for a tiled localizer (`Localizer.tiling`), whose
    #: tiles are cut from it; None otherwise, so a waiting batch holds only the small tensors.
    image: Any = None
    error: str | None = None


def resize_map(prob: torch.Tensor, height: int, width: int) -> np.ndarray:
    """One h×w probability map → float32 H×W numpy array in [0, 1] (torchvision-style bilinear)."""
    if prob.dim() != 2:
        raise ValueError(f"expected an h×w map, got shape {tuple(prob.shape)}")
    if height < 1 or width < 1:
        raise ValueError(f"cannot resize a map to {height}×{width}")
    prob = prob.float()
    if tuple(prob.shape) != (height, width):
        resized = F.interpolate(
            prob[None, None], size=(height, width), mode="bilinear", align_corners=False, antialias=True
        )[0, 0].detach()
        if not resized.is_inference():
            # A fresh tensor of its own: clipped in place and handed over without the two extra
            # full-size passes (clamp copy, numpy copy) that a 12 MP map would otherwise cost.
            return resized.clamp_(0.0, 1.0).numpy()
        prob = resized
    # Bilinear weights are convex, but float rounding can step a hair outside [0, 1]. Out of
    # place on purpose: `prob` may be an inference-mode tensor (the network's own map when the
    # image is already the map's size, e.g. every 256×256 Dolos image), which must not be
    # updated in place outside inference mode, and the result must not share memory with the
    # batch it came from (a Prediction would otherwise keep the whole batch alive).
    clipped = torch.clamp(prob, 0.0, 1.0).cpu().numpy()
    return np.array(clipped, dtype=np.float32, copy=True)


#: Share of the map's pixels averaged into the image-level score.
SCORE_TOP_FRACTION = DEFAULT_TOP_FRACTION  # one value for both modules (score_calibration is numpy-only)


def top_count(n: int, top_fraction: float) -> int:
    """How many of a map's `n` values the image score averages (at least one)."""
    return max(1, int(round(n * top_fraction)))


def image_score(prob: torch.Tensor, top_fraction: float = SCORE_TOP_FRACTION) -> float:
    """Image-level score in [0, 1]: the mean of the top 1% of the model's own (h×w) probabilities.

    Why: DeCLIP is a localizer, and edits are often small. The whole-map mean (the authors'
    detection read-out) dilutes a confident 2%-of-the-image edit to ~0.02; the maximum is a
    single pixel and jumps on noise. The top 1% of a 256×256 map is 655 pixels, about 2.5
    ViT patches: high only when a region of at least that size is confidently flagged. It is
    computed on the model's native map, before resizing, so it does not depend on the image's
    resolution.
    """
    flat = prob.reshape(-1).float()
    return float(torch.topk(flat, top_count(flat.numel(), top_fraction)).values.mean().clamp(0.0, 1.0))
