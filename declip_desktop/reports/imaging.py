"""Raster preparation for reports and exports: sizes, JPEG budget, Qt image wrappers.

Qt's PDF engine stores colour images as JPEG at a fixed quality (94) and 1-bit images
losslessly. The only lever on file size is therefore the pixel size of what we hand it, so
each evidence item gets a byte budget: the heat overlay keeps up to `MAX_SIDE` pixels on its
long side (it is what a reader zooms into), the original gets what is left. Masks are 1-bit
(lossless and tiny) and region outlines are vector paths, so both stay sharp at any zoom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtGui import QImage, QImageWriter

from declip_desktop.common import regions as regions_mod

#: Long side, in pixels, of the heat overlay and the mask embedded in a report.
MAX_SIDE = 2000
#: Never shrink the original below this long side to meet the budget (it must stay legible).
MIN_ORIGINAL_SIDE = 900
#: Never shrink the overlay below this long side.
MIN_OVERLAY_SIDE = 1200
#: Share of an item's budget the overlay may take before it is shrunk.
OVERLAY_SHARE = 0.6
#: The quality Qt's PDF engine uses for colour images (qpdf.cpp); measured sizes match the file.
QT_PDF_JPEG_QUALITY = 94


@dataclass
class Visuals:
    """Everything drawn for one analysed evidence item."""

    full_width: int
    full_height: int
    original: np.ndarray  # H×W×3 uint8, reduced
    overlay: np.ndarray  # H×W×3 uint8, reduced
    mask: np.ndarray  # H×W uint8 0/1 at the overlay's size
    regions: list  # common.regions.Region at full resolution
    map_resized: bool  # the stored map did not match the image size and was resized
    estimated_bytes: int


def scale_to_side(arr: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale (area averaging) so the long side is at most `max_side`; never upscale."""
    h, w = arr.shape[:2]
    side = max(h, w)
    if side <= max_side:
        return arr
    f = max_side / side
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return cv2.resize(arr, size, interpolation=cv2.INTER_AREA)


def match_map_to_image(prob_map: np.ndarray, height: int, width: int) -> tuple[np.ndarray, bool]:
    """Maps are stored at the image's resolution; an older or foreign one is resized (bilinear)."""
    prob = np.asarray(prob_map, dtype=np.float32)
    if prob.shape == (height, width):
        return prob, False
    return cv2.resize(prob, (width, height), interpolation=cv2.INTER_LINEAR), True


def _fill(img: QImage, rows: np.ndarray) -> QImage:
    """Copy `rows` (H × bytes-per-row uint8) into a QImage Qt allocated itself.

    Wrapping a NumPy buffer with QImage's data constructor ties the buffer's lifetime to
    the QImage through a PySide6 cleanup hook that crashes the interpreter at exit in
    PySide6 6.12 ("deallocating None"); Qt-owned memory avoids that path entirely.
    """
    h, n = rows.shape
    view = np.frombuffer(img.bits(), np.uint8).reshape(h, img.bytesPerLine())
    view[:, :n] = rows
    return img


def qimage_rgb(arr: np.ndarray) -> QImage:
    """A QImage holding a copy of an H×W×3 uint8 array."""
    arr = np.asarray(arr, dtype=np.uint8)
    h, w = arr.shape[:2]
    return _fill(QImage(w, h, QImage.Format.Format_RGB888), arr.reshape(h, w * 3))


def qimage_mask(mask: np.ndarray) -> QImage:
    """A 1-bit QImage (black = 0, white = 1): the PDF engine stores it losslessly in a few KB."""
    bits = np.asarray(mask, dtype=np.uint8)
    h, w = bits.shape
    img = QImage(w, h, QImage.Format.Format_Mono)
    img.setColorTable([0xFF000000, 0xFFFFFFFF])
    return _fill(img, np.packbits(bits, axis=1))


def jpeg_bytes(arr: np.ndarray, quality: int = QT_PDF_JPEG_QUALITY) -> int:
    """Size of `arr` as Qt's JPEG writer encodes it (what the PDF engine will embed)."""
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QImageWriter(buf, QByteArray(b"jpeg"))
    writer.setQuality(quality)
    if not writer.write(qimage_rgb(arr)):
        raise RuntimeError(f"Qt could not encode a JPEG: {writer.errorString()}")
    return data.size()


