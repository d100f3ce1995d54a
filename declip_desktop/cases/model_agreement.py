"""Agreement across models for one evidence item, from the maps stored in the case.

    agreement = item_agreement(case, evidence_id, threshold=0.5)
    agreement.models              # [ModelResult]: the shown (primary) result first, one per model
    agreement.summary.all_pct     # percent of the image every model flags
    agreement.regions             # per region of the shown result: which models flag it

The maths is `common.agreement`; this module picks the results (the newest successful one of
each model, the shown result first) and loads their maps hash-checked (`Case.load_map`). The
inspector, the report and `declip case agreement` all call it, so they state the same figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from declip_desktop.common.agreement import (
    DEFAULT_MIN_OVERLAP,
    UNION,
    AgreementMaps,
    AgreementSummary,
    RegionAgreement,
    agreement_maps,
    region_agreement,
    same_size,
    summarize,
)

#: `item_agreement(regions_of=SHOWN)`: the regions of the shown result (the default).
SHOWN = "shown"


@dataclass(frozen=True)
class ModelResult:
    analysis: Any  # cases.records.Analysis
    name: str
    sha256: str
    threshold: float

    @property
    def short(self) -> str:
        return self.name or self.sha256[:12]


@dataclass(frozen=True)
class ItemAgreement:
    evidence_id: int
    models: list[ModelResult]  # models[0] is the result the inspector and the report show
    maps: AgreementMaps
    summary: AgreementSummary
    regions: list[RegionAgreement]  # regions of models[0]'s map at its threshold (or see `regions_of`)
    min_overlap: float

    def names(self, region: RegionAgreement) -> list[str]:
        return [self.models[i].short for i in region.flagged_by]

    def region_text(self, region: RegionAgreement) -> str:
        """e.g. "all 3" / "ldm, lama (2 of 3)" / "ldm only (one checkpoint)"."""
        n = len(self.models)
        if len(region.flagged_by) == n:
            return f"all {n}"
        names = ", ".join(self.names(region))
        if region.single_model:
            return f"{names} only (one checkpoint)"
        return f"{names} ({len(region.flagged_by)} of {n})"

    def region_short(self, region: RegionAgreement) -> str:
        """For narrow table cells: "all 3" / "2/3: ldm, lama" / "only ldm"."""
        n = len(self.models)
        if len(region.flagged_by) == n:
            return f"all {n}"
        if region.single_model:
            return f"only {self.names(region)[0]}"
        return f"{len(region.flagged_by)}/{n}: " + ", ".join(self.names(region))

    def region_for(self, bbox: tuple[int, int, int, int], area_px: int) -> RegionAgreement | None:
        for r in self.regions:
            if tuple(r.bbox) == tuple(bbox) and r.area_px == int(area_px):
                return r
        return None


def _regions_of(models: list[ModelResult], regions_of: str) -> int | str:
    if regions_of == SHOWN:
        return 0
    if regions_of == UNION:
        return UNION
    for i, m in enumerate(models):
        if regions_of in (m.name, m.sha256):
            return i
    raise ValueError(f"no model named {regions_of!r} analysed this item (it was analysed with "
                     f"{', '.join(m.name for m in models)}); give one of those, {SHOWN!r} or {UNION!r}")


def results_per_model(case: Any, evidence_id: int) -> list[Any]:
    """The newest successful result of each model for the item; the shown one (`latest_analysis`) first."""
    shown = case.latest_analysis(evidence_id, successful=True)
    if shown is None:
        return []
    newest: dict[str, Any] = {}
    for a in case.analyses(evidence_id):
        if a.ok and a.map_file:
            newest[a.model_sha256] = a
    newest[shown.model_sha256] = shown
    return [shown] + [a for sha, a in newest.items() if sha != shown.model_sha256]


def item_agreement(case: Any, evidence_id: int, threshold: float, *,
                   thresholds: Mapping[str, float] | None = None, min_overlap: float = DEFAULT_MIN_OVERLAP,
                   regions_of: str = SHOWN) -> ItemAgreement | None:
    """Agreement of the item's models (None when fewer than two models analysed it).

    Each model is compared with `thresholds[its SHA-256]` when given (e.g. a per-model calibrated
    threshold), else with `threshold` (the item's, by the case's rule). `regions_of`: SHOWN (the
    regions of the shown result, as its regions table), UNION (of the pixels any model flags), or a
    model's name (its regions). Maps of another size than
    the shown one (none should be: maps are stored at the image's size) are resized to it."""
    results = results_per_model(case, evidence_id)
    if len(results) < 2:
        return None
    own = dict(thresholds or {})
    models = [ModelResult(a, a.model_name, a.model_sha256, float(own.get(a.model_sha256, threshold)))
              for a in results]
    first = case.load_map(results[0])
    maps = [first] + [same_size(case.load_map(a), first.shape) for a in results[1:]]
    ts = [m.threshold for m in models]
    agg = agreement_maps(maps, ts)
    return ItemAgreement(evidence_id=int(evidence_id), models=models, maps=agg, summary=summarize(agg),
                         regions=region_agreement(maps, ts, regions_of=_regions_of(models, regions_of),
                                                  min_overlap=min_overlap),
                         min_overlap=float(min_overlap))


def summary_text(agreement: ItemAgreement) -> str:
    """One sentence for the report and the CLI: the agreement figure (pixels every model flags
    among the pixels any model flags) and the regions that rest on one checkpoint."""
    s = agreement.summary
    if s.overlap_pct is None:
        return f"{s.n_models} models; none flags any pixel at its threshold"
    singles = sum(1 for r in agreement.regions if r.single_model)
    return (f"{s.n_models} models; agreement {s.overlap_pct:.0f} % ({s.all_pct:.2f} % of the image flagged by all, "
            f"{s.any_pct:.2f} % by any); {singles} of {len(agreement.regions)} region(s) flagged by one "
            "checkpoint only")


__all__ = ["SHOWN", "UNION", "ItemAgreement", "ModelResult", "item_agreement", "results_per_model", "summary_text"]
