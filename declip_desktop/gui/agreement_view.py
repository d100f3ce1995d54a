"""The inspector's agreement and stability state without Qt (issue 19 items 3 and 4).

`RobustnessState` holds, for the current item, the maps of every model that analysed it (the
shown result first), the item's newest stability check, the view mode ("count" or "spread")
and, for the regions the table lists at the current threshold, who flags each one and how it
survived re-compression. `gui.inspector_robustness.RobustnessPanel` renders it; tests drive it
directly. All figures come from `common.agreement` / `common.stability`, as in the report.

Colours: count mode paints pixels one model flags in amber, pixels every model flags in red
(in between: interpolated), nothing where no model flags; spread mode paints the standard
deviation of the models' probabilities (0 → transparent, 0.5, the largest possible → opaque).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from declip_desktop.common.agreement import DEFAULT_MIN_OVERLAP, agreement_maps, region_agreement, summarize

MODES = ("count", "spread")
ONE_RGBA = (255, 176, 0, 150)  # amber: one model only
ALL_RGBA = (220, 20, 60, 190)  # crimson: every model
DISPLAY_MAX_SIDE = 1024


@dataclass
class ItemMaps:
    """What a background load of the current item returns."""

    names: list[str]  # one per model; names[0] is the shown result's
    maps: list[np.ndarray]  # the shown map's size
    stability: Any = None  # cases.stability_store.StabilityCheck of the shown result, or None


@dataclass
class AgreementView:
    """What a background computation at one threshold returns."""

    threshold: float
    rgba: np.ndarray | None  # display-size H×W×4 uint8 for the current mode (None: fewer than two models)
    note: str
    cells: dict[tuple, tuple[str, str, bool]] = field(default_factory=dict)  # (bbox, area) → text, tip, alert


def count_rgba(count: np.ndarray, n_models: int) -> np.ndarray:
    """H×W×4 uint8: transparent where no model flags, amber (one) … crimson (all)."""
    table = np.zeros((256, 4), np.uint8)
    for k in range(1, n_models + 1):
        f = 0.0 if n_models == 1 else (k - 1) / (n_models - 1)
        table[k] = np.round((1 - f) * np.array(ONE_RGBA) + f * np.array(ALL_RGBA))
    return table[count]


def spread_rgba(spread: np.ndarray) -> np.ndarray:
    """H×W×4 uint8: white-to-magenta with opacity growing with the spread (0 … 0.5)."""
    level = np.clip(np.asarray(spread, np.float32) * 2.0, 0.0, 1.0)
    out = np.empty(level.shape + (4,), np.uint8)
    out[..., 0] = 255
    out[..., 1] = np.round(255 * (1 - level))
    out[..., 2] = 255
    out[..., 3] = np.round(220 * level)
    return out


def _display(a: np.ndarray, interpolation: int) -> np.ndarray:
    h, w = a.shape[:2]
    scale = min(1.0, DISPLAY_MAX_SIDE / max(h, w))
    if scale >= 1.0:
        return a
    return cv2.resize(a, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interpolation)


class RobustnessState:
    def __init__(self) -> None:
        self.mode = "count"
        self.item: ItemMaps | None = None
        self.view: AgreementView | None = None
        self.token = 0  # bumped per item; stale background results are dropped

    def set_item(self, item: ItemMaps | None) -> None:
        self.item = item
        self.view = None

    def clear(self) -> int:
        self.token += 1
        self.set_item(None)
        return self.token

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown agreement mode {mode!r}; one of {', '.join(MODES)}")
        self.mode = mode

    @property
    def n_models(self) -> int:
        return len(self.item.maps) if self.item is not None else 0

    def compute(self, threshold: float, min_overlap: float = DEFAULT_MIN_OVERLAP) -> AgreementView:
        """The view at `threshold` (every model at the same threshold). Pure: safe off the UI thread."""
        item = self.item
        cells: dict[tuple, tuple[str, str, bool]] = {}
        if item is None:
            return AgreementView(threshold, None, "")
        note = ""
        rgba = None
        if len(item.maps) >= 2:
            ts = [float(threshold)] * len(item.maps)
            agg = agreement_maps(item.maps, ts)
            s = summarize(agg)
            if self.mode == "count":
                rgba = count_rgba(_display(agg.count, cv2.INTER_NEAREST), agg.n_models)
            else:
                rgba = spread_rgba(_display(agg.spread, cv2.INTER_AREA))
            n = agg.n_models
            for r in region_agreement(item.maps, ts, regions_of=0, min_overlap=min_overlap):
                names = [item.names[i] for i in r.flagged_by]
                text = (f"all {n}" if len(names) == n else f"only {names[0]}" if r.single_model
                        else f"{len(names)}/{n}: " + ", ".join(names))
                tip = "\n".join(f"{item.names[i]}: {f * 100:.0f} % of the region above its threshold"
                                for i, f in enumerate(r.overlap))
                if r.single_model:
                    tip = "Flagged by one checkpoint only.\n" + tip
                cells[(tuple(r.bbox), r.area_px)] = (text, tip, r.single_model)
            agreement = f"{s.overlap_pct:.0f} %" if s.overlap_pct is not None else "—"
            singles = sum(1 for _t, _tip, alert in cells.values() if alert)
            note = (f"{n} models ({', '.join(item.names)}): agreement {agreement} — {s.all_pct:.2f} % of the image "
                    f"flagged by all, {s.one_pct:.2f} % by one only; {singles} region(s) flagged by one checkpoint "
                    "only (red)")
        return AgreementView(threshold, rgba, note, cells)

    def stability_cell(self, region: Any, threshold: float) -> tuple[str, str, bool]:
        """"Stable in" for a region of the table at `threshold` ("" when no check applies)."""
        check = self.item.stability if self.item is not None else None
        if check is None:
            return "", "No stability check yet (Analysis → Check stability under re-compression)", False
        if abs(check.threshold - float(threshold)) > 1e-9:
            return "—", (f"The stability check was made at threshold {check.threshold:.3f}; regions at this "
                         "threshold differ. Run the check again at this threshold."), False
        found = check.region_for(tuple(region.bbox), region.area_px)
        if found is None:
            return "—", "This region was not part of the stored check.", False
        labels = check.variant_labels()
        tip = "\n".join(f"{labels.get(k, k)}: IoU {v:.2f}" + ("" if k in found.persisted else " (lost)")
                        for k, v in found.iou.items())
        return f"{found.stable_in}/{found.variants}", tip, found.stable_in < found.variants

    def agreement_cell(self, region: Any) -> tuple[str, str, bool]:
        if self.view is None or not self.view.cells:
            tip = "Analysed with one model (Analysis → Analyse with several models…)" if self.item else ""
            return "", tip, False
        return self.view.cells.get((tuple(region.bbox), region.area_px), ("—", "", False))


__all__ = ["MODES", "AgreementView", "ItemMaps", "RobustnessState", "count_rgba", "spread_rgba"]
