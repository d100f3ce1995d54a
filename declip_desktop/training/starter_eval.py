"""Evaluation of the starter model at native resolution, on edited *and* unedited images.

The figures the issue-22 card reports: pixel IoU on the edited images (overall, per manipulation
family, per post-processing), the flagged area on the authentic images at the 0.5 threshold
(median, share of images with more than 1 % / 10 % flagged), the image-level AUC of the raw score
(edited vs authentic), and the raw scores of the authentic images (for the score calibration,
`engine.score_calibration`). Images are prepared as the Localizer prepares them for a card with
`max_side`: shrunk (PIL bilinear, aspect kept) so the long side is at most `max_side`, never
enlarged; the probability map is resized back to the file's size before scoring.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from declip_desktop.engine import starter
from declip_desktop.engine.preprocess import SCORE_TOP_FRACTION, image_score, native_size
from declip_desktop.training.synth import read_manifest

class StarterDataError(ValueError):
    """The data set or run folder cannot be used; the message says what to do."""


#: An authentic image counts as a false alarm when more than this share of it is flagged.
FALSE_ALARM_AREA = 0.01


@dataclass
class NativeItem:
    image: np.ndarray  # as the network sees it (long side ≤ max_side), uint8
    mask: np.ndarray | None  # file-size bool mask (all False for an authentic image); None in train
    mask_small: np.ndarray  # image-size uint8 0..255 (the loss's target)
    record: dict


def load_native(data_dir: Path, split: str, max_side: int, limit: int = 0) -> list[NativeItem]:
    if not (Path(data_dir) / "manifest.jsonl").is_file():
        raise StarterDataError(f"{data_dir} holds no synthetic data set (no manifest.jsonl). "
                               "Run `declip train-starter data` first.")
    items = []
    for rec in read_manifest(data_dir):
        if rec["split"] != split:
            continue
        img = Image.open(Path(data_dir) / rec["image"]).convert("RGB")
        mask = np.asarray(Image.open(Path(data_dir) / rec["mask"]).convert("L")) > 127
        size = native_size(img.width, img.height, max_side)
        if size != img.size:
            img = img.resize(size, Image.BILINEAR)
            small = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.BILINEAR))
        else:
            small = mask.astype(np.uint8) * 255
        # Training reads only the image-size target: dropping the file-size mask halves the memory.
        items.append(NativeItem(np.asarray(img), None if split == "train" else mask, small, rec))
        if limit and len(items) >= limit:
            break
    if not items:
        raise StarterDataError(f"no {split} images in {data_dir}/manifest.jsonl; make the data set with "
                               "`declip train-starter data`.")
    return items


@torch.no_grad()
def predict(net: torch.nn.Module, image: np.ndarray, out_hw: tuple[int, int], mean, std,
            top_fraction: float = SCORE_TOP_FRACTION) -> tuple[np.ndarray, float]:
    """(probability map at out_hw, raw image score on the network's own map)."""
    x = starter.normalize(torch.from_numpy(np.array(image)).unsqueeze(0), mean, std)
    prob_small = torch.sigmoid(net(x))
    score = image_score(prob_small[0, 0], top_fraction)
    prob = F.interpolate(prob_small, size=out_hw, mode="bilinear", align_corners=False)
    return prob[0, 0].numpy(), score


def auc(positive: list[float], negative: list[float]) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties count one half); None without both classes."""
    if not positive or not negative:
        return None
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def _mean(values: list[float]) -> float:
    return round(float(np.mean(values)), 2) if values else float("nan")


def evaluate_native(net, items: list[NativeItem], mean, std, offset: float = 0.0,
                    top_fraction: float = SCORE_TOP_FRACTION) -> dict[str, Any]:
    """All issue-22 figures for `items`; `offset` is added to the logits (bias calibration);
    `top_fraction` is the image score's share of the map (the card's `score_top_fraction`)."""
    net.eval()
    ious, per_family, per_post = [], defaultdict(list), defaultdict(list)
    flagged, auth_scores, edit_scores = [], [], []
    per_post_auth = defaultdict(list)
    for it in items:
        prob, score = predict(net, it.image, it.mask.shape, mean, std, top_fraction)
        if offset:
            prob = 1 / (1 + np.exp(-(np.log(prob / np.clip(1 - prob, 1e-7, 1)) + offset)))
        post = (it.record.get("post") or {}).get("kind", "none")
        if it.record.get("authentic"):
            area = float((prob > 0.5).mean())
            flagged.append(area)
            per_post_auth[post].append(area)
            auth_scores.append(score)
            continue
        p, g = prob > 0.5, it.mask
        iou = (float((p & g).sum()) + 1e-8) / (float((p | g).sum()) + 1e-8) * 100.0
        ious.append(iou)
        per_family[it.record["type"]].append(iou)
        per_post[post].append(iou)
        edit_scores.append(score)
    fa = np.asarray(flagged)
    result = {
        "n_edited": len(ious), "n_authentic": len(flagged),
        "iou": _mean(ious),
        "per_family": {k: {"n": len(v), "iou": _mean(v)} for k, v in sorted(per_family.items())},
        "per_post": {k: {"n": len(v), "iou": _mean(v)} for k, v in sorted(per_post.items())},
        "authentic_median_flagged_pct": round(float(np.median(fa)) * 100, 2) if fa.size else None,
        "authentic_over_1pct_share": round(float((fa > FALSE_ALARM_AREA).mean()) * 100, 1) if fa.size else None,
        "authentic_over_10pct_share": round(float((fa > 0.10).mean()) * 100, 1) if fa.size else None,
        "authentic_over_1pct_per_post": {k: round(float((np.asarray(v) > FALSE_ALARM_AREA).mean()) * 100, 1)
                                         for k, v in sorted(per_post_auth.items())},
        "authentic_mean_score": round(float(np.mean(auth_scores)), 3) if auth_scores else None,
        "auc": None if (a := auc(edit_scores, auth_scores)) is None else round(a, 4),
        "score_top_fraction": top_fraction,
        "authentic_scores": sorted(round(s, 5) for s in auth_scores),
        "edited_scores": sorted(round(s, 5) for s in edit_scores),
    }
    result["selection"] = selection_score(result)
    return result


def selection_score(res: dict[str, Any]) -> float:
    """One number for keeping the best weights: IoU, the authentic images not flagged, and AUC, equally."""
    parts = [res["iou"]]
    if res["authentic_over_1pct_share"] is not None:
        parts.append(100.0 - res["authentic_over_1pct_share"])
    if res["auc"] is not None:
        parts.append(100.0 * res["auc"])
    return round(float(np.mean(parts)), 2)
