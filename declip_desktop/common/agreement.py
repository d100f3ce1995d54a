"""Agreement across models: how many localizers flag each pixel, and which flag each region.

Pure numpy/OpenCV (no Qt, no torch, no SQL): the inspector, the report and the CLI compute
the same figures from the same stored maps.

    maps = [map_a, map_b, map_c]            # float32 H×W in [0, 1], the same image, one per model
    agg = agreement_maps(maps, [0.5, 0.5, 0.4])
    agg.count                                # uint8 H×W: models above their own threshold
    regions = region_agreement(maps, [0.5, 0.5, 0.4], regions_of=0)   # regions of model 0's mask
    [r.flagged_by for r in regions]          # e.g. (0, 2): models 0 and 2 flag region 1

A model *flags* a region when at least `min_overlap` (default `DEFAULT_MIN_OVERLAP`, 0.3) of
the region's pixels are above that model's threshold. Regions are the 8-connected components of
one model's mask (`regions_of=i`, numbered like `common.regions.find_regions`: largest first)
or of the union of all masks (`regions_of=UNION`).

What the figures do not say: models trained on related data make related mistakes, so a
pixel every model flags is not proven edited, and a pixel one model flags is not proven
authentic; agreement only says whether the evidence rests on one checkpoint or several.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

#: A model flags a region when at least this fraction of the region's pixels is above its threshold.
DEFAULT_MIN_OVERLAP = 0.3
#: `regions_of=UNION`: regions of the pixels at least one model flags.
UNION = "union"


@dataclass(frozen=True)
class AgreementMaps:
    """Per-pixel agreement of `n_models` maps of one image (all H×W)."""

    count: np.ndarray  # uint8: how many models are above their threshold here
    mean: np.ndarray  # float32: mean probability over the models
    spread: np.ndarray  # float32: standard deviation of the probabilities (0 = all say the same)
    n_models: int

    def fraction(self, at_least: int) -> float:
        """Fraction (0…1) of the image's pixels flagged by at least `at_least` models."""
        return float(np.count_nonzero(self.count >= at_least)) / self.count.size


@dataclass(frozen=True)
class AgreementSummary:
    """The agreement figures a report states for one image."""

    n_models: int
    any_pct: float  # percent of the image flagged by at least one model
    all_pct: float  # percent flagged by every model
    one_pct: float  # percent flagged by exactly one model
    overlap_pct: float | None  # all / any, in percent (None when no model flags anything)
    mean_spread: float  # mean spread over the pixels any model flags (0 when none)


@dataclass(frozen=True)
class RegionAgreement:
    index: int  # 1-based, largest first (as common.regions.find_regions numbers them)
    area_px: int
    bbox: tuple[int, int, int, int]  # x, y, width, height
    overlap: tuple[float, ...]  # per model: fraction (0…1) of the region's pixels above its threshold
    flagged_by: tuple[int, ...]  # indices of the models whose overlap is at least min_overlap

    @property
    def single_model(self) -> bool:
        """Flagged by one model only: the finding rests on one checkpoint."""
        return len(self.flagged_by) == 1


def _check(maps: Sequence[np.ndarray], thresholds: Sequence[float]) -> list[np.ndarray]:
    if len(maps) == 0:
        raise ValueError("agreement needs at least one map")
    if len(maps) > 255:
        raise ValueError(f"{len(maps)} maps: agreement counts at most 255 models")
    if len(thresholds) != len(maps):
        raise ValueError(f"{len(maps)} maps but {len(thresholds)} thresholds; give one threshold per model")
    arrays = [np.asarray(m, dtype=np.float32) for m in maps]
    shape = arrays[0].shape
    if len(shape) != 2 or arrays[0].size == 0:
        raise ValueError(f"a probability map must be a non-empty 2-D array, got shape {shape}")
    for i, a in enumerate(arrays):
        if a.shape != shape:
            raise ValueError(f"map {i} has shape {a.shape}, map 0 has {shape}: resize maps to the image first "
                             "(`same_size`)")
    for t in thresholds:
        if not 0.0 <= float(t) <= 1.0:
            raise ValueError(f"threshold {t} is outside 0…1")
    return arrays


