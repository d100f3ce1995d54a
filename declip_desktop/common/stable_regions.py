"""Regions found in both the tiled (native-resolution) map and the squash map: "stable" regions.

A region of the tiled map is *stable* when some region of the squash map at the same threshold
overlaps it with an intersection-over-union of at least `STABLE_MIN_IOU`. The squash map is
coarse (one DeCLIP patch covers ~250×190 pixels of a 12-megapixel photo), so its regions are
blobs larger than the edit; an IoU of 0.3 accepts such a blob around a well-localized tiled
region and rejects a squash blob that merely touches it. A stable region is seen at two very
different scales; an unstable one is seen at one scale only — often a small edit only the
tiles resolve, or a false alarm in one of the two maps. Neither is a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from declip_desktop.common.regions import Region, binary_mask, find_regions

#: The IoU a tiled-map region needs with a squash-map region to be called stable.
STABLE_MIN_IOU = 0.3


@dataclass(frozen=True)
class RegionMatch:
    """One region of the tiled map and its best match in the squash map."""

    region: Region  # of the tiled map (index, bbox, areas, scores)
    iou: float  # best IoU with a squash-map region (0 when none overlaps)
    squash_index: int | None  # that squash region's index (as `find_regions` numbers them), or None
    stable: bool  # iou ≥ the minimum used

    def as_dict(self) -> dict:
        return {**self.region.as_dict(), "iou_with_squash": round(self.iou, 4), "squash_region": self.squash_index,
                "stable": self.stable}


def _ordered_labels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, stats and label-by-region-index, in `find_regions`' order (largest first, stable)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(-areas, kind="stable") + 1
    return labels, stats, order


def match_regions(tiled_map: np.ndarray, squash_map: np.ndarray, threshold: float,
                  min_iou: float = STABLE_MIN_IOU, max_regions: int = 200) -> list[RegionMatch]:
    """The tiled map's regions above `threshold` (largest first, at most `max_regions`), each
    with its best IoU against the squash map's regions. Both maps: float32 H×W of the same size."""
    tiled = np.asarray(tiled_map, dtype=np.float32)
    squash = np.asarray(squash_map, dtype=np.float32)
    if tiled.shape != squash.shape or tiled.ndim != 2:
        raise ValueError(f"the two maps must be 2-D and the same size, got {tiled.shape} and {squash.shape}")
    if not 0.0 <= float(min_iou) <= 1.0:
        raise ValueError(f"minimum IoU {min_iou!r} is outside 0…1")
    regions = find_regions(tiled, threshold, max_regions=max_regions)
    if not regions:
        return []
    labels_t, stats_t, order_t = _ordered_labels(binary_mask(tiled, threshold))
    labels_s, stats_s, order_s = _ordered_labels(binary_mask(squash, threshold))
    index_of_squash_label = {int(label): i + 1 for i, label in enumerate(order_s)}
    out: list[RegionMatch] = []
    for region, label in zip(regions, order_t):
        x, y, w, h = (int(v) for v in stats_t[label, :4])
        inside = labels_t[y:y + h, x:x + w] == label
        hits = labels_s[y:y + h, x:x + w][inside]
        counts = np.bincount(hits, minlength=1)
        counts[0] = 0
        best_iou, best_label = 0.0, None
        area_t = int(stats_t[label, cv2.CC_STAT_AREA])
        for squash_label in np.nonzero(counts)[0]:
            inter = int(counts[squash_label])
            union = area_t + int(stats_s[squash_label, cv2.CC_STAT_AREA]) - inter
            iou = inter / union
            if iou > best_iou:
                best_iou, best_label = iou, int(squash_label)
        out.append(RegionMatch(region=region, iou=best_iou,
                               squash_index=None if best_label is None else index_of_squash_label[best_label],
                               stable=best_iou >= min_iou and best_label is not None))
    return out


__all__ = ["STABLE_MIN_IOU", "RegionMatch", "match_regions"]
