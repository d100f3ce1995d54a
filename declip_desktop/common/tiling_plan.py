"""Where the tiles of a native-resolution (tiled) analysis go, and how they are weighted.

Torch-free on purpose: the GUI and the CLI count forward passes for their time estimate with
the same plan the engine runs (`engine.tiling`), without importing torch.

The plan, per scale s (1.0 = the image's own pixels; coarser scales such as 0.5 are optional):
- the working image is the image resized by s (PIL bilinear, as the squash); a side shorter
  than `SQUASH_MARGIN` tiles is resized to exactly one tile, as the squash resizes every side:
  tiling it would gain at most 25 % in resolution for two or more times the passes, and a
  256×256 image (Dolos, the paper's setting) is then analysed exactly as the paper does;
- tiles of `tile`×`tile` pixels (the model's input size) start every `stride = tile − overlap`
  pixels along each axis; the last tile is aligned to the far edge so nothing is left out
  (it may overlap its neighbour more than `overlap`);
- each tile's map is weighted by a separable window that is 1 in the middle and falls as a
  raised cosine over the `overlap` pixels towards each side that has a neighbour (none towards
  an image border). Two neighbours' ramps over a standard overlap sum to exactly 1, and every
  weight is > 0, so the normalized blend has no seams and no division by zero; an image that is
  one tile gets weight 1 everywhere, i.e. exactly that tile's (= the squash) map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Default share of a tile that overlaps its neighbour (56 px of a 224 px tile).
DEFAULT_OVERLAP = 0.25
#: The largest overlap: beyond half a tile the two ramps inside one tile would cross.
MAX_OVERLAP = 0.5
#: At most this many scales (the native one and two coarser ones).
MAX_SCALES = 3
#: A side up to this many tiles long is resized to one tile instead of being tiled.
SQUASH_MARGIN = 1.25


class TilingError(ValueError):
    """Tiling options that cannot work; the message says which and what to use instead."""


@dataclass(frozen=True)
class TilingOptions:
    """How a tiled analysis runs. `tile` None = the model's input size (224 for DeCLIP)."""

    tile: int | None = None
    overlap: float = DEFAULT_OVERLAP
    scales: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if self.tile is not None and (int(self.tile) != self.tile or int(self.tile) < 16):
            raise TilingError(f"tile size must be a whole number of pixels ≥ 16, got {self.tile!r}")
        overlap = float(self.overlap)
        if not 0.0 <= overlap <= MAX_OVERLAP:  # also refuses NaN
            raise TilingError(f"tile overlap must be between 0 and {MAX_OVERLAP} (a share of the tile), "
                              f"got {self.overlap!r}")
        scales = tuple(float(s) for s in self.scales)
        if not scales or len(scales) > MAX_SCALES:
            raise TilingError(f"give 1 to {MAX_SCALES} scales, e.g. 1 or 1,0.5 (got {len(scales)})")
        if any(not 0.0 < s <= 1.0 for s in scales):
            raise TilingError(f"scales must be in (0, 1] (1 = the image's own pixels), got {list(self.scales)}")
        if 1.0 not in scales:
            raise TilingError("the scales must include 1 (the image's own pixels); add coarser ones such as 0.5")
        if len(set(scales)) != len(scales):
            raise TilingError(f"each scale once, please (got {list(self.scales)})")
        object.__setattr__(self, "overlap", overlap)
        object.__setattr__(self, "scales", tuple(sorted(scales, reverse=True)))

    def tile_for(self, input_size: int) -> int:
        return int(self.tile) if self.tile is not None else int(input_size)

    def parameters(self, input_size: int) -> dict:
        """What a stored tiled result records (`parameters` besides `mode: "tiled"`)."""
        return {"tile": self.tile_for(input_size), "overlap": self.overlap, "scales": list(self.scales),
                "blend": "raised-cosine ramps over the overlap, normalized; scales averaged"}


