"""The EXIF thumbnail compared with the picture it should show.

Cameras write a small preview into EXIF; many editors change the pixels but leave the
old preview in place. A preview that shows something else than the image (other
content, other framing) is a classic sign the file was edited after capture. A
matching preview proves little: many editors regenerate it.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image

COMPARE_SIZE = 32
#: Below this correlation (or above this mean difference) the preview "differs".
MIN_CORRELATION = 0.85
MAX_MEAN_DIFFERENCE = 0.12
ASPECT_TOLERANCE = 0.04


def _trim_bars(gray: np.ndarray) -> np.ndarray:
    """Drop uniform black bars some cameras pad their 160×120 previews with."""
    rows = np.where(gray.max(axis=1) > 16)[0]
    cols = np.where(gray.max(axis=0) > 16)[0]
    if rows.size < 4 or cols.size < 4:
        return gray
    return gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _small(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L").resize((COMPARE_SIZE, COMPARE_SIZE), Image.BILINEAR), np.float64) / 255.0


def compare_thumbnail(thumb_bytes: bytes, image_bytes: bytes) -> dict[str, Any]:
    """Compare an EXIF thumbnail (JPEG bytes) with the image file's pixels (file orientation: the
    preview is written before any EXIF rotation is applied).

    Returns {present, width, height, correlation, mean_difference, aspect_image, aspect_thumbnail,
    mismatch (bool|None), reason, png_base64 (the thumbnail as PNG, for display)}."""
    out: dict[str, Any] = {"present": True, "bytes": len(thumb_bytes), "mismatch": None, "reason": None}
    try:
        with Image.open(io.BytesIO(thumb_bytes)) as t:
            t.load()
            thumb = t.convert("RGB")
    except Exception as exc:  # noqa: BLE001 - an undecodable preview is itself a finding
        out["reason"] = f"the embedded thumbnail could not be decoded ({exc})"
        return out
    out["width"], out["height"] = thumb.size
    buf = io.BytesIO()
    thumb.save(buf, "PNG")
    out["png_base64"] = base64.b64encode(buf.getvalue()).decode("ascii")
    trimmed = _trim_bars(np.asarray(thumb.convert("L")))
    try:
        with Image.open(io.BytesIO(image_bytes)) as opened:
            if opened.format == "JPEG":
                opened.draft("RGB", (thumb.width * 4, thumb.height * 4))  # DCT-domain downscale: fast
            main = opened.convert("RGB")
    except Exception as exc:  # noqa: BLE001 - the image itself is checked at import; report, don't raise
        out["reason"] = f"the image could not be decoded for the comparison ({exc})"
        return out
    a_img = main.width / main.height
    a_th = trimmed.shape[1] / trimmed.shape[0]
    out["aspect_image"], out["aspect_thumbnail"] = round(a_img, 4), round(a_th, 4)
    rotated = False
    if abs(a_img - a_th) / a_img > ASPECT_TOLERANCE and abs(1 / a_img - a_th) * a_img <= ASPECT_TOLERANCE:
        rotated = True  # some writers store the preview already rotated
    elif abs(a_img - a_th) / a_img > ASPECT_TOLERANCE:
        out["mismatch"] = True
        out["reason"] = (f"the thumbnail's aspect ratio {a_th:.3f} differs from the image's {a_img:.3f} "
                         "(cropped or replaced after the thumbnail was written)")
        return out
    ref = _small(main)
    th = np.asarray(Image.fromarray(trimmed).resize((COMPARE_SIZE, COMPARE_SIZE), Image.BILINEAR),
                    np.float64) / 255.0
    candidates = [ref] if not rotated else [np.rot90(ref, 1), np.rot90(ref, -1)]
    best = None
    for cand in candidates:
        a, b = cand - cand.mean(), th - th.mean()
        denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
        corr = float((a * b).sum() / denom) if denom > 1e-9 else (1.0 if np.allclose(cand, th, atol=0.05) else 0.0)
        diff = float(np.abs(cand - th).mean())
        if best is None or corr > best[0]:
            best = (corr, diff)
    corr, diff = best
    out["correlation"], out["mean_difference"] = round(corr, 4), round(diff, 4)
    out["mismatch"] = bool(corr < MIN_CORRELATION or diff > MAX_MEAN_DIFFERENCE)
    if out["mismatch"]:
        out["reason"] = (f"the thumbnail does not show the image (correlation {corr:.2f}, "
                         f"mean difference {diff:.2f} at {COMPARE_SIZE}×{COMPARE_SIZE})")
    return out