def same_size(prob_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`prob_map` resized (bilinear) to `shape` (height, width); unchanged when it already fits."""
    a = np.asarray(prob_map, dtype=np.float32)
    if a.shape == tuple(shape):
        return a
    return cv2.resize(a, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)


def agreement_maps(maps: Sequence[np.ndarray], thresholds: Sequence[float]) -> AgreementMaps:
    """Count, mean and spread per pixel; each map is compared with its own model's threshold
    (strictly above, as `common.regions.binary_mask`)."""
    arrays = _check(maps, thresholds)
    count = np.zeros(arrays[0].shape, dtype=np.uint8)
    total = np.zeros(arrays[0].shape, dtype=np.float32)
    for a, t in zip(arrays, thresholds):
        count += a > float(t)
        total += a
    n = len(arrays)
    mean = np.divide(total, n, out=total)
    # Two passes (mean, then squared deviations): no cancellation when the models nearly agree.
    squares = np.zeros_like(total)
    deviation = np.empty_like(total)  # one scratch buffer: a 12 MP map is 48 MB per temporary
    for a in arrays:
        np.subtract(a, mean, out=deviation)
        np.multiply(deviation, deviation, out=deviation)
        squares += deviation
    spread = np.sqrt(squares / n, out=squares)
    return AgreementMaps(count=count, mean=mean, spread=spread, n_models=n)


def summarize(agg: AgreementMaps) -> AgreementSummary:
    flagged = agg.count >= 1
    any_px = int(np.count_nonzero(flagged))
    all_px = int(np.count_nonzero(agg.count >= agg.n_models))
    one_px = int(np.count_nonzero(agg.count == 1))
    size = agg.count.size
    return AgreementSummary(
        n_models=agg.n_models,
        any_pct=100.0 * any_px / size,
        all_pct=100.0 * all_px / size,
        one_pct=100.0 * one_px / size,
        overlap_pct=100.0 * all_px / any_px if any_px else None,
        mean_spread=float(agg.spread[flagged].mean()) if any_px else 0.0,
    )


def region_agreement(maps: Sequence[np.ndarray], thresholds: Sequence[float], *, regions_of: int | str = 0,
                     min_overlap: float = DEFAULT_MIN_OVERLAP, max_regions: int = 1000) -> list[RegionAgreement]:
    """Which models flag each region (see the module docstring); the largest `max_regions` regions."""
    arrays = _check(maps, thresholds)
    if not 0.0 < float(min_overlap) <= 1.0:
        raise ValueError(f"min_overlap {min_overlap} must be in (0, 1]")
    masks = [(a > float(t)) for a, t in zip(arrays, thresholds)]
    if regions_of == UNION:
        base = np.logical_or.reduce(masks)
    elif isinstance(regions_of, (int, np.integer)) and 0 <= int(regions_of) < len(arrays):
        base = masks[int(regions_of)]
    else:
        raise ValueError(f"regions_of must be a model index 0…{len(arrays) - 1} or {UNION!r}, got {regions_of!r}")
    count, labels, stats, _ = cv2.connectedComponentsWithStats(base.astype(np.uint8), connectivity=8)
    if count <= 1:
        return []
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(-areas, kind="stable")[:max_regions]
    out = []
    for rank, i in enumerate(order, start=1):
        label = int(i) + 1
        x, y, w, h, area = (int(v) for v in stats[label])
        inside = labels[y:y + h, x:x + w] == label
        overlap = tuple(float(np.count_nonzero(m[y:y + h, x:x + w] & inside)) / area for m in masks)
        flagged = tuple(k for k, f in enumerate(overlap) if f >= float(min_overlap) - 1e-12)
        out.append(RegionAgreement(index=rank, area_px=area, bbox=(x, y, w, h), overlap=overlap, flagged_by=flagged))
    return out


__all__ = ["DEFAULT_MIN_OVERLAP", "UNION", "AgreementMaps", "AgreementSummary", "RegionAgreement",
           "agreement_maps", "region_agreement", "same_size", "summarize"]