def parse_scales(text: str) -> tuple[float, ...]:
    """`"1,0.5"` → (1.0, 0.5); a clear TilingError for anything else."""
    try:
        values = tuple(float(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise TilingError(f"scales {text!r}: give numbers separated by commas, e.g. 1,0.5") from None
    return TilingOptions(scales=values).scales if values else (1.0,)


@dataclass(frozen=True)
class ScalePlan:
    """The tiles of one scale: the working image's size and the tiles' top-left corners."""

    scale: float
    height: int  # working image (the image resized by `scale`, at least one tile per side)
    width: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def passes(self) -> int:
        return len(self.ys) * len(self.xs)

    def tiles(self) -> list[tuple[int, int]]:
        return [(y, x) for y in self.ys for x in self.xs]


@dataclass(frozen=True)
class TilePlan:
    tile: int
    overlap_px: int
    scales: tuple[ScalePlan, ...] = field(default=())

    @property
    def passes(self) -> int:
        return sum(s.passes for s in self.scales)


def axis_starts(length: int, tile: int, overlap_px: int) -> tuple[int, ...]:
    """Top-left corners along one axis of `length` ≥ `tile` pixels; the last one ends at the edge."""
    if length <= tile:
        return (0,)
    stride = max(1, tile - overlap_px)
    count = math.ceil((length - tile) / stride) + 1
    starts = [min(i * stride, length - tile) for i in range(count)]
    return tuple(sorted(set(starts)))


def plan_tiles(height: int, width: int, input_size: int, options: TilingOptions | None = None) -> TilePlan:
    """The whole plan for an image of `height`×`width` pixels (as decoded, EXIF rotation applied)."""
    options = options or TilingOptions()
    if height < 1 or width < 1:
        raise TilingError(f"cannot tile an image of {width}×{height} pixels")
    tile = options.tile_for(input_size)
    overlap_px = int(round(options.overlap * tile))
    plans: list[ScalePlan] = []
    seen: set[tuple[int, int]] = set()
    for scale in options.scales:
        h, w = _side(height * scale, tile), _side(width * scale, tile)
        if (h, w) in seen:  # a small image: the coarser scale would repeat the same tiles
            continue
        seen.add((h, w))
        plans.append(ScalePlan(scale, h, w, axis_starts(h, tile, overlap_px), axis_starts(w, tile, overlap_px)))
    return TilePlan(tile, overlap_px, tuple(plans))


def _side(length: float, tile: int) -> int:
    """A working image's side: the scaled length, or exactly one tile when it is at most
    `SQUASH_MARGIN` tiles (shorter sides are stretched, slightly longer ones shrunk)."""
    length = int(round(length))
    return tile if length <= SQUASH_MARGIN * tile else length


def count_passes(height: int, width: int, input_size: int, options: TilingOptions | None = None) -> int:
    """Forward passes of the tiled map alone (the squash adds one more per image)."""
    return plan_tiles(height, width, input_size, options).passes


def ramp_weights(size: int, ramp: int, taper_start: bool, taper_end: bool) -> np.ndarray:
    """float64 weights for one tile side of `size` map pixels: raised-cosine ramps of `ramp`
    pixels at the tapered ends, 1 elsewhere; strictly positive; w(t) + w(ramp−1−t) = 1."""
    w = np.ones(size, dtype=np.float64)
    ramp = min(int(ramp), size // 2)
    if ramp > 0:
        t = np.arange(ramp, dtype=np.float64)
        rise = 0.5 - 0.5 * np.cos(np.pi * (t + 0.5) / ramp)
        if taper_start:
            w[:ramp] = rise
        if taper_end:
            w[size - ramp:] = rise[::-1]
    return w


__all__ = ["DEFAULT_OVERLAP", "MAX_OVERLAP", "SQUASH_MARGIN", "ScalePlan", "TilePlan", "TilingError", "TilingOptions",
           "axis_starts", "count_passes", "parse_scales", "plan_tiles", "ramp_weights"]
