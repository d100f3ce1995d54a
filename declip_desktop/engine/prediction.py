"""`Prediction`: one image's result from a `Localizer` (map, score, timings, model).

Its own module so the result type is importable, and small, without the Localizer's machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from declip_desktop.common.facts import DEFAULT_THRESHOLD


@dataclass
class Prediction:
    """One image's result. `error` is set (and `prob_map`/`score` are None) when it failed."""

    source: str
    prob_map: np.ndarray | None
    score: float | None
    model_name: str
    model_sha256: str
    seconds: float
    device: str
    error: str | None = None
    width: int = 0
    height: int = 0
    demo: bool = False
    label: str = ""
    #: With `Localizer(tiling=...)`: the native-resolution map (`engine.tiling.TiledMap`), or
    #: None; `prob_map`/`score` stay the squash's, so every reader of a Prediction is unchanged.
    tiled: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def mask(self, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
        """bool H×W (the image's size): True where the probability is above `threshold` (0…1)."""
        from declip_desktop.common.regions import binary_mask

        return binary_mask(self._map(), _check_threshold(threshold))

    def regions(self, threshold: float = DEFAULT_THRESHOLD) -> list:
        """The connected regions above `threshold`, largest first (`common.regions.Region`:
        area_px, area_pct, bbox (x, y, w, h) in image pixels, mean_score, max_score, contours)."""
        from declip_desktop.common.regions import find_regions

        return find_regions(self._map(), _check_threshold(threshold))

    def _map(self) -> np.ndarray:
        if self.prob_map is None:
            raise ValueError(f"{self.source}: no probability map ({self.error})")
        return self.prob_map


def _check_threshold(threshold: float) -> float:
    value = float(threshold)
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ValueError(f"threshold {threshold!r} is outside 0…1")
    return value


__all__ = ["Prediction"]
