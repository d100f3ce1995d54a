"""Stability under re-compression: the variants an image is re-analysed as, and how well each
region of the original map survives them. Pure numpy/OpenCV/PIL (no Qt, no torch, no SQL).

Variants (`VARIANTS`): JPEG at quality 90 and 75 (PIL, 4:2:0 chroma: what a platform re-upload
does), down-scaled to 0.75 of each side (Lanczos; the map is scaled back to the original size,
bilinear) and a light Gaussian blur (σ = 1 px). The scaled and blurred copies are saved
uncompressed (BMP), so that only the named change reaches the model: lossless like PNG, and
0.2 s instead of 3–6 s for a 12 MP copy (the copies live only in the scratch folder).

A region of the original map (an 8-connected component above the threshold, numbered as
`common.regions.find_regions`) *persists* in a variant when its IoU with the variant's matching
regions — every component of the variant's mask that touches it — is at least `min_iou`
(default `DEFAULT_MIN_IOU`, 0.5, the usual detection-matching criterion). Its stability is the
number of variants it persists in, out of all variants.

What the figure does not say: a stable region is not proven edited (a model can be reliably
wrong), and an unstable one is not proven authentic (re-compression destroys the fine traces a
localizer reads; the original file is the evidence, the variants are only a robustness probe).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

DEFAULT_MIN_IOU = 0.5
#: Up to this many (region, variant component) label pairs the table is a dense bincount (8 bytes each).
_DENSE_PAIRS = 4_000_000


@dataclass(frozen=True)
class Variant:
    name: str  # stored key
    label: str  # what the report and the GUI say
    kind: str  # "jpeg" | "scale" | "blur"
    value: float  # JPEG quality, scale factor or blur sigma

    def as_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "kind": self.kind, "value": self.value}


VARIANTS: tuple[Variant, ...] = (
    Variant("jpeg90", "JPEG quality 90", "jpeg", 90),
    Variant("jpeg75", "JPEG quality 75", "jpeg", 75),
    Variant("scale75", "down-scaled to 0.75", "scale", 0.75),
    Variant("blur1", "Gaussian blur σ 1 px", "blur", 1.0),
)


def make_variant(rgb: np.ndarray, variant: Variant) -> tuple[bytes, str]:
    """The variant of an H×W×3 uint8 image as file bytes, and the file suffix to save it under."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"an RGB image must be H×W×3, got shape {rgb.shape}")
    image = Image.fromarray(rgb, "RGB")
    buf = io.BytesIO()
    if variant.kind == "jpeg":
        image.save(buf, "JPEG", quality=int(variant.value))
        return buf.getvalue(), ".jpg"
    if variant.kind == "scale":
        h, w = rgb.shape[:2]
        size = (max(1, round(w * variant.value)), max(1, round(h * variant.value)))
        image.resize(size, Image.Resampling.LANCZOS).save(buf, "BMP")
        return buf.getvalue(), ".bmp"
    if variant.kind == "blur":
        blurred = cv2.GaussianBlur(rgb, (0, 0), sigmaX=float(variant.value), borderType=cv2.BORDER_REFLECT)
        Image.fromarray(blurred, "RGB").save(buf, "BMP")
        return buf.getvalue(), ".bmp"
    raise ValueError(f"unknown variant kind {variant.kind!r}")


