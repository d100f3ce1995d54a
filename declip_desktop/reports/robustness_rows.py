"""Agreement across models and stability under re-compression, as rows and region cells of an
item's details page (issue 19 items 3 and 4).

Called by `collect` (data), so the PDF code only draws text: the agreement comes from the maps
stored in the case (`cases.model_agreement`, hash-checked), the stability from the item's stored
check (`cases.stability_store`). Regions are matched by bounding box and area, the figures are
those of the regions the page lists (same map, same threshold).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from declip_desktop.cases.errors import CaseError
from declip_desktop.cases.model_agreement import item_agreement, summary_text
from declip_desktop.cases.stability_store import latest_check
from declip_desktop.common.agreement import DEFAULT_MIN_OVERLAP
from declip_desktop.common.stability import DEFAULT_MIN_IOU, RegionStability

METHOD_HTML = f"""
<h3>Agreement across models</h3>
<p>Where an item was analysed with several models (for example checkpoints trained on different
generators), each map is stored as its own result with its model's card, and the page of the item says,
per region of the result shown, which models flag it: a model flags a region when at least
{DEFAULT_MIN_OVERLAP:.0%} of the
region's pixels are above that model's threshold. The agreement figure is the share of the image flagged
by at least one model, by all of them, and by one only. A region flagged by one checkpoint only rests on
that model alone. Agreement is not confirmation: models built on the same image encoder and trained on
related data can make the same mistake, and a region no other model flags may still be real (the other
models may not know that kind of edit).</p>
<h3>Stability under re-compression</h3>
<p>Where a stability check was made, copies of the image were re-saved as JPEG at quality 90 and 75,
down-scaled to 0.75 of each side (the map scaled back) and lightly blurred (σ 1 pixel), in a scratch folder
deleted afterwards; the evidence file was only read. Each copy was analysed with the same model, and each
region of the result shown counts as persisting in a copy when its overlap with the copy's matching regions
(intersection over union) is at least {DEFAULT_MIN_IOU:g}. A region that persists in every copy does not depend on fine
traces that one re-save would destroy; this says nothing about whether the region is edited. A region that
does not persist is not shown to be authentic: re-compression removes exactly the traces a localizer reads,
and the original file remains the evidence.</p>
"""


@dataclass
class Robustness:
    """What an item's details page states about agreement and stability."""

    rows: list[tuple[str, str]] = field(default_factory=list)
    agreement_cells: dict[tuple, str] = field(default_factory=dict)  # (bbox, area_px) → "2/3: ldm, lama", "only ldm"
    stability_cells: dict[tuple, str] = field(default_factory=dict)  # (bbox, area_px) → "4/4 · IoU 0.91–0.98"

    @property
    def has_columns(self) -> bool:
        return bool(self.agreement_cells or self.stability_cells)

    def cells(self, region: Any) -> tuple[str, str]:
        key = (tuple(region.bbox), int(region.area_px))
        return self.agreement_cells.get(key, "—"), self.stability_cells.get(key, "—")


def _short(region: RegionStability) -> str:
    low, high = (min(region.iou.values()), max(region.iou.values())) if region.iou else (0.0, 0.0)
    return f"{region.stable_in}/{region.variants} · IoU {low:.2f}–{high:.2f}"


def robustness_for(case: Any, evidence: Any, threshold: float) -> Robustness:
    """Rows and cells for one item at the report's threshold; an unreadable map or check is said, not hidden."""
    out = Robustness()
    shown = case.latest_analysis(evidence.id, successful=True)
    if shown is None:
        return out
    try:
        agreement = item_agreement(case, evidence.id, threshold)
    except (CaseError, ValueError) as exc:
        out.rows.append(("Agreement", f"NOT USED: {exc}"))
        agreement = None
    if agreement is not None:
        names = ", ".join(m.short for m in agreement.models)
        out.rows.append(("Agreement", f"{names}: {summary_text(agreement)}"))
        out.agreement_cells = {(tuple(r.bbox), r.area_px): agreement.region_short(r) for r in agreement.regions}
    try:
        check = latest_check(case, evidence.id, shown.id)
    except CaseError as exc:
        out.rows.append(("Stability", f"NOT USED: {exc}"))
        return out
    if check is None:
        return out
    stable = sum(1 for r in check.regions if r.stable_in == r.variants)
    text = (f"checked {check.finished[:16].replace('T', ' ')} at threshold {check.threshold:.2f}: "
            f"{stable} of {len(check.regions)} region(s) persist in all {len(check.variants)} copies "
            f"(IoU ≥ {check.min_iou:g})")
    if abs(check.threshold - float(threshold)) > 1e-9:
        text += f"; this page's threshold is {threshold:.2f}, so its regions differ: re-run the check to match"
    else:
        labels = check.variant_labels()
        out.stability_cells = {(tuple(r.bbox), r.area_px): _short(r) for r in check.regions}
        lost = {n for r in check.regions for n in r.iou if n not in r.persisted}
        if lost:
            text += "; lost in: " + ", ".join(labels[n] for n in labels if n in lost)
    out.rows.append(("Stability", text))
    return out


__all__ = ["METHOD_HTML", "Robustness", "robustness_for"]
