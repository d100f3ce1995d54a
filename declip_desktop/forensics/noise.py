"""Noise views: the residual left after removing image content, and its local level.

Every camera leaves sensor noise of a fairly even level across a photo. Pasted,
retouched, blurred or generated regions often carry a different level or texture.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Residuals at or above this many grey levels show as full intensity.
RESIDUAL_SATURATION = 12.0
LEVEL_BLOCK = 32
_MAD_TO_SIGMA = 1.4826


def noise_residual(rgb: np.ndarray) -> np.ndarray:
    """|luma − 3×3 median(luma)|, /RESIDUAL_SATURATION, clipped. rgb H×W×3 uint8 → float32 H×W in [0, 1]."""
    y = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    res = cv2.absdiff(y, cv2.medianBlur(y, 3)).astype(np.float32)
    return np.clip(res / RESIDUAL_SATURATION, 0.0, 1.0)


def noise_level(rgb: np.ndarray, block: int = LEVEL_BLOCK) -> tuple[np.ndarray, dict]:
    """Local noise standard deviation (grey levels) per `block`² block, robust to edges.

    The high-pass is the diagonal Haar detail (x[i,j] − x[i,j+1] − x[i+1,j] + x[i+1,j+1]) / 2,
    whose noise std equals the pixel noise std; per block σ = 1.4826·median|detail|
    (median absolute deviation: edges and texture inflate it less than a plain std).
    Returns (map float32 H×W = σ / (2·median σ) clipped to [0, 1] — so 0.5 is the image's
    typical level —, extras {median_sigma, p95_sigma})."""
    y = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = y.shape
    hh, ww = (h - 1) // 2 * 2, (w - 1) // 2 * 2
    q = y[:hh, :ww]
    detail = np.abs(q[0::2, 0::2] - q[0::2, 1::2] - q[1::2, 0::2] + q[1::2, 1::2]) * 0.5
    half = max(1, block // 2)
    bh, bw = detail.shape[0] // half, detail.shape[1] // half
    if bh == 0 or bw == 0:
        sigma = np.full((1, 1), float(np.median(detail)) * _MAD_TO_SIGMA if detail.size else 0.0, np.float32)
    else:
        tiles = detail[:bh * half, :bw * half].reshape(bh, half, bw, half).transpose(0, 2, 1, 3).reshape(bh, bw, -1)
        sigma = (np.median(tiles, axis=2) * _MAD_TO_SIGMA).astype(np.float32)
    med = float(np.median(sigma))
    scale = 2.0 * med if med > 1e-6 else 1.0
    out = cv2.resize(np.clip(sigma / scale, 0.0, 1.0), (w, h), interpolation=cv2.INTER_NEAREST)
    return out, {"median_sigma": round(med, 3), "p95_sigma": round(float(np.percentile(sigma, 95)), 3)}


def luminance_gradient(rgb: np.ndarray) -> np.ndarray:
    """Sobel gradient of the luma as colour: R = horizontal, G = vertical (127 = flat), B = magnitude.

    rgb H×W×3 uint8 → H×W×3 uint8; R, G = 127.5 + Sobel/2 and B = |∇| (Sobel units, saturating at 255).
    Lighting and edges from another scene point elsewhere."""
    y = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    # Straight to 8 bits with OpenCV's saturation: one pass per channel, no float image of 12 MP × 3.
    red = cv2.Sobel(y, cv2.CV_8U, 1, 0, ksize=3, scale=0.5, delta=127.5)
    green = cv2.Sobel(y, cv2.CV_8U, 0, 1, ksize=3, scale=0.5, delta=127.5)
    gx = cv2.Sobel(y, cv2.CV_16S, 1, 0, ksize=3)
    gy = cv2.Sobel(y, cv2.CV_16S, 0, 1, ksize=3)
    blue = cv2.convertScaleAbs(cv2.magnitude(gx.astype(np.float32), gy.astype(np.float32)))
    return cv2.merge([red, green, blue])
