"""Packaging the native-resolution starter (issue 22): calibrate on validation, measure on test, write the card.

Steps, all on photos the training never saw:
1. output bias: the logit offset that maximizes the validation IoU on edited images among the
   offsets that keep at most the budget (default `FALSE_ALARM_BUDGET`, the issue's 20 %) of the
   authentic validation images with more than 1 % flagged;
2. image score: the share of the map it averages (`score_top_fraction`, one of `TOP_FRACTIONS`) that
   best separates edited from unedited validation images, and the raw scores of the authentic
   validation images at that share become the card's `score_calibration` (`engine.score_calibration`:
   "0.9 ≈ 10 % of unedited images score higher");
3. the test split (test-only photos, method-disjoint parameters): every issue-22 figure, also for
   an earlier model (`compare`) on the same images in its own preprocessing;
4. the card, whose label states the false-alarm rate, so every result (CLI, GUI, report) shows it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.version import SOFTWARE_VERSION
from declip_desktop.engine import starter
from declip_desktop.engine.preprocess import SCORE_TOP_FRACTION, top_count
from declip_desktop.engine.score_calibration import raw_for_share_above
from declip_desktop.training.starter_eval import (
    FALSE_ALARM_AREA, StarterDataError, evaluate_native, load_native, selection_score,
)

#: Default share of authentic validation images allowed above 1 % flagged when fitting the bias (the
#: issue's target for the test split is 20 %).
FALSE_ALARM_BUDGET = 0.20
OFFSETS = np.arange(-3.0, 3.01, 0.25)
#: Candidate shares of the map for the image score (its mean over the top share); the packaging keeps
#: the one with the best validation AUC (ties: the default 1 %), written as the card's `score_top_fraction`.
TOP_FRACTIONS = (0.001, 0.003, 0.01, 0.03, 0.1)
#: The issue's targets (issue 22 item 3), checked and written into the card.
TARGETS = {"iou": 45.0, "iou_per_family": 25.0, "authentic_median_flagged_pct": 1.0,
           "authentic_over_1pct_share": 20.0, "auc": 0.85}


@torch.no_grad()
def fit_offset(net, items, mean, std, budget: float = FALSE_ALARM_BUDGET) -> tuple[dict[str, Any], dict[str, Any]]:
    """Step 1, in one pass per image: (the offset record, the validation figures at that offset).

    Thresholds are compared on the upsampled logits (sigmoid(l + o) > 0.5 ⟺ l > −o); the image
    score at any offset and any share of `TOP_FRACTIONS` comes from the top logits, which an offset
    does not reorder. The share with the best validation AUC becomes the record's `score_top_fraction`."""
    from declip_desktop.training.starter_eval import auc

    widest = max(TOP_FRACTIONS)

    net.eval()
    n_off = len(OFFSETS)
    ious, alarms, areas = [], [], []  # per edited image: IoU per offset; per authentic: area per offset
    edit_top, auth_top, families = [], [], []
    for it in items:
        x = starter.normalize(torch.from_numpy(np.array(it.image)).unsqueeze(0), mean, std)
        logits = net(x)
        flat = logits.reshape(-1)
        # Sorted descending, so the top k of any share is a prefix; each share's k as image_score counts it.
        top = torch.topk(flat, top_count(flat.numel(), widest)).values.numpy()
        top = (top, {f: top_count(flat.numel(), f) for f in TOP_FRACTIONS})
        up = F.interpolate(logits, size=it.mask.shape, mode="bilinear", align_corners=False)[0, 0].numpy()
        if it.record.get("authentic"):
            areas.append([float((up > -o).mean()) for o in OFFSETS])
            auth_top.append(top)
        else:
            row = []
            for o in OFFSETS:
                pred = up > -o
                row.append((float((pred & it.mask).sum()) + 1e-8) / (float((pred | it.mask).sum()) + 1e-8) * 100.0)
            ious.append(row)
            edit_top.append(top)
            families.append(it.record["type"])
    iou_m = np.asarray(ious).reshape(-1, n_off)
    area_m = np.asarray(areas).reshape(-1, n_off)
    mean_iou = iou_m.mean(0) if len(iou_m) else np.zeros(n_off)
    alarm = (area_m > FALSE_ALARM_AREA).mean(0) if len(area_m) else np.zeros(n_off)
    allowed = np.flatnonzero(alarm <= budget)
    best = int(allowed[np.argmax(mean_iou[allowed])]) if allowed.size else int(np.argmin(alarm))
    zero = int(np.argmin(np.abs(OFFSETS)))
    offset = float(OFFSETS[best])
    net.head.bias += offset

    def score(top, fraction):
        values, ks = top
        return float((1 / (1 + np.exp(-(values[:ks[fraction]] + offset)))).mean())

    by_fraction = {}
    for f in TOP_FRACTIONS:
        by_fraction[f] = auc([score(t, f) for t in edit_top], [score(t, f) for t in auth_top])
    scored = {f: a for f, a in by_fraction.items() if a is not None}
    # Highest AUC; among equals the default share, then the smaller one.
    fraction = (max(scored, key=lambda f: (round(scored[f], 6), f == SCORE_TOP_FRACTION, -f)) if scored
                else SCORE_TOP_FRACTION)
    auth_scores = sorted(round(score(t, fraction), 5) for t in auth_top)
    edit_scores = sorted(round(score(t, fraction), 5) for t in edit_top)
    per_family: dict[str, list[float]] = {}
    for fam, row in zip(families, iou_m[:, best] if len(iou_m) else []):
        per_family.setdefault(fam, []).append(float(row))
    a = auc(edit_scores, auth_scores)
    valid = {
        "n_edited": len(iou_m), "n_authentic": len(area_m), "iou": round(float(mean_iou[best]), 2),
        "per_family": {k: {"n": len(v), "iou": round(float(np.mean(v)), 2)} for k, v in sorted(per_family.items())},
        "authentic_median_flagged_pct": round(float(np.median(area_m[:, best])) * 100, 2) if len(area_m) else None,
        "authentic_over_1pct_share": round(float(alarm[best]) * 100, 1) if len(area_m) else None,
        "auc": None if a is None else round(a, 4), "score_top_fraction": fraction,
        "authentic_scores": auth_scores, "edited_scores": edit_scores,
    }
    record = {"offset": offset, "budget_authentic_over_1pct": budget,
              "valid_iou_before": round(float(mean_iou[zero]), 2), "valid_iou_after": round(float(mean_iou[best]), 2),
              "valid_authentic_over_1pct_before": round(float(alarm[zero]) * 100, 1),
              "valid_authentic_over_1pct_after": round(float(alarm[best]) * 100, 1),
              "within_budget": bool(allowed.size),
              "score_top_fraction": fraction,
              "valid_auc_per_score_top_fraction": {str(f): (None if v is None else round(v, 4))
                                                   for f, v in by_fraction.items()},
              "per_offset": {f"{o:+.2f}": [round(float(mean_iou[j]), 2), round(float(alarm[j]) * 100, 1)]
                             for j, o in enumerate(OFFSETS)}}
    return record, valid


