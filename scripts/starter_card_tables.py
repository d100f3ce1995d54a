#!/usr/bin/env python3
"""Print the Markdown tables of models/README.md from the starter's model card (models/starter.json).

The README's figures are the card's, not retyped: run this after `declip train-starter package`
and paste its output into models/README.md (the section "Figures on the test split").

    python scripts/starter_card_tables.py [--card models/starter.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

FAMILY_NAMES = {
    "splice": "splicing (feathered, colour-matched)", "copy_move": "copy-move (rotated, scaled)",
    "retouch": "clone-stamp / healing retouch", "smoothing": "smoothing / beautification",
    "local_adjust": "local recolour / tone / sharpen", "inpaint_removal": "object / text removal (cv2.inpaint)",
    "seamless_clone": "seamless cloning (normal, mixed)",
}
POST_NAMES = {"none": "none", "jpeg": "JPEG q70-80", "resize": "resize 0.6-0.85 (Lanczos)",
              "chain": "resize 0.5-0.8 + JPEG q70-80"}


def _fmt(v, suffix=""):
    return "—" if v is None else f"{v}{suffix}"


def tables(card: dict) -> str:
    m = card["metrics"]
    new, old = m["test"], m.get("earlier_model_on_same_test") or {}
    rows = ["| figure (test split: 10 test-only photos) | target | this model | phase 5 (previous bundle) |",
            "|---|---:|---:|---:|"]
    met = m["targets_met"]

    def mark(key):
        return "met" if met.get(key) else "**not met**"

    rows += [
        f"| authentic photos with > 1 % flagged (n = {new['n_authentic']}) | ≤ 20 % ({mark('authentic_over_1pct_le_20pct')}) "
        f"| {new['authentic_over_1pct_share']} % | {_fmt(old.get('authentic_over_1pct_share'), ' %')} |",
        f"| authentic: median flagged area | ≤ 1 % ({mark('authentic_median_flagged_le_1pct')}) "
        f"| {new['authentic_median_flagged_pct']} % | {_fmt(old.get('authentic_median_flagged_pct'), ' %')} |",
        f"| authentic photos with > 10 % flagged | — | {new['authentic_over_10pct_share']} % "
        f"| {_fmt(old.get('authentic_over_10pct_share'), ' %')} |",
        f"| image-level AUC (edited vs authentic) | ≥ 0.85 ({mark('auc_ge_085')}) | {new['auc']} | {_fmt(old.get('auc'))} |",
        f"| pixel IoU, all edited images (n = {new['n_edited']}) | ≥ 45 ({mark('iou_overall_ge_45')}) | {new['iou']} "
        f"| {_fmt(old.get('iou'))} |",
        f"| lowest family IoU | ≥ 25 ({mark('iou_every_family_ge_25')}) "
        f"| {min(v['iou'] for v in new['per_family'].values())} "
        f"| {_fmt(min((v['iou'] for v in (old.get('per_family') or {}).values()), default=None))} |",
    ]
    fam = ["", "| family | test images | IoU | phase 5 |", "|---|---:|---:|---:|"]
    for k, v in new["per_family"].items():
        fam.append(f"| {FAMILY_NAMES.get(k, k)} | {v['n']} | {v['iou']} | "
                   f"{_fmt(((old.get('per_family') or {}).get(k) or {}).get('iou'))} |")
    post = ["", "| post-processing (whole image) | edited | IoU | phase 5 | authentic > 1 % flagged | phase 5 |",
            "|---|---:|---:|---:|---:|---:|"]
    for k, v in new["per_post"].items():
        post.append(f"| {POST_NAMES.get(k, k)} | {v['n']} | {v['iou']} | "
                    f"{_fmt(((old.get('per_post') or {}).get(k) or {}).get('iou'))} | "
                    f"{_fmt(new['authentic_over_1pct_per_post'].get(k), ' %')} | "
                    f"{_fmt((old.get('authentic_over_1pct_per_post') or {}).get(k), ' %')} |")
    return "\n".join(rows + fam + post) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--card", default=str(Path(__file__).resolve().parents[1] / "models" / "starter.json"))
    args = parser.parse_args()
    print(tables(json.loads(Path(args.card).read_text(encoding="utf-8"))), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
