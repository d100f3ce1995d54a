"""Regions of a probability map above a threshold, shared by the GUI and the reports.

A region is an 8-connected component of `map > threshold`. Its statistics are
computed on the map at full resolution so the GUI table, the PDF report and the
exports always agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass(frozen=True)
class Region:
    index: int  # 1-based, ordered by decreasing area
    area_px: int
    area_pct: float  # percent of the whole image
    bbox: tuple[int, int, int, int]  # x, y, width, height in image pixels
    mean_score: float
    max_score: float
    contours: tuple[np.ndarray, ...] = field(default=(), compare=False, repr=False)

    def as_dict(self) -> dict:
        x, y, w, h = self.bbox
        return {
            "index": self.index,
            "area_px": self.area_px,
            "area_pct": round(self.area_pct, 4),
            "bbox": {"x": x, "y": y, "width": w, "height": h},
            "mean_score": round(self.mean_score, 6),
            "max_score": round(self.max_score, 6),
        }


def binary_mask(prob_map: np.ndarray, threshold: float) -> np.ndarray:
    """uint8 mask, 1 where the probability is strictly above the threshold (as the paper's IoU)."""
    return (np.asarray(prob_map) > threshold).astype(np.uint8)


def find_regions(
    prob_map: np.ndarray,
    threshold: float,
    min_area_px: int = 1,
    with_contours: bool = True,
    max_regions: int = 1000,
) -> list[Region]:
    """Connected regions above `threshold`, largest first.

    `max_regions` bounds the work for noisy maps (a random map can have
    millions of one-pixel components); the largest ones are kept.
    """
    prob = np.asarray(prob_map, dtype=np.float32)
    if prob.ndim != 2:
        raise ValueError(f"probability map must be 2-D, got shape {prob.shape}")
    mask = binary_mask(prob, threshold)
    total = prob.size
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return []
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(-areas, kind="stable")
    keep = [int(i) + 1 for i in order if areas[i] >= min_area_px][:max_regions]
    if not keep:
        return []
    # Statistics per kept region from its bounding-box crop: proportional to the
    # regions' size, not the image's (a full-image bincount / ufunc.at costs seconds
    # on a 12-megapixel map, which the GUI recomputes as the threshold moves).
    boxes = [tuple(int(v) for v in stats[label]) for label in keep]
    if sum(w * h for _x, _y, w, h, _a in boxes) > 4 * total:
        # Pathological nesting (many huge overlapping boxes): one pass over the image instead.
        flat_labels = labels.ravel()
        flat_prob = prob.ravel()
        sums = np.bincount(flat_labels, weights=flat_prob, minlength=count)
        maxima = np.full(count, -np.inf, dtype=np.float64)
        np.maximum.at(maxima, flat_labels, flat_prob)
        per_label = {label: (float(sums[label]), float(maxima[label])) for label in keep}
    else:
        per_label = {}
        for label, (x, y, w, h, _area) in zip(keep, boxes):
            inside = labels[y : y + h, x : x + w] == label
            values = prob[y : y + h, x : x + w][inside]
            per_label[label] = (float(values.sum(dtype=np.float64)), float(values.max()))
    regions = []
    for rank, label in enumerate(keep, start=1):
        x, y, w, h, area = (int(v) for v in stats[label])
        contours: tuple[np.ndarray, ...] = ()
        if with_contours:
            sub = (labels[y : y + h, x : x + w] == label).astype(np.uint8)
            found, _ = cv2.findContours(sub, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x, y))
            contours = tuple(c.reshape(-1, 2) for c in found)
        regions.append(
            Region(
                index=rank,
                area_px=area,
                area_pct=100.0 * area / total,
                bbox=(x, y, w, h),
                mean_score=per_label[label][0] / area,
                max_score=per_label[label][1],
                contours=contours,
            )
        )
    return regions


#: Colour maps offered to analysts; names map to OpenCV's built-in tables.
COLORMAPS = {
    "inferno": cv2.COLORMAP_INFERNO,
    "jet": cv2.COLORMAP_JET,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "magma": cv2.COLORMAP_MAGMA,
    "turbo": cv2.COLORMAP_TURBO,
    "hot": cv2.COLORMAP_HOT,
}


def colorize(prob_map: np.ndarray, colormap: str = "inferno") -> np.ndarray:
    """H×W×3 uint8 RGB heat image of a [0, 1] map."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colour map {colormap!r}; choose one of {', '.join(COLORMAPS)}")
    levels = (np.clip(np.asarray(prob_map, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    bgr = cv2.applyColorMap(levels, COLORMAPS[colormap])
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def overlay(rgb: np.ndarray, prob_map: np.ndarray, colormap: str = "inferno", opacity: float = 0.5) -> np.ndarray:
    """Blend a heat map over an RGB image of the same size."""
    heat = colorize(prob_map, colormap)
    if heat.shape[:2] != rgb.shape[:2]:
        raise ValueError(f"map {heat.shape[:2]} and image {rgb.shape[:2]} differ in size")
    return cv2.addWeighted(rgb, 1.0 - opacity, heat, opacity, 0.0)
