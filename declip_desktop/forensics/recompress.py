"""Classical views that re-compress the image: error level analysis and JPEG ghosts.

Both rest on one fact: re-saving a JPEG at the quality it was saved with changes it
little, at another quality more. Regions with another compression history (pasted
from another file, or never compressed) stand out.
"""

from __future__ import annotations

import cv2
import numpy as np

#: ELA errors at or above this many grey levels show as full intensity.
ELA_SATURATION = 24.0
GHOST_BLOCK = 16
GHOST_EXCLUDE = 7


def _jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a JPEG at quality {quality}")
    flag = cv2.IMREAD_GRAYSCALE if image.ndim == 2 else cv2.IMREAD_COLOR
    return cv2.imdecode(buf, flag)


def error_level(rgb: np.ndarray, quality: int = 90) -> np.ndarray:
    """ELA: |image − image re-saved at `quality`|, max over channels, /ELA_SATURATION, clipped.

    rgb: H×W×3 uint8. Returns float32 H×W in [0, 1]."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"ELA quality must be 1…100, got {quality}")
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    diff = cv2.absdiff(bgr, _jpeg_roundtrip(bgr, quality))
    err = diff.max(axis=2).astype(np.float32)
    return np.clip(err / ELA_SATURATION, 0.0, 1.0)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma as uint8 (what JPEG compresses as Y)."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def jpeg_ghosts(rgb: np.ndarray, qualities: tuple[int, ...] = (50, 60, 70, 80, 90, 100),
                quality: int | None = None, last_quality: int | None = None) -> tuple[np.ndarray, dict]:
    """JPEG ghosts (Farid 2009) on the luminance.

    For each quality q: squared difference between the luma and its re-save at q,
    averaged over GHOST_BLOCK² blocks and normalized per block by the largest over all q.
    Returns (map, extras). Without `quality`: map = the quality with the smallest
    difference per block, scaled to [0, 1] over the qualities computed (extras["qualities"]; 0 = lowest) — a region saved
    at another quality than the rest shows another level. With `quality`: the normalized
    difference at that quality (dark = a ghost: the block was saved at about that quality).
    `last_quality`: the file's own (estimated) quality; qualities above (it − GHOST_EXCLUDE)
    are left out of the minimum, since every block matches the last save (and finer ones) best — the
    earlier save is the one that tells regions apart.
    Map: float32 H×W. extras: qualities, mean_difference per quality, best_quality (overall)."""
    qs = tuple(sorted({int(q) for q in qualities} | ({int(quality)} if quality else set())))
    if not qs or min(qs) < 1 or max(qs) > 100:
        raise ValueError(f"ghost qualities must lie in 1…100, got {qualities}")
    if quality is None and last_quality is not None:
        # Qualities that the minimum ignores are not computed at all (each costs a full re-encode).
        kept = tuple(q for q in qs if q < int(last_quality) - GHOST_EXCLUDE)
        qs = kept if len(kept) >= 2 else qs
    y = luminance(rgb)
    h, w = y.shape
    small = (max(1, w // GHOST_BLOCK), max(1, h // GHOST_BLOCK))
    yf = y.astype(np.float32)
    stack = []
    for q in qs:
        d = cv2.absdiff(yf, _jpeg_roundtrip(y, q).astype(np.float32))
        stack.append(cv2.resize(d * d, small, interpolation=cv2.INTER_AREA))
    arr = np.stack(stack)
    means = [float(a.mean()) for a in arr]
    norm = arr / np.maximum(arr.max(axis=0, keepdims=True), 1e-6)
    if quality:
        block_map = norm[qs.index(int(quality))]
    else:
        keep = [i for i, q in enumerate(qs) if last_quality is None or q < int(last_quality) - GHOST_EXCLUDE]
        keep = keep or list(range(len(qs)))
        best = np.asarray(keep)[np.argmin(arr[keep], axis=0)]
        block_map = best.astype(np.float32) / max(1, len(qs) - 1)
    out = cv2.resize(block_map.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    return out, {"qualities": list(qs), "mean_difference": [round(m, 3) for m in means],
                 "best_quality": int(qs[int(np.argmin(means))])}