@torch.no_grad()
def selection_figures(net, items, mean, std, budget: float = FALSE_ALARM_BUDGET) -> tuple[dict[str, Any], dict[str, Any]]:
    """The validation figures the packaging would report for these weights: `fit_offset`'s, with the
    network's bias left as it was. The trainer keeps its best weights by these, since a raw bias that
    flags every authentic image is what packaging removes; judging raw outputs kept weak early weights."""
    saved = net.head.bias.detach().clone()
    try:
        record, valid = fit_offset(net, items, mean, std, budget)
    finally:
        net.head.bias.copy_(saved)
    valid["selection"] = selection_score(valid)
    return record, valid


def targets_met(res: dict[str, Any]) -> dict[str, bool]:
    fam = [v["iou"] for v in res["per_family"].values()]
    return {
        "iou_overall_ge_45": res["iou"] >= TARGETS["iou"],
        "iou_every_family_ge_25": bool(fam) and min(fam) >= TARGETS["iou_per_family"],
        "authentic_median_flagged_le_1pct": res["authentic_median_flagged_pct"] <= TARGETS["authentic_median_flagged_pct"],
        "authentic_over_1pct_le_20pct": res["authentic_over_1pct_share"] <= TARGETS["authentic_over_1pct_share"],
        "auc_ge_085": res["auc"] is not None and res["auc"] >= TARGETS["auc"],
    }


