"""The tiled-analysis options shared by `declip analyze` and `declip case analyze`."""

from __future__ import annotations

import argparse
import sys


def add_tiling_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tiled", action="store_true",
                   help="also analyse at native resolution: overlapping tiles of the model's input size, blended "
                        "into a second map stored beside the squash map (many forward passes per image; an "
                        "estimate is printed first)")
    p.add_argument("--tile-overlap", type=float, default=None, metavar="SHARE",
                   help="with --tiled: share of a tile overlapping its neighbour, 0…0.5 (default 0.25)")
    p.add_argument("--scales", default=None, metavar="LIST",
                   help="with --tiled: scales to tile, comma-separated, 1 = native, e.g. 1,0.5 (default: 1)")


def tiling_from_args(args: argparse.Namespace):
    """TilingOptions, or None without --tiled. Raises TilingError (a ValueError) for bad values."""
    from declip_desktop.common.tiling_plan import DEFAULT_OVERLAP, TilingError, TilingOptions, parse_scales

    if not getattr(args, "tiled", False):
        if args.tile_overlap is not None or args.scales is not None:
            raise TilingError("--tile-overlap and --scales only apply with --tiled")
        return None
    overlap = DEFAULT_OVERLAP if args.tile_overlap is None else args.tile_overlap
    scales = (1.0,) if args.scales is None else parse_scales(args.scales)
    return TilingOptions(overlap=overlap, scales=scales)


def print_estimate(estimate) -> None:
    print(estimate.describe() + ".", file=sys.stderr, flush=True)


__all__ = ["add_tiling_arguments", "print_estimate", "tiling_from_args"]