def map_to_original(prob_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A variant's map brought back to the original image's (height, width), bilinear."""
    a = np.asarray(prob_map, dtype=np.float32)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"a probability map must be a non-empty 2-D array, got shape {a.shape}")
    if a.shape == tuple(shape):
        return a
    return np.clip(cv2.resize(a, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


@dataclass(frozen=True)
class RegionStability:
    index: int  # 1-based, largest first (as common.regions.find_regions)
    area_px: int
    bbox: tuple[int, int, int, int]
    iou: dict[str, float]  # variant name → IoU with the variant's matching regions
    persisted: tuple[str, ...]  # variants with IoU ≥ min_iou

    @property
    def variants(self) -> int:
        return len(self.iou)

    @property
    def stable_in(self) -> int:
        return len(self.persisted)

    @property
    def stability_pct(self) -> float:
        return 100.0 * self.stable_in / self.variants if self.variants else 0.0

    @property
    def mean_iou(self) -> float:
        return float(np.mean(list(self.iou.values()))) if self.iou else 0.0

    def as_dict(self) -> dict:
        x, y, w, h = self.bbox
        return {"index": self.index, "area_px": self.area_px, "bbox": [x, y, w, h],
                "iou": {k: round(v, 6) for k, v in self.iou.items()}, "persisted": list(self.persisted)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "RegionStability":
        return cls(index=int(d["index"]), area_px=int(d["area_px"]), bbox=tuple(int(v) for v in d["bbox"]),
                   iou={str(k): float(v) for k, v in dict(d["iou"]).items()},
                   persisted=tuple(str(v) for v in d["persisted"]))


def _components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(count including the background, label image, stats: x, y, width, height, area per label)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return n, labels, stats.astype(np.int64)


def _ious(labels: np.ndarray, n: int, areas: np.ndarray, variant_mask: np.ndarray) -> np.ndarray:
    """IoU of every original component (index = label) with the union of the variant's components
    that touch it, from one contingency table of (original label, variant label) pixel pairs: one
    pass over the image per variant, whatever the number and size of the regions."""
    vn, vlabels, vstats = _components(variant_mask)
    both = (labels > 0) & (vlabels > 0)
    key = labels[both].astype(np.int64) * vn + vlabels[both]
    if n * vn <= _DENSE_PAIRS:  # few regions (the usual case): one bincount, no sort
        dense = np.bincount(key, minlength=n * vn)
        pairs = np.flatnonzero(dense)
        counts = dense[pairs]
    else:
        pairs, counts = np.unique(key, return_counts=True)
    orig, var = pairs // vn, pairs % vn
    inter = np.bincount(orig, weights=counts, minlength=n)
    # Each (region, variant component) pair occurs once: the touched components' areas add up.
    touched = np.bincount(orig, weights=vstats[var, cv2.CC_STAT_AREA], minlength=n)
    union = areas + touched - inter
    out = np.zeros(n, dtype=np.float64)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def region_stability(original: np.ndarray, variants: Mapping[str, np.ndarray], threshold: float, *,
                     min_iou: float = DEFAULT_MIN_IOU, max_regions: int = 1000) -> list[RegionStability]:
    """Each region of `original` above `threshold`: its IoU in every variant map (all the original's
    size; see `map_to_original`) and the variants it persists in (IoU ≥ `min_iou`)."""
    base = np.asarray(original, dtype=np.float32)
    if base.ndim != 2 or base.size == 0:
        raise ValueError(f"a probability map must be a non-empty 2-D array, got shape {base.shape}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold {threshold} is outside 0…1")
    if not 0.0 < float(min_iou) <= 1.0:
        raise ValueError(f"min_iou {min_iou} must be in (0, 1]")
    arrays = {}
    for name, m in variants.items():
        a = np.asarray(m, dtype=np.float32)
        if a.shape != base.shape:
            raise ValueError(f"variant {name}: map shape {a.shape} differs from the original's {base.shape}; "
                             "bring it back with map_to_original first")
        arrays[name] = a
    n, labels, stats = _components(base > float(threshold))
    if n <= 1:
        return []
    areas = stats[:, cv2.CC_STAT_AREA]
    ious = {name: _ious(labels, n, areas, a > float(threshold)) for name, a in arrays.items()}
    order = np.argsort(-areas[1:], kind="stable")[:max_regions] + 1  # largest first, as find_regions
    out = []
    for rank, label in enumerate(order, start=1):
        x, y, w, h, area = (int(v) for v in stats[label])
        region_ious = {name: float(v[label]) for name, v in ious.items()}
        persisted = tuple(k for k, v in region_ious.items() if v >= float(min_iou) - 1e-12)
        out.append(RegionStability(index=rank, area_px=area, bbox=(x, y, w, h), iou=region_ious, persisted=persisted))
    return out


def describe_region(region: RegionStability, labels: Mapping[str, str] | None = None) -> str:
    """e.g. "4/4 variants (IoU 0.91–0.98)" or "1/4 variants (IoU 0.10–0.62); lost: JPEG quality 75, …"
    (`labels`: variant name → label, in the order the variants were made)."""
    if not region.iou:
        return "no variants"
    low, high = min(region.iou.values()), max(region.iou.values())
    text = f"{region.stable_in}/{region.variants} variants (IoU {low:.2f}–{high:.2f})"
    if labels is not None:
        order = list(labels) + [n for n in region.iou if n not in labels]
        lost = [n for n in order if n in region.iou and n not in region.persisted]
        if lost:
            text += "; lost: " + ", ".join(labels.get(n, n) for n in lost)
    return text


__all__ = ["DEFAULT_MIN_IOU", "VARIANTS", "RegionStability", "Variant", "describe_region", "make_variant",
           "map_to_original", "region_stability"]