class _Square(torch.nn.Module):
    """An earlier, square-input starter seen through its own preprocessing (resize to S×S)."""

    def __init__(self, net, size: int):
        super().__init__()
        self.net, self.size = net, size

    def forward(self, x):
        from PIL import Image

        img = ((x[0].permute(1, 2, 0) * 0.25 + 0.5) * 255).round().clamp(0, 255).byte().numpy()
        small = np.asarray(Image.fromarray(img).resize((self.size, self.size), Image.BILINEAR))
        # Its own half-resolution map, as the Localizer scores it; the caller resizes it to the file.
        return self.net(starter.normalize(torch.from_numpy(small.copy()).unsqueeze(0)))


def compare_with(card_path: Path, items, mean, std, cache: Path | None = None, flips: int | None = None) -> dict[str, Any]:
    """The issue-22 figures of an earlier model on `items`. Cached in `cache` under the weights' and
    the images' hashes, so the comparison can be run while training goes on and reused."""
    card = json.loads(Path(card_path).read_text(encoding="utf-8"))
    if flips is not None:  # e.g. one view, to compare at the new model's cost on a busy machine
        card["test_time_flips"] = flips
    weights = Path(card_path).with_suffix(".safetensors")
    key = {"weights_sha256": sha256_file(weights), "flips": card.get("test_time_flips", 1),
           "items": [[it.record["image"], it.record.get("coverage"), list(it.image.shape)] for it in items]}
    if cache is not None and cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            return stored["result"]
    old = starter.load_starter(weights, card)
    net = old if card.get("max_side") else _Square(old, int(card.get("input_size", 512))).eval()
    res = evaluate_native(net, items, mean, std)
    result = {"model_sha256": key["weights_sha256"], "created": card.get("created"),
              "preprocessing": (f"long side ≤ {card['max_side']}" if card.get("max_side")
                                else f"resized to {card.get('input_size', 512)}², {card.get('test_time_flips', 1)} view(s)"),
              **_public(res)}
    if cache is not None:
        cache.write_text(json.dumps({"key": key, "result": result}) + "\n")
    return result


def _public(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if k not in ("authentic_scores", "edited_scores")}


def label_for(res: dict[str, Any]) -> str:
    return (f"{starter.DEMO_LABEL} · false alarms: {res['authentic_over_1pct_share']:.0f} % of unedited test photos "
            f"have > 1 % of their area flagged")


