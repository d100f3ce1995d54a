"""Tiled (native-resolution) analyses in a case: time estimates; the squash/tiled pair and its
stable regions are `cases.analysis_pairs` (re-exported here).

An item analysed in tiled mode has two analyses with the same model: the tiled map
(`parameters.mode` "tiled") and, stored right after it, the squash map (`mode` "squash",
`tiled_analysis_id` naming the tiled one); `queue.store_tiled_pair` writes them.

No torch here: the estimate counts passes with `common.tiling_plan` and asks the Localizer
(built by the session's injected factory) for its measured seconds per pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from declip_desktop.cases.analysis_pairs import (STABLE_MIN_IOU, TiledPair, analysis_mode, latest_pair,
                                                 stable_matches, tiled_partner)
from declip_desktop.common.text import format_duration
from declip_desktop.common.tiling_plan import TilingOptions, count_passes


@dataclass(frozen=True)
class TilingEstimate:
    """What a tiled run will cost: forward passes (tiles + one squash per image) and time."""

    images: int
    tile_passes: int
    seconds_per_pass: float
    device: str
    options: TilingOptions
    tile: int

    @property
    def passes(self) -> int:
        return self.tile_passes + self.images  # each image's squash is one more pass

    @property
    def seconds(self) -> float:
        return self.passes * self.seconds_per_pass

    def describe(self) -> str:
        scales = ", ".join(f"{s:g}" for s in self.options.scales)
        return (f"Tiled analysis of {self.images} image{'s' if self.images != 1 else ''}: {self.passes:,} forward passes "
                f"({self.tile_passes:,} tile{'s' if self.tile_passes != 1 else ''} of {self.tile} px, overlap {self.options.overlap:.0%}, "
                f"scales {scales}; + {self.images} squash), about {format_duration(self.seconds)} on {self.device} "
                f"({self.seconds_per_pass:.3g} s per pass, measured now)")


def estimate_tiled(sizes: Iterable[tuple[int, int]], options: TilingOptions, input_size: int,
                   seconds_per_pass: float, device: str) -> TilingEstimate:
    """`sizes`: (width, height) of each image as analysed (EXIF rotation applied)."""
    sizes = [(int(w), int(h)) for w, h in sizes]
    passes = sum(count_passes(h, w, input_size, options) for w, h in sizes if w > 0 and h > 0)
    return TilingEstimate(len(sizes), passes, float(seconds_per_pass), str(device), options,
                          options.tile_for(input_size))


def estimate_session(session: Any, evidence_ids: Iterable[int] | None = None) -> TilingEstimate:
    """The estimate for what `session.run(evidence_ids)` would analyse (explicit ids: those
    items, as a re-analysis would run them). Loads the model (through the session) to time it."""
    if session.tiling is None:
        raise ValueError("this session does not run tiled analyses (AnalysisSession(..., tiling=TilingOptions()))")
    choice = session.choose_model()
    localizer = session.localizer(choice)
    if evidence_ids is None:
        items = session.waiting(model_sha256=choice.sha256)
    else:
        items = [session.case.get_evidence(int(i)) for i in evidence_ids]
    return estimate_tiled([(e.width, e.height) for e in items], session.tiling, int(localizer.input_size),
                          float(localizer.seconds_per_pass()), str(localizer.device))


__all__ = ["STABLE_MIN_IOU", "TiledPair", "TilingEstimate", "analysis_mode", "estimate_session", "estimate_tiled",
           "latest_pair", "stable_matches", "tiled_partner"]
