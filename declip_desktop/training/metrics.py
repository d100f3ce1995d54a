"""Per-image localization metrics with the DeCLIP paper's protocol, and their means.

`image_metrics(prob_map, gt_mask)` scores one probability map against one ground-truth
mask (True / 1 = manipulated) and returns a dict; `summarize(rows)` averages many.

The numbers are meant to be *identical* to the authors' evaluation code (their
`utils/utils.py` + `validate.py`), not merely close, so this module reproduces its
arithmetic on purpose, including the parts that look accidental:

* A map whose size differs from its mask is resized to the mask as torchvision's
  tensor `resize` does it (bilinear, antialias on: torchvision ≥ 0.17's default), in float32.
* IoU (percent): `pred > 0.5` vs the mask, `(inter + 1e-8) / (union + 1e-8)` in float32,
  times 100 in double. An empty prediction against an empty mask therefore scores 100.
* F1 (TruFor protocol): the "manipulated" pixels scored are the mask eroded by a 15×15
  window (outside the image counts as manipulated, so the image border does not erode);
  the "real" pixels are the complement of the mask dilated by an 11×11 window (outside
  counts as real). Everything else — the border band — is ignored.
  - F1 fixed: prediction `> 0.5` on the scored pixels, F1 = (2TP + 1e-32) /
    max(2TP + FN + FP, 1e-32) in float32. With nothing to find and no false alarm this
    is 1e-32/1e-32 = 1.
  - F1 best: the same F1 for the rule `pred > v`, for every distinct value v of the
    scored predictions *except the largest* (the authors' curve never includes "flag
    everything" nor "flag nothing"), maximised; then Python's `max(best, fixed)`. When the
    scored predictions take a single value the authors' curve is empty and they get NaN,
    and `max(nan, fixed)` stays NaN — reproduced.
* AP: torchmetrics' binary AveragePrecision (exact, no binning) over *all* pixels: the
  scores are passed through a sigmoid first when any lies outside [0, 1] (torchmetrics'
  logit detection — it can be triggered by a resize overshooting 1.0 by an ulp); with no
  manipulated pixel it returns 0.

Integer counts are exact here; the authors accumulate some of them in float32, which is
exact up to 2**24 (16.7 million) scored pixels per image. Beyond that their last digits
may differ from ours.

"Undefined" — a metric whose formula is 0/0 for this image, so the authors' value is a
convention, not a measurement:
  iou       union empty (no manipulated pixel, none predicted): authors' value 100
  f1_fixed  no scored manipulated pixel and no false alarm: authors' value 1
  f1_best   authors' NaN (single score value on the scored pixels) or f1_fixed undefined
  ap        no manipulated pixel in the mask: authors' value 0
Rows keep the authors' value and list the undefined metrics by name. `summarize` gives
the mean of each metric over the images where it is defined (with the count of the
others), and separately the authors' plain mean over all images (`authors_mean`), which
is what their `validate.py` prints.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

IOU_THRESHOLD = 0.5
F1_THRESHOLD = 0.5
ERODE_WINDOW = 15
DILATE_WINDOW = 11
METRIC_NAMES = ("iou", "f1_best", "f1_fixed", "ap")

_F32 = np.float32
_EPS_IOU = _F32(1e-8)
_EPS_F1 = _F32(1e-32)


class MetricInputError(ValueError):
    """The map or the mask cannot be scored (wrong shape, NaN, values outside [0, 1])."""


# ---------------------------------------------------------------------------------------
# inputs


def as_gt_mask(gt_mask: Any) -> np.ndarray:
    """A boolean H×W mask (True = manipulated). Numeric masks are binarized `> 0.5`."""
    arr = np.asarray(gt_mask)
    if arr.ndim != 2 or arr.size == 0:
        raise MetricInputError(f"ground-truth mask must be a non-empty 2-D array, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    return arr > 0.5


def as_prob_map(prob_map: Any) -> np.ndarray:
    """A float32 H×W map in [0, 1]; anything else is refused with the reason."""
    if hasattr(prob_map, "detach"):  # a torch tensor
        prob_map = prob_map.detach().cpu().numpy()
    arr = np.asarray(prob_map)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or arr.size == 0:
        raise MetricInputError(f"probability map must be a non-empty 2-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise MetricInputError(f"probability map must be floating point, got {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise MetricInputError("probability map contains NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise MetricInputError(
            f"probability map has values in [{lo:.4g}, {hi:.4g}], outside [0, 1] "
            "(logits? apply a sigmoid first)"
        )
    return arr


def resize_map(prob_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float32 map to (height, width) exactly as the authors' evaluation does.

    Their `torchvision.transforms.functional.resize(map[None], size, BILINEAR)` on a float32
    tensor is, in torchvision 0.29, `F.interpolate(bilinear, align_corners=False,
    antialias=True)` on a 1×1×H×W view; we call that directly (importing torchvision costs
    seconds) and `benchmarks/metrics_conformance.py` checks it against torchvision's resize.
    No clamping: like theirs, the result may step an ulp outside [0, 1].
    """
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(prob_map, dtype=np.float32))[None, None]
    out = F.interpolate(t, size=(int(size[0]), int(size[1])), mode="bilinear", align_corners=False, antialias=True)
    return out[0, 0].numpy()


