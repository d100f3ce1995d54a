"""The two analyses of an item analysed in tiled mode: the squash map and its tiled partner.

A tiled run stores the tiled map (`parameters.mode` "tiled", with tile, overlap, scales and
passes) and, right after it, the squash map (`mode` "squash", `tiled_analysis_id` naming the
tiled one); each is an ordinary `analysis.stored` entry, replayed and checked by verify. These
read-only helpers find the pair for the inspector, the reports and the CLI; stable regions are
derived from the two hash-checked maps (`common.stable_regions`), never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from declip_desktop.common.stable_regions import STABLE_MIN_IOU, RegionMatch, match_regions


def analysis_mode(analysis: Any) -> str:
    """"tiled" or "squash" (analyses stored before tiling existed are squash analyses)."""
    return "tiled" if (analysis.parameters or {}).get("mode") == "tiled" else "squash"


def tiled_partner(case: Any, analysis: Any) -> Any:
    """The tiled analysis stored with this squash analysis, or None. A `tiled_analysis_id`
    that names something else (another item, another model, not a tiled map) is ignored."""
    ref = (analysis.parameters or {}).get("tiled_analysis_id")
    if analysis_mode(analysis) != "squash" or not isinstance(ref, int) or isinstance(ref, bool):
        return None
    for other in case.analyses(analysis.evidence_id):
        if other.id == ref:
            ok = other.ok and other.model_sha256 == analysis.model_sha256 and analysis_mode(other) == "tiled"
            return other if ok else None
    return None


@dataclass(frozen=True)
class TiledPair:
    squash: Any  # cases.Analysis
    tiled: Any  # cases.Analysis

    @property
    def parameters(self) -> dict:
        p = self.tiled.parameters or {}
        return {k: p.get(k) for k in ("tile", "overlap", "scales", "passes")}

    def describe(self) -> str:
        p = self.parameters
        scales = ", ".join(f"{float(s):g}" for s in (p.get("scales") or []))
        overlap = p.get("overlap")
        overlap_text = f"{float(overlap):.0%}" if isinstance(overlap, (int, float)) else "?"
        return (f"tiles of {p.get('tile')} px at the image's own scale, overlap {overlap_text}, scales {scales}, "
                f"{p.get('passes')} forward passes")


def latest_pair(case: Any, evidence_id: int) -> TiledPair | None:
    """The item's latest successful analysis and its tiled partner, when it has one."""
    latest = case.latest_analysis(evidence_id, successful=True)
    if latest is None:
        return None
    tiled = tiled_partner(case, latest)
    return TiledPair(latest, tiled) if tiled is not None else None


def stable_matches(case: Any, pair: TiledPair, threshold: float, min_iou: float = STABLE_MIN_IOU) -> list[RegionMatch]:
    """Regions of the tiled map at `threshold`, each marked stable or not (both maps hash-checked)."""
    return match_regions(case.load_map(pair.tiled), case.load_map(pair.squash), threshold, min_iou)


__all__ = ["STABLE_MIN_IOU", "TiledPair", "analysis_mode", "latest_pair", "stable_matches", "tiled_partner"]