def _shrink_to_budget(arr: np.ndarray, size: int, budget: int, min_side: int) -> tuple[np.ndarray, int]:
    """JPEG size grows about linearly with the pixel count; shrink once, with 5 % headroom."""
    if size <= budget:
        return arr, size
    side = max(arr.shape[:2])
    target = max(min_side, int(side * math.sqrt(budget / size) * 0.95))
    if target >= side:
        return arr, size
    smaller = scale_to_side(arr, target)
    return smaller, jpeg_bytes(smaller)


def prepare_visuals(
    rgb: np.ndarray,
    prob_map: np.ndarray,
    threshold: float,
    budget_bytes: int,
    max_side: int = MAX_SIDE,
    colormap: str = "inferno",
) -> Visuals:
    """Reduce, blend and budget one item's images; regions are found on the full-size map.

    `rgb` may already be reduced (see `load_for_report`): the map, stored at the image's full
    resolution, gives the full size, and the regions and their outlines are computed on it.
    """
    prob = np.asarray(prob_map, dtype=np.float32)
    height, width = prob.shape
    found = regions_mod.find_regions(prob, threshold)
    # The map and the decoded image should have the same shape (or aspect, if the image was
    # decoded reduced); a mismatch means a foreign or outdated map: shown stretched, and said so.
    resized = abs(rgb.shape[1] / rgb.shape[0] - width / height) > 0.01 or (
        max(rgb.shape[:2]) > max(height, width)
    )
    side = min(max_side, max(height, width))
    f = side / max(height, width)
    size = (max(1, round(width * f)), max(1, round(height * f)))
    small_map = cv2.resize(prob, size, interpolation=cv2.INTER_AREA) if size != (width, height) else prob
    if (rgb.shape[1], rgb.shape[0]) != size:
        shrinking = rgb.shape[1] >= size[0]
        small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    else:
        small_rgb = rgb
    over = regions_mod.overlay(small_rgb, small_map, colormap)
    mask = regions_mod.binary_mask(small_map, threshold)

    over_bytes = jpeg_bytes(over)
    over, over_bytes = _shrink_to_budget(over, over_bytes, int(budget_bytes * OVERLAY_SHARE), MIN_OVERLAY_SIDE)
    orig = small_rgb
    orig_bytes = jpeg_bytes(orig)
    orig, orig_bytes = _shrink_to_budget(orig, orig_bytes, max(1, budget_bytes - over_bytes), MIN_ORIGINAL_SIDE)
    return Visuals(
        full_width=width,
        full_height=height,
        original=orig,
        overlay=over,
        mask=mask,
        regions=found,
        map_resized=resized,
        estimated_bytes=over_bytes + orig_bytes,
    )


def load_for_report(path, min_side: int = MAX_SIDE) -> np.ndarray:
    """Decode an evidence image for display, no larger than needed.

    JPEG files are decoded directly at a reduced scale (libjpeg's DCT scaling, several times
    faster than a full decode) while keeping at least `min_side` pixels on the long side; the
    decoding rules (pixel limit, EXIF orientation, colour modes) are `common.images`' own.
    """
    from PIL import Image

    from declip_desktop.common.images import load_rgb, load_rgb_image

    try:
        img = Image.open(path)
    except Exception:  # noqa: BLE001 - let load_rgb produce the proper ImageError
        return load_rgb(path)
    try:
        if img.format == "JPEG" and max(img.size) >= 2 * min_side:
            # draft() picks the smallest scale 1/2, 1/4, 1/8 that keeps at least this size.
            k = max(img.size) / min_side
            img.draft("RGB", (max(1, int(img.size[0] / k)), max(1, int(img.size[1] / k))))
            return np.asarray(load_rgb_image(img), dtype=np.uint8)
    finally:
        img.close()
    return load_rgb(path)


def annotated_image(rgb: np.ndarray, prob_map: np.ndarray, threshold: float, colormap: str = "inferno"):
    """Full-resolution overlay with region outlines (for PNG export) and the 0/255 mask."""
    height, width = rgb.shape[:2]
    prob, _ = match_map_to_image(prob_map, height, width)
    found = regions_mod.find_regions(prob, threshold)
    over = regions_mod.overlay(rgb, prob, colormap)
    thickness = max(2, round(max(height, width) / 600))
    contours = [c.reshape(-1, 1, 2).astype(np.int32) for r in found for c in r.contours]
    if contours:
        # A dark halo under a bright line keeps outlines visible on light and dark areas alike.
        cv2.drawContours(over, contours, -1, (0, 0, 0), thickness + 2, lineType=cv2.LINE_AA)
        cv2.drawContours(over, contours, -1, (0, 255, 255), thickness, lineType=cv2.LINE_AA)
    mask = regions_mod.binary_mask(prob, threshold) * np.uint8(255)
    return over, mask, found