def package_native(cfg) -> int:
    torch.set_num_threads(cfg.threads)
    run, data, models = Path(cfg.run), Path(cfg.data), Path(cfg.models)
    config = json.loads((run / "train_config.json").read_text()) if (run / "train_config.json").exists() else {}
    widths = config.get("widths", list(starter.DEFAULT_WIDTHS))
    mean, std = list(starter.DEFAULT_MEAN), list(starter.DEFAULT_STD)
    synth_info = json.loads((data / "synth.json").read_text())
    if synth_info.get("generator") != "synth_general":
        raise StarterDataError(f"{data} is not a `declip train-starter data` set (no generator synth_general in synth.json)")
    net = starter.load_starter(run / cfg.weights, {"mean": mean, "std": std, "widths": widths, "test_time_flips": cfg.test_time_flips})
    # Limits take the first N images: the split is ordered in cycles balanced over family × post-processing.
    valid = load_native(data, "valid", cfg.max_side, cfg.valid_limit)
    if cfg.calibrate:
        calibration, res_valid = fit_offset(net, valid, mean, std, cfg.false_alarm_budget)
    else:
        calibration, res_valid = None, evaluate_native(net, valid, mean, std)
    print(f"validation offset: {json.dumps(calibration)}", flush=True)
    test = load_native(data, "test", cfg.max_side, cfg.test_limit)
    top_fraction = res_valid.get("score_top_fraction", SCORE_TOP_FRACTION)
    res_test = evaluate_native(net, test, mean, std, top_fraction=top_fraction)
    print(json.dumps({"test": _public(res_test)}, indent=1), flush=True)
    earlier = (compare_with(Path(cfg.compare), test, mean, std, run / "earlier_on_test.json", cfg.compare_flips)
               if cfg.compare else None)
    if earlier:
        print(json.dumps({"earlier": earlier}, indent=1), flush=True)
    models.mkdir(parents=True, exist_ok=True)
    out_weights = models / f"{cfg.name}.safetensors"
    from declip_desktop.training.starter_training import _save

    _save(net, out_weights)
    sources_path = Path(cfg.photos) / "SOURCES.json"
    sources = json.loads(sources_path.read_text()) if sources_path.exists() else {}
    ref = res_valid["authentic_scores"]
    card = {
        "name": cfg.name, "kind": starter.KIND, "backbone": starter.BACKBONE, "layer": None,
        "decoder": starter.ARCHITECTURE,
        "training_set": (f"declip train-starter data (seed {synth_info['seed']}): 7 manipulation families and "
                         f"{round(synth_info['train_authentic_share'] * 100)} % authentic images with camera and "
                         "post-processing stages, at native resolution; continued from the earlier starter's weights "
                         "(phases 1-5, see models/README.md); test split from photos never used in training"),
        "source_file": None, "source_sha256": None, "sha256": sha256_file(out_weights),
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "software_version": SOFTWARE_VERSION, "demo": True, "label": label_for(res_test),
        "input_size": cfg.input_size, "max_side": cfg.max_side, "mean": mean, "std": std, "widths": widths,
        "test_time_flips": cfg.test_time_flips, "score_top_fraction": top_fraction,
        "score_calibration": {
            "authentic_scores": ref, "n": len(ref), "split": "valid (validation-only photos)",
            "meaning": "score = share of unedited validation images whose raw score is lower; 0.9 ≈ 10 % score higher",
            "raw_score": f"mean of the top {top_fraction * 100:g} % of the map (score_top_fraction, chosen on valid)",
            "raw_at_0.9": round(raw_for_share_above(ref, 0.10), 4) if len(ref) > 1 else None,
            "edited_valid_share_above_0.9": (round(float(np.mean(np.asarray(res_valid["edited_scores"])
                                                         > raw_for_share_above(ref, 0.10))) * 100, 1)
                                             if len(ref) > 1 and res_valid["edited_scores"] else None),
        },
        "notes": ("Demo model — not for casework. Compact U-Net with fixed SRM high-pass input filters, trained "
                  "from scratch on synthetic edits (splice, copy-move, clone-stamp/healing retouch, smoothing, local "
                  "colour/tone/sharpen, inpainting removal, seamless cloning) and unedited images, run at native "
                  "resolution (long side up to max_side). It has never seen generative (diffusion/GAN) inpainting. "
                  "Training command: scripts/train_starter.sh. Sources and licences: models/README.md."),
        "metrics": {
            "test": _public(res_test), "valid": _public(res_valid), "targets": TARGETS,
            "targets_met": targets_met(res_test), "earlier_model_on_same_test": earlier,
            "bias_calibration_on_valid": calibration,
            "test_photos": sorted(k for k, v in synth_info["photos"].items() if v == "test"),
            "valid_photos": sorted(k for k, v in synth_info["photos"].items() if v == "valid"),
            "widths": widths, "false_alarm_area": FALSE_ALARM_AREA,
            "training": {k: config.get(k) for k in ("steps", "steps_done", "batch", "crop", "lr", "seed", "minutes",
                                                       "data", "init", "max_side", "best_valid_iou")},
            "training_photos": {name: sources.get(name, {}) for name in sorted(synth_info["photos"])},
        },
    }
    (models / f"{cfg.name}.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({"weights": str(out_weights), "bytes": out_weights.stat().st_size,
                      "targets_met": card["metrics"]["targets_met"]}, indent=1))
    return 0
