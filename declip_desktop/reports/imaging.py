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


def qimage_rgb(arr: np.ndarray) -> QImage:
    """A QImage that owns a copy of an H×W×3 uint8 array."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    h, w = arr.shape[:2]
    return QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def qimage_mask(mask: np.ndarray) -> QImage:
    """A 1-bit QImage (black = 0, white = 1): the PDF engine stores it losslessly in a few KB."""
    bits = np.ascontiguousarray(mask, dtype=np.uint8)
    h, w = bits.shape
    packed = np.ascontiguousarray(np.packbits(bits, axis=1))
    img = QImage(packed.data, w, h, packed.shape[1], QImage.Format.Format_Mono)
    img.setColorTable([0xFF000000, 0xFFFFFFFF])
    return img.copy()


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
    """Reduce, blend and budget one item's images; regions are found on the full-size map."""
    height, width = rgb.shape[:2]
    prob, resized = match_map_to_image(prob_map, height, width)
    found = regions_mod.find_regions(prob, threshold)
    small_rgb = scale_to_side(rgb, max_side)
    small_map = scale_to_side(prob, max_side) if small_rgb is not rgb else prob
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