# ---------------------------------------------------------------------------------------
# morphology on binary masks, by box counts (exact integers)


def _box_count(mask: np.ndarray, window: int) -> np.ndarray:
    """Number of True pixels in the window×window box centred on each pixel (zero outside)."""
    r = window // 2
    h, w = mask.shape
    padded = np.zeros((h + 2 * r + 1, w + 2 * r + 1), dtype=np.int64)
    padded[r + 1 : r + 1 + h, r + 1 : r + 1 + w] = mask
    integral = padded.cumsum(0).cumsum(1)
    return (
        integral[window:, window:]
        - integral[:-window, window:]
        - integral[window:, :-window]
        + integral[:-window, :-window]
    )


def scored_sets(gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(manipulated, real) pixel sets of the TruFor protocol for a boolean mask."""
    # Erosion: a pixel stays manipulated when no *in-image* real pixel is in its 15×15 box
    # (outside the image counts as manipulated). Dilation: any manipulated pixel in 11×11.
    manipulated = _box_count(~gt, ERODE_WINDOW) == 0
    real = _box_count(gt, DILATE_WINDOW) == 0
    return manipulated, real


# ---------------------------------------------------------------------------------------
# the metrics


def _f1_f32(tp: np.ndarray | int, fn: np.ndarray | int, fp: np.ndarray | int) -> np.ndarray:
    """(2TP + 1e-32) / max(2TP + FN + FP, 1e-32), each step in float32 like the authors."""
    tp = np.asarray(tp, dtype=np.int64)
    num = (2 * tp).astype(_F32) + _EPS_F1
    den = np.maximum((2 * tp + np.asarray(fn, dtype=np.int64) + np.asarray(fp, dtype=np.int64)).astype(_F32), _EPS_F1)
    return (num / den).astype(_F32)


def _iou_percent(pred: np.ndarray, gt: np.ndarray) -> tuple[float, bool]:
    inter = int(np.count_nonzero(pred & gt))
    union = int(np.count_nonzero(pred | gt))
    ratio = (_F32(inter) + _EPS_IOU) / (_F32(union) + _EPS_IOU)
    return 100.0 * float(_F32(ratio)), union > 0


def _f1_metrics(scores: np.ndarray, manipulated: np.ndarray, real: np.ndarray) -> tuple[float, float, bool, bool]:
    """(f1_best, f1_fixed, best_defined, fixed_defined) on the scored pixels."""
    keep = manipulated | real
    s = scores[keep]
    is_manip = manipulated[keep]
    n_manip = int(np.count_nonzero(is_manip))
    n_real = int(s.size - n_manip)

    flagged = s > F1_THRESHOLD
    tp = int(np.count_nonzero(flagged & is_manip))
    fp = int(np.count_nonzero(flagged & ~is_manip))
    fn = n_manip - tp
    f1_fixed = _f1_f32(tp, fn, fp)
    fixed_defined = (2 * tp + fn + fp) > 0

    # Curve: for each distinct score v but the largest, flag `s > v`.
    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    manip_sorted = is_manip[order]
    boundary = np.flatnonzero(s_sorted[1:] > s_sorted[:-1])  # last index of each tie group but the top one
    if boundary.size == 0:
        best = float("nan")  # the authors' torch.max on an empty tensor fails -> NaN
    else:
        manip_at_or_below = np.cumsum(manip_sorted, dtype=np.int64)[boundary]
        real_at_or_below = (boundary + 1) - manip_at_or_below
        curve = _f1_f32(n_manip - manip_at_or_below, manip_at_or_below, n_real - real_at_or_below)
        best = float(curve.max())
    fixed = float(f1_fixed)
    # Python's max(best, fixed) keeps the first argument unless the second is greater: NaN sticks.
    f1_best = fixed if fixed > best else best
    best_defined = fixed_defined and not math.isnan(f1_best)
    return f1_best, fixed, best_defined, fixed_defined


def average_precision(scores: np.ndarray, labels: np.ndarray) -> tuple[float, bool]:
    """Exact (unbinned) AP of `scores` for boolean `labels`, as torchmetrics computes it.

    Returns (ap, defined); with no positive label AP is 0 and undefined.
    """
    import torch

    s = torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32).ravel())
    y = torch.from_numpy(np.ascontiguousarray(labels, dtype=bool).ravel())
    if not bool(((s >= 0) & (s <= 1)).all()):
        s = s.sigmoid()  # torchmetrics treats any value outside [0, 1] as logits
    if not bool(y.any()):
        return 0.0, False
    order = torch.argsort(s, descending=True)
    s = s[order]
    y = y[order]
    # Last position of each run of equal scores (descending), plus the very end.
    ends = torch.cat([torch.nonzero(s[1:] != s[:-1]).flatten(), torch.tensor([s.numel() - 1])])
    tps = torch.cumsum(y.to(torch.float32), 0)[ends]  # float32 like torchmetrics
    fps = 1 + ends - tps
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    # Walk the curve from the highest threshold (recall 0, precision 1) down, summing
    # precision × recall increments in the same order torchmetrics does.
    precision = torch.cat([precision.flip(0), torch.ones(1)])
    recall = torch.cat([recall.flip(0), torch.zeros(1)])
    ap = -torch.sum((recall[1:] - recall[:-1]) * precision[:-1])
    return float(ap) + 0.0, True  # + 0.0 turns torch's -0.0 into 0.0


def image_metrics(prob_map: Any, gt_mask: Any) -> dict[str, Any]:
    """Score one probability map against one ground-truth mask (True = manipulated).

    The map is resized to the mask when their sizes differ. Returns a dict with
    `iou` (percent), `f1_best`, `f1_fixed`, `ap` (the authors' values, see the module
    docstring), `undefined` (names of the metrics that are 0/0 for this image),
    `manipulated_px` (in the mask), `scored_px` (outside the border band),
    `height`, `width` (the mask's) and `resized` (bool).
    """
    gt = as_gt_mask(gt_mask)
    scores = as_prob_map(prob_map)
    resized = scores.shape != gt.shape
    if resized:
        scores = resize_map(scores, gt.shape)

    iou, iou_defined = _iou_percent(scores > IOU_THRESHOLD, gt)
    manipulated, real = scored_sets(gt)
    f1_best, f1_fixed, best_defined, fixed_defined = _f1_metrics(scores, manipulated, real)
    ap, ap_defined = average_precision(scores, gt)

    undefined = [
        name
        for name, ok in (("iou", iou_defined), ("f1_best", best_defined), ("f1_fixed", fixed_defined), ("ap", ap_defined))
        if not ok
    ]
    return {
        "iou": iou,
        "f1_best": f1_best,
        "f1_fixed": f1_fixed,
        "ap": ap,
        "undefined": undefined,
        "manipulated_px": int(np.count_nonzero(gt)),
        "scored_px": int(np.count_nonzero(manipulated | real)),
        "height": int(gt.shape[0]),
        "width": int(gt.shape[1]),
        "resized": bool(resized),
    }


def _mean(values: Sequence[float]) -> float | None:
    # sum()/len() in Python floats, left to right, as the authors average.
    return sum(values) / len(values) if values else None


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Means over images of rows from `image_metrics` (rows with an `error` key are skipped).

    `iou`, `f1_best`, `f1_fixed`, `ap`: mean over the images where that metric is defined
    (None when it is defined nowhere); `defined`/`undefined`: how many images each mean
    covers / leaves out; `authors_mean`: plain mean of the authors' values over all `n`
    images (NaN if any is NaN) — the figure their `validate.py` prints.
    """
    scored = [r for r in rows if not r.get("error")]
    out: dict[str, Any] = {"n": len(scored)}
    undefined: dict[str, int] = {}
    defined: dict[str, int] = {}
    authors: dict[str, float | None] = {}
    for name in METRIC_NAMES:
        ok = [float(r[name]) for r in scored if name not in r.get("undefined", ())]
        out[name] = _mean(ok)
        defined[name] = len(ok)
        undefined[name] = len(scored) - len(ok)
        authors[name] = _mean([float(r[name]) for r in scored])
    out["defined"] = defined
    out["undefined"] = undefined
    out["authors_mean"] = authors
    return out
